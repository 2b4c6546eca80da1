"""Issue 23: bad datasets (manifests, corrections files, symlink loops) give clear messages or honest findings."""

from __future__ import annotations

import os

import pytest
from studio_testkit import make_class_image

from cnn_studio.cli import main
from cnn_studio.data.index import scan
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.labels.corrections import Corrections, apply_corrections


def _dataset(root, per_class=3):
    for label, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_class_image(label, 32, seed=10 * label + i).save(root / name / f"{name}_{i}.png")
    return root


def test_a_manifest_row_with_more_fields_than_its_header_is_a_clear_error_naming_the_line(tmp_path, capsys):
    root = _dataset(tmp_path / "data")
    manifest = root / "m.csv"
    manifest.write_text("path,label\ncat/cat_0.png,cat\ncat/cat_1.png,cat\ndog/dog, 0.png,dog\ndog/dog_1.png,dog\n")
    assert main(["scan", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "more fields than its header" in err and "line 4 (3 fields)" in err and "hint:" in err
    manifest.write_text("path,label\ncat/cat_0.png,cat,x\ncat/cat_1.png,cat\ndog/dog_0.png,dog\n")  # the first row
    assert main(["label-issues", str(manifest), "--backbone", "small_cnn", "--weights", "none"]) == 2
    assert "line 2 (3 fields)" in capsys.readouterr().err


def test_a_file_listed_twice_with_two_labels_is_left_out_with_a_finding(tmp_path):
    root = _dataset(tmp_path / "data")
    manifest = root / "m.csv"
    manifest.write_text("path,label\n" + "".join(f"cat/cat_{i}.png,cat\n" for i in range(3))
                        + "".join(f"dog/dog_{i}.png,dog\n" for i in range(3))
                        + "dog/dog_2.png,cat\ncat/cat_0.png,cat\n")
    prepared = prepare(manifest, PrepareOptions(corrections=None))
    assert prepared.index.counts() == {"cat": 3, "dog": 2}  # dog_2 left out; cat_0 counted once
    conflict = [f for f in prepared.findings if f.code == "manifest_label_conflict"]
    assert len(conflict) == 1 and conflict[0].paths == (str(root / "dog" / "dog_2.png"),)
    skipped = {s.path: s.detail for s in prepared.index.skipped}
    assert "'dog' on line 7, 'cat' on line 8" in skipped[str(root / "dog" / "dog_2.png")]
    assert any("counted once" in n for n in prepared.index.notes)
    assert not any(f.code == "skipped_files" for f in prepared.findings)


@pytest.mark.parametrize("command", ["scan", "label-issues", "train", "evaluate"])
def test_a_corrections_file_that_is_not_utf8_is_a_clear_error_naming_it(tmp_path, capsys, command, trained_run):
    root = _dataset(tmp_path / "data")
    bad = tmp_path / "fixes.csv"
    bad.write_bytes("path,original_label,new_label,when\ncat/Katze_Müller.png,cat,dog,x\n".encode("latin-1"))
    argv = {"scan": ["scan", str(root)],
            "label-issues": ["label-issues", str(root), "--backbone", "small_cnn", "--weights", "none"],
            "train": ["train", str(root), "--backbone", "small_cnn", "--weights", "none", "--out", str(tmp_path / "r")],
            "evaluate": ["evaluate", str(trained_run), "--data", str(root)]}[command]
    assert main([*argv, "--corrections", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"The corrections file {bad} is not UTF-8" in err and "hint:" in err
    assert not (tmp_path / "r").exists()


def test_symlink_loops_in_a_dataset_are_skipped_files_and_the_scan_goes_on(tmp_path, capsys):
    root = _dataset(tmp_path / "data")
    for a, b in (("loop1", "loop2"), ("cat/x.png", "cat/y.png"), ("dog/noext_a", "dog/noext_b")):
        os.symlink(root / b, root / a)
        os.symlink(root / a, root / b)
    index = scan(root)
    assert index.counts() == {"cat": 3, "dog": 3}
    skipped = {os.path.relpath(s.path, root): (s.reason, s.detail) for s in index.skipped}
    assert set(skipped) == {"loop1", "loop2", "cat/x.png", "cat/y.png", "dog/noext_a", "dog/noext_b"}
    assert all(reason == "unreadable" and "symbolic links" in detail for reason, detail in skipped.values())
    assert main(["scan", str(root)]) == 0
    assert "loop1: unreadable - Too many levels of symbolic links" in capsys.readouterr().out


def test_an_exclusion_for_a_file_not_in_the_dataset_is_unmatched_not_excluded(tmp_path):
    root = _dataset(tmp_path / "data")
    index = scan(root)
    c = Corrections(root=root)
    c.exclude(root / "cat" / "gone.png", "cat")
    c.exclude(tmp_path / "elsewhere" / "x.png", "cat")
    c.exclude(root / "dog" / "dog_0.png", "dog")
    fixed, applied = apply_corrections(index, c)
    assert (applied.excluded, applied.unmatched) == (1, 2)
    assert fixed.counts() == {"cat": 3, "dog": 2}
    assert "1 image(s) excluded" in applied.summary()
    assert "2 correction(s) name a file that is not in this dataset" in applied.summary()
    again, applied_again = apply_corrections(fixed, c)  # a corrected index: dog_0 was excluded before
    assert again.records == fixed.records and (applied_again.excluded, applied_again.unmatched) == (1, 2)
