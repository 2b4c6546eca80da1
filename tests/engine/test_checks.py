"""data.checks.run_checks and data.report.build_report on real scanned folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_studio.data.checks import Finding, has_errors, run_checks
from cnn_studio.data.index import scan
from cnn_studio.data.records import DatasetIndex, ImageRecord
from cnn_studio.data.report import build_report
from cnn_studio.data.split import make_split


def _png(path: Path, seed: int, size: int = 16, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def _codes(findings: list[Finding]) -> dict[str, Finding]:
    return {f.code: f for f in findings}


def test_clean_dataset_has_no_findings(image_folder):
    # 75 a class: the default split leaves 60 to train on and 15 to validate with (30 in all), enough for every rule
    index = scan(image_folder(classes=("a", "b"), per_class=75))
    assert run_checks(index, make_split(index)) == []


def test_duplicates_conflicts_leakage_imbalance_skipped_small_modes(tmp_path):
    root = tmp_path / "d"
    for i in range(12):
        _png(root / "big" / f"{i}.png", seed=i)
    for i in range(2):
        _png(root / "small" / f"{i}.png", seed=100 + i, mode="L")
    shutil.copy(root / "big" / "0.png", root / "big" / "0_copy.png")  # duplicate within class
    shutil.copy(root / "big" / "1.png", root / "small" / "from_big.png")  # label conflict
    _png(root / "small" / "thumb.png", seed=200, size=4)
    (root / "small" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    index = scan(root)
    split = make_split(index, val_fraction=0.5, seed=0)
    findings = run_checks(index, split)
    codes = _codes(findings)

    assert not has_errors(findings)
    assert set(codes) >= {"imbalance", "skipped_files", "duplicate_in_class", "label_conflict", "small_images",
                          "mixed_modes"}
    assert "'big' has 13 images, 'small' only 4" in codes["imbalance"].message  # 12 + copy vs 2 + 2
    assert "3.2:1" in codes["imbalance"].message
    assert {Path(p).name for p in codes["duplicate_in_class"].paths} == {"0.png", "0_copy.png"}
    assert {Path(p).name for p in codes["label_conflict"].paths} == {"1.png", "from_big.png"}
    assert [Path(p).name for p in codes["skipped_files"].paths] == ["broken.png"]
    assert [Path(p).name for p in codes["small_images"].paths] == ["thumb.png"]
    assert codes["label_conflict"].severity == "warning" and codes["mixed_modes"].severity == "info"
    # with val_fraction=0.5 some duplicate pair is split across train/val with this seed or another
    leaks = [run_checks(index, make_split(index, val_fraction=0.5, seed=s)) for s in range(6)]
    assert any("split_leakage" in _codes(f) for f in leaks)
    for f in leaks:
        if "split_leakage" in _codes(f):
            assert _codes(f)["split_leakage"].paths


def test_imbalance_ratio_stated():
    recs = [ImageRecord(f"/n/a{i}", 0, size_bytes=-1) for i in range(30)] + [
        ImageRecord(f"/n/b{i}", 1, size_bytes=-1) for i in range(5)]
    index = DatasetIndex("/n", "class_folders", ("a", "b"), tuple(recs))
    f = _codes(run_checks(index, find_duplicates=False))["imbalance"]
    assert "6.0:1" in f.message and "'a' has 30" in f.message and "'b' only 5" in f.message


def test_errors_one_class_empty_and_too_few():
    one = DatasetIndex("/x", "class_folders", ("a",), (ImageRecord("/x/a/1.png", 0),))
    assert "one_class" in _codes(run_checks(one, find_duplicates=False))
    idx = DatasetIndex("/x", "class_folders", ("a", "b", "c"),
                       (ImageRecord("/x/a/1.png", 0), ImageRecord("/x/a/2.png", 0), ImageRecord("/x/b/1.png", 1)))
    findings = run_checks(idx, find_duplicates=False)
    codes = _codes(findings)
    assert has_errors(findings) and findings[0].severity == "error"
    assert "'c'" in codes["empty_class"].message and "'b' has 1 image" in codes["too_few_images"].message


def test_group_leakage_reported_for_ungrouped_split():
    recs = [ImageRecord(f"/g/{c}{i}.png", lab, group=f"P{i % 3}") for lab, c in enumerate("ab") for i in range(9)]
    index = DatasetIndex("/g", "csv", ("a", "b"), tuple(recs))
    leaky = make_split(index, group_by="none", val_fraction=0.4, seed=1)
    assert "group_leakage" in _codes(run_checks(index, leaky, find_duplicates=False))


def test_report_text_and_json(tmp_path):
    root = tmp_path / "d"
    for i in range(6):
        _png(root / "Ärzte" / f"bild_ü{i}.png", seed=i)
        _png(root / "肺" / f"图像{i}.png", seed=50 + i, size=24)
    (root / "肺" / "bad.jpg").write_text("text")
    index = scan(root)
    split = make_split(index, val_fraction=0.34, seed=0)
    report = build_report(index, split, run_checks(index, split))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["counts"] == {"Ärzte": 6, "肺": 6} and d["n_skipped"] == 1
    assert d["split_counts"]["val"] == {"Ärzte": 2, "肺": 2} and d["split_source"] == "random"
    assert d["size_stats"]["width"] == {"min": 16, "median": 20, "max": 24}
    assert d["imbalance_ratio"] == 1.0 and d["skipped"][0]["reason"] == "not_an_image"
    assert any("percentile" in n for n in d["scaling_notes"])
    text = report.to_text()
    for needle in ("Ärzte", "肺", "train", "val", "bad.jpg", "not an image", "percentile", "Imbalance"):
        assert needle in text, needle
