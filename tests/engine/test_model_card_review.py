"""The model card says what the label review changed before training (issue 12's corrections)."""

from __future__ import annotations

import shutil

import pytest

from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.export.model_card import build_card
from cnn_studio.runs.run_folder import open_run

pytestmark = pytest.mark.slow


def test_card_counts_changed_labels_and_prints_the_review(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    plain = build_card(open_run(run), [], 32)
    assert plain.split["labels_changed"] == 0 and plain.label_review == ""
    assert "Label review" not in plain.to_markdown()

    split = read_json(run / "split.json")
    split.setdefault("info", {})["corrections"] = {
        "relabelled": 2, "excluded": 1, "kept": 4, "labels_changed": 2,
        "summary": "2 labels changed and 1 image excluded after review (4 kept as labelled)"}
    write_json(run / "split.json", split)
    card = build_card(open_run(run), [], 32)
    assert card.split["labels_changed"] == 2
    assert card.label_review.startswith("2 labels changed")
    assert "Label review: 2 labels changed and 1 image excluded" in card.to_markdown()
