"""``cnn-studio scan`` run in-process through cnn_studio.cli.main: output, JSON and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cnn_studio.cli as cli


@pytest.fixture(autouse=True)
def only_scan_subcommand(monkeypatch):
    """Register just ``scan`` so this test does not depend on the other subcommands' modules."""
    monkeypatch.setattr(cli, "SUBCOMMANDS", {"scan": "scan"})


def test_scan_text_report_exit_0(image_folder, capsys):
    root = image_folder(classes=("cat", "dog"), per_class=8)
    assert cli.main(["scan", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "cat" in out and "dog" in out and "Split: random" in out and "total" in out
    assert "scanned: 16 images in 2 classes, 0 skipped" in err


def test_scan_json_on_stdout(image_folder, capsys):
    root = image_folder(classes=("a", "b", "c"), per_class=50)  # enough for every sample-size rule
    code = cli.main(["scan", str(root), "--json", "--val-fraction", "0.3", "--test-fraction", "0.1", "--seed", "5"])
    assert code == 0
    out, _ = capsys.readouterr()
    report = json.loads(out)
    assert report["counts"] == {"a": 50, "b": 50, "c": 50}
    assert report["split_counts"]["val"] == {"a": 15, "b": 15, "c": 15}
    assert report["split_counts"]["test"] == {"a": 5, "b": 5, "c": 5}
    assert report["findings"] == []


def test_single_class_exits_2_naming_the_folder(image_folder, capsys):
    root = image_folder(classes=("only",), per_class=4)
    assert cli.main(["scan", str(root)]) == 2
    _, err = capsys.readouterr()
    assert str(root) in err and "'only'" in err and "hint:" in err


def test_check_error_exits_2_with_report(image_folder, capsys):
    root = image_folder(classes=("a", "b"), per_class=8)
    for p in list((root / "b").iterdir())[1:]:
        p.unlink()  # class b keeps 1 image: too few for a split
    assert cli.main(["scan", str(root), "--json"]) == 2
    out, err = capsys.readouterr()
    codes = {f["code"] for f in json.loads(out)["findings"]}
    assert "too_few_images" in codes
    assert "error: Class 'b' has 1 image" in err


def test_missing_folder_exits_2(tmp_path, capsys):
    assert cli.main(["scan", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_scan_module_imports_no_tensorflow():
    code = "import sys, cnn_studio.cli.scan, cnn_studio.data.report, cnn_studio.data.checks, cnn_studio.data.sample; " \
           "assert 'tensorflow' not in sys.modules and 'PySide6' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bundled_sample_scans_clean():
    from cnn_studio.data.checks import run_checks
    from cnn_studio.data.index import scan
    from cnn_studio.data.sample import SAMPLE_CLASSES, sample_dataset_path

    index = scan(sample_dataset_path())
    assert index.class_names == SAMPLE_CLASSES
    assert set(index.counts().values()) == {60}
    assert {(r.width, r.height) for r in index.records} == {(32, 32)}
    assert [f.code for f in run_checks(index)] == []
