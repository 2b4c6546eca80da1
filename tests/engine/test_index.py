"""data.index.scan: layouts, unicode, skipped files, events, cancel, stopping errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import DatasetError
from cnn_studio.data.index import scan


def _png(path: Path, seed: int = 0, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def test_class_folders_with_unicode_nested_and_junk(tmp_path):
    root = tmp_path / "data"
    _png(root / "Ärzte" / "bild_ü.png", 1)
    _png(root / "Ärzte" / "deeper" / "more" / "x.png", 2)
    _png(root / "肺" / "图像.png", 3)
    _png(root / "肺" / "b.png", 4)
    (root / "肺" / "notes.txt").write_text("not an image")
    (root / "肺" / "fake.jpg").write_text("a text file renamed .jpg")
    (root / "肺" / "zero.png").write_bytes(b"")
    (root / "README.txt").write_text("top-level file")
    _png(root / "stray.png", 5)
    (root / "empty_folder").mkdir()
    (root / ".hidden").mkdir()
    _png(root / ".hidden" / "h.png", 6)

    index = scan(root)
    assert index.layout == "class_folders"
    assert index.class_names == ("Ärzte", "肺")  # sorted; empty and hidden folders are not classes
    assert index.counts() == {"Ärzte": 2, "肺": 2}
    assert any(r.path.endswith("more/x.png") and r.label == 0 for r in index.records)
    assert {r.path for r in index.records if r.label == 1} == {str(root / "肺" / "图像.png"), str(root / "肺" / "b.png")}
    reasons = {Path(s.path).name: s.reason for s in index.skipped}
    assert reasons == {"fake.jpg": "not_an_image", "zero.png": "empty"}
    notes = " ".join(index.notes)
    assert "README.txt" in notes and "stray.png" in notes and "notes.txt" in notes and "empty_folder" in notes
    rec = index.records[0]
    assert (rec.width, rec.height, rec.fmt, rec.mode) == (16, 16, "PNG", "RGB") and rec.size_bytes > 0


def test_split_folders_layout(tmp_path):
    root = tmp_path / "ds"
    for split, n in (("train", 3), ("validation", 2), ("test", 1)):
        for cls in ("healthy", "rust"):
            for i in range(n):
                _png(root / split / cls / f"{i}.png", hash((split, cls, i)) % 1000)
    index = scan(root)
    assert index.layout == "split_folders"
    assert index.class_names == ("healthy", "rust")
    presets = {r.preset_split for r in index.records}
    assert presets == {"train", "val", "test"}
    assert sum(r.preset_split == "val" for r in index.records) == 4


def test_csv_manifest_with_groups_and_missing(tmp_path):
    for i in range(4):
        _png(tmp_path / "img" / f"{i}.png", i)
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label,group\nimg/0.png,a,P1\nimg/1.png,a,P2\nimg/2.png,b,P1\n"
                        "img/3.png,b,P3\nimg/404.png,b,P3\n", encoding="utf-8")
    index = scan(manifest)
    assert index.layout == "csv" and index.class_names == ("a", "b")
    assert [r.group for r in index.records] == ["P1", "P2", "P1", "P3"]
    assert [(Path(s.path).name, s.reason) for s in index.skipped] == [("404.png", "missing")]


def test_csv_without_columns_is_explained(tmp_path):
    manifest = tmp_path / "bad.csv"
    manifest.write_text("file_name,kind\nx.png,a\n")
    with pytest.raises(DatasetError, match="path.*label"):
        scan(manifest)


def test_relative_source_gives_absolute_paths(image_folder, monkeypatch):
    root = image_folder(classes=("a", "b"), per_class=2)
    monkeypatch.chdir(root.parent)
    index = scan(root.name)
    assert all(Path(r.path).is_absolute() and Path(r.path).exists() for r in index.records)


def test_stopping_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        scan(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty") as info:
        scan(tmp_path / "empty")
    assert str(tmp_path / "empty") in info.value.message and info.value.hint
    _png(tmp_path / "flat" / "a.png")
    with pytest.raises(DatasetError, match="No class folders") as info:
        scan(tmp_path / "flat")
    assert "sub-folder per class" in info.value.hint
    _png(tmp_path / "one" / "cats" / "a.png")
    with pytest.raises(DatasetError, match="Only one class") as info:
        scan(tmp_path / "one")
    assert "'cats'" in info.value.message and str(tmp_path / "one") in info.value.message


def test_events_and_throttled_progress(image_folder):
    root = image_folder(classes=("a", "b"), per_class=110, size=8)
    events: list[object] = []
    index = scan(root, sink=events.append)
    assert isinstance(events[0], ev.ScanStarted) and events[0].root == str(root)
    assert events[-1] == ev.ScanFinished(n_images=220, n_classes=2, n_skipped=0)
    progress = [e for e in events if isinstance(e, ev.ScanProgress)]
    assert 2 <= len(progress) <= 30  # throttled: not one per file
    assert progress[-1].files_seen == 220 and progress[-1].images_found == 220
    assert len(index.records) == 220


def test_cancel_during_scan(image_folder):
    root = image_folder(classes=("a", "b"), per_class=125, size=8)
    token = CancelToken()
    seen: list[object] = []

    def sink(event: object) -> None:
        seen.append(event)
        if isinstance(event, ev.ScanProgress):
            token.cancel()  # as the UI's Stop button would, from the first progress report

    with pytest.raises(Cancelled):
        scan(root, sink=sink, cancel=token)
    progress = [e for e in seen if isinstance(e, ev.ScanProgress)]
    assert len(progress) == 1 and progress[0].files_seen < 250  # stopped at the next file
    assert not any(isinstance(e, ev.ScanFinished) for e in seen)


def test_dicom_patient_id_becomes_group(tmp_path):
    from studio_testkit import DicomTags, write_dicom

    px = np.arange(64, dtype=np.uint16).reshape(8, 8)
    for cls in ("normal", "nodule"):
        (tmp_path / "ct" / cls).mkdir(parents=True)
        for i in range(2):
            write_dicom(tmp_path / "ct" / cls / f"IM{i}", px + i, DicomTags(patient=f"{cls}-{i}"))  # no suffix
    index = scan(tmp_path / "ct")
    assert len(index.records) == 4 and {r.fmt for r in index.records} == {"DICOM"}
    assert sorted(r.group for r in index.records) == ["nodule-0", "nodule-1", "normal-0", "normal-1"]
