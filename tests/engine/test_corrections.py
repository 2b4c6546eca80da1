"""Label corrections: decisions stored beside the data, applied by prepare(), undoable; files untouched."""

from __future__ import annotations

import csv
import json

import pytest

from cnn_studio.core.errors import DatasetError
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.labels.corrections import EXCLUDED, Corrections, default_path
from cnn_studio.runs.project import Project


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _files(root):
    return sorted((p.relative_to(root).as_posix(), p.stat().st_size) for p in root.rglob("*") if p.is_file())


def test_relabel_exclude_keep_undo_and_csv_round_trip(tmp_path):
    c = Corrections()
    c.relabel("/d/cat/1.png", "cat", "dog")
    c.exclude("/d/cat/2.png", "cat")
    c.keep("/d/dog/3.png", "dog")
    assert c.counts() == {"relabel": 1, "exclude": 1, "keep": 1}
    c.relabel("/d/cat/2.png", "cat", "dog")  # changes its mind: 2.png relabelled instead of excluded
    assert c.get("/d/cat/2.png").new == "dog" and c.get("/d/cat/2.png").original == "cat"
    assert c.undo().new == "dog"
    assert c.get("/d/cat/2.png").new == EXCLUDED  # undo restores the earlier decision
    path = c.save(tmp_path / "corrections.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["path"] for r in rows] == ["/d/cat/1.png", "/d/cat/2.png", "/d/dog/3.png"]
    assert set(rows[0]) == {"path", "original_label", "new_label", "when"}
    assert [r["new_label"] for r in rows] == ["dog", "excluded", "kept"]
    back = Corrections.load(path)
    assert [d.to_dict() for d in back.decisions] == [d.to_dict() for d in c.decisions]
    while c.undo() is not None:
        pass
    assert len(c) == 0 and not c.can_undo


def test_prepare_applies_corrections_without_touching_files(image_folder, tmp_path, home):
    root = image_folder(per_class=6)
    before = _files(root)
    cat = sorted((root / "cat").glob("*.png"))
    c = Corrections()
    c.relabel(cat[0], "cat", "dog")
    c.exclude(cat[1], "cat")
    c.keep(cat[2], "cat")
    csv_path = c.save(tmp_path / "corrections.csv")

    plain = prepare(root, PrepareOptions(corrections=None))
    fixed = prepare(root, PrepareOptions(corrections=csv_path, val_fraction=0.34))
    assert plain.index.counts() == {"cat": 6, "dog": 6}
    assert fixed.index.counts() == {"cat": 4, "dog": 7}  # one moved to dog, one left out
    label = {r.path: fixed.index.class_names[r.label] for r in fixed.index.records}
    assert label[str(cat[0])] == "dog" and str(cat[1]) not in label and label[str(cat[2])] == "cat"
    in_split = {r.path: r.label for part in (fixed.split.train, fixed.split.val) for r in part}
    assert in_split[str(cat[0])] == 1 and str(cat[1]) not in in_split
    rec = fixed.split.info["corrections"]
    assert (rec["relabelled"], rec["excluded"], rec["kept"], rec["labels_changed"]) == (1, 1, 1, 2)
    assert len(rec["decisions"]) == 3
    assert any(n.startswith("Label review: 1 label(s) changed and 1 image(s) excluded") for n in fixed.report.notes)
    assert _files(root) == before  # nothing moved, renamed, deleted or added

    # the project keeps them with its split; re-splitting the corrected index gives the same labels
    assert Project(split=fixed.split.to_dict()).corrections["labels_changed"] == 2
    again = prepare(fixed.index, PrepareOptions(corrections=csv_path, seed=7))
    assert again.index.counts() == fixed.index.counts()
    assert again.split.info["corrections"]["excluded"] == 1


def test_default_file_is_used_by_auto_and_undo_restores(image_folder, home):
    root = image_folder(per_class=4)
    dog = sorted((root / "dog").glob("*.png"))
    c = Corrections.for_dataset(root)
    assert c.path == default_path(root) and str(home) in str(c.path)
    c.relabel(dog[0], "dog", "cat")
    c.save()
    assert prepare(root).index.counts() == {"cat": 5, "dog": 3}  # "auto": the review's own file
    assert prepare(root, PrepareOptions(corrections="none")).index.counts() == {"cat": 4, "dog": 4}
    c.undo()
    c.save()
    undone = prepare(root)
    assert undone.index.counts() == {"cat": 4, "dog": 4} and "corrections" not in undone.split.info


def test_missing_corrections_file_is_a_dataset_error(image_folder, tmp_path):
    with pytest.raises(DatasetError, match="cannot be read"):
        prepare(image_folder(per_class=3), PrepareOptions(corrections=tmp_path / "nope.csv"))


def test_scan_cli_honours_corrections(image_folder, tmp_path, home, capsys):
    from cnn_studio.cli import main

    root = image_folder(per_class=5)
    cat = sorted((root / "cat").glob("*.png"))
    c = Corrections()
    c.relabel(cat[0], "cat", "dog")
    path = c.save(tmp_path / "fix.csv")
    assert main(["scan", str(root), "--json", "--corrections", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["corrections"]["relabelled"] == 1
    assert main(["scan", str(root), "--json"]) == 0  # no default file for this dataset: as the files say
    assert "corrections" not in json.loads(capsys.readouterr().out)


def test_corrections_and_added_labels_share_one_undo_and_save(tmp_path):
    """One owner (labels/latest_per_image.py): the latest entry per image, undo back to the one before, atomic save."""
    from cnn_studio.labels.added_labels import AddedLabels
    from cnn_studio.labels.corrections import Corrections

    added = AddedLabels()
    added.label(tmp_path / "a.png", "cat")
    added.label(tmp_path / "b.png", "dog")
    added.label(tmp_path / "a.png", "dog")  # re-labelled: the latest wins and moves to the end
    assert [(p.rsplit("/", 1)[-1], lab) for p, lab in ((x.path, x.label) for x in added.labels)] == \
        [("b.png", "dog"), ("a.png", "dog")]
    assert added.undo().label == "dog" and added.get(tmp_path / "a.png").label == "cat" and len(added) == 2
    fixes = Corrections()
    fixes.relabel(tmp_path / "a.png", "cat", "dog")
    fixes.exclude(tmp_path / "a.png", "cat")
    assert fixes.undo().new == "excluded" and fixes.get(tmp_path / "a.png").new == "dog"
    for log in (added, fixes):
        with pytest.raises(ValueError, match=rf"{type(log).__name__}\.save needs a path"):
            log.save()
        saved = log.save(tmp_path / f"{type(log).__name__}.csv")
        assert saved.read_text().count("\n") == len(log) + 1 and log.path == saved
    assert AddedLabels.load(tmp_path / "AddedLabels.csv").get(tmp_path / "a.png").label == "cat"
