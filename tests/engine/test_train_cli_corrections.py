"""``cnn-studio train --corrections FILE|auto|none``: which label review the run trains with."""

from __future__ import annotations

import pytest

from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.labels.corrections import Corrections

pytestmark = pytest.mark.slow

ARGS = ["--backbone", "small_cnn", "--weights", "none", "--image-size", "16", "--epochs", "1", "--batch-size", "8",
        "--val-fraction", "0.25"]


@pytest.fixture
def main(monkeypatch, tmp_path):
    import cnn_studio.cli as cli

    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli, "SUBCOMMANDS", {"train": "train"})
    return cli.main


def _recorded(out):
    """(corrections recorded in the run's split.json or None, images in the run's split)."""
    split = read_json(RunLayout(out).split)
    info = split.get("info", {})
    n = sum(len(split.get(part) or []) for part in ("train", "val", "test"))
    return info.get("corrections"), n


def test_train_uses_the_review_by_default_another_file_or_none(main, image_folder, tmp_path, capsys):
    root = image_folder(per_class=8, size=16)
    cat = sorted((root / "cat").glob("*.png"))
    review = Corrections.for_dataset(root)  # what the app's review queue saves for this dataset
    review.exclude(cat[0], "cat")
    review.exclude(cat[1], "cat")
    review.save()
    other = Corrections()
    other.relabel(cat[2], "cat", "dog")
    other_file = other.save(tmp_path / "other.csv")

    assert main(["train", str(root), *ARGS, "--out", str(tmp_path / "auto")]) == 0, capsys.readouterr().err
    rec, n = _recorded(tmp_path / "auto")
    assert (rec["excluded"], rec["relabelled"], n) == (2, 0, 14)

    assert main(["train", str(root), *ARGS, "--corrections", str(other_file), "--out", str(tmp_path / "file")]) == 0
    rec, n = _recorded(tmp_path / "file")
    assert (rec["excluded"], rec["relabelled"], n) == (0, 1, 16)
    assert rec["file"] == str(other_file)

    assert main(["train", str(root), *ARGS, "--corrections", "none", "--out", str(tmp_path / "none")]) == 0
    assert _recorded(tmp_path / "none") == (None, 16)
    capsys.readouterr()

    missing = tmp_path / "missing.csv"
    assert main(["train", str(root), *ARGS, "--corrections", str(missing), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "missing.csv" in err and "cannot be read" in err
    assert not (tmp_path / "x").exists()


def test_help_names_the_flag(main, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--corrections FILE|auto|none" in text and "review queue" in text
