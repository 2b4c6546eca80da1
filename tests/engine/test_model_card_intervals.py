"""The model card's "how sure" lines: the one too-few rule, no point interval shown as certainty, study intervals."""

from __future__ import annotations

import numpy as np

from cnn_studio.evaluation.evaluate import compute_metrics
from cnn_studio.evaluation.intervals import TOO_FEW
from cnn_studio.export.model_card import ModelCard, _metrics_summary


def _card(metrics) -> str:
    card = ModelCard(name="m", backbone="small_cnn", weights_source="none", classes=list(metrics.class_names),
                     input_spec="", input_size=32, resize="stretch", metrics=_metrics_summary(metrics.to_dict()))
    return card.to_markdown()


def test_card_says_too_few_for_auc_and_f1_on_classes_of_eight_images():
    y = [0] * 8 + [1] * 8
    md = _card(compute_metrics(y, np.array([[0.9, 0.1]] * 8 + [[0.1, 0.9]] * 8), ["a", "b"]))
    assert f"- macro ROC AUC: {TOO_FEW} (16 images)" in md
    row = next(line for line in md.splitlines() if line.startswith("| a |"))
    assert row.count(TOO_FEW) == 4  # precision, recall, F1 and ROC AUC alike
    assert "1.000–1.000" not in md and "a figure needs 10 images in each group" in md


def test_card_gives_study_figures_with_intervals_and_the_chance_warning():
    keys, studies, y, rows = [], [], [], []
    for s in range(10):  # 10 studies, 8 right: not enough to beat guessing
        label, misread = s % 2, s in (0, 2)
        for i in range(3):
            keys.append(f"s{s}.nii#slice=2:{i}")
            studies.append(f"s{s}.nii")
            y.append(label)
            rows.append([0.2, 0.8] if (label == 1) != misread else [0.8, 0.2])
    md = _card(compute_metrics(y, np.array(rows), ["a", "b"], keys, studies=studies))
    assert "studies: accuracy 0.800 (95% CI 0.490–0.943, 10 studies), balanced accuracy" in md
    assert "**Warning (per study):** 10 studies cannot show that the model beats guessing" in md
