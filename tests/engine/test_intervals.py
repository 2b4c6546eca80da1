"""cnn_studio.evaluation.intervals: Wilson and bootstrap intervals, the "too few images to tell" rule, and metrics that carry them."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.evaluation.evaluate import Metrics, compute_metrics
from cnn_studio.evaluation.intervals import (
    MIN_IMAGES,
    TOO_FEW,
    auc_binary,
    auc_estimate,
    compare_with_guessing,
    describe,
    proportion,
    wilson,
)


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Stat Med 17:857, table I, method 3 (Wilson score)
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0),  # all successes: low = n / (n + z²)
])
def test_wilson_matches_textbook_values(k, n, low, high):
    lo, hi = wilson(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_too_few_images_rule():
    assert proportion(3, 4)["verdict"] == TOO_FEW and describe(proportion(3, 4)) == f"{TOO_FEW} (4 images)"
    enough = proportion(8, MIN_IMAGES)
    assert enough["verdict"] is None and enough["n"] == MIN_IMAGES
    assert describe(enough).startswith("0.800 (95% CI 0.490–0.943, 10 images)")


def _scores(n, rng):
    y = rng.integers(0, 2, n).astype(bool)
    return y, rng.normal(size=n) + 1.2 * y


def test_bootstrap_auc_interval_contains_the_estimate_narrows_with_n_and_is_seeded():
    rng = np.random.default_rng(0)
    widths = []
    for n in (40, 400, 2000):
        y, s = _scores(n, rng)
        est = auc_estimate(y, s, resamples=400)
        assert est["value"] == pytest.approx(auc_binary(y, s))
        assert est["low"] <= est["value"] <= est["high"]
        assert est["n"] == n and est["verdict"] is None
        widths.append(est["high"] - est["low"])
    assert widths[0] > widths[1] > widths[2]
    y, s = _scores(60, np.random.default_rng(1))
    assert auc_estimate(y, s, resamples=200) == auc_estimate(y, s, resamples=200)  # seeded


def test_auc_needs_ten_of_each_side_like_a_proportion():
    y = np.array([True] * 9 + [False] * 12)
    assert auc_estimate(y, np.linspace(1, 0, 21), resamples=50)["verdict"] == TOO_FEW
    y = np.array([True] * 10 + [False] * 12)
    assert auc_estimate(y, np.linspace(1, 0, 22), resamples=50)["verdict"] is None


def _perfect(per_class: int):
    y = [0] * per_class + [1] * per_class
    return compute_metrics(y, np.array([[0.9, 0.1]] * per_class + [[0.1, 0.9]] * per_class), ["a", "b"])


def test_classes_of_eight_images_are_too_few_for_auc_and_f1_as_for_precision_and_recall():
    m = _perfect(8)
    iv = m.intervals
    for name in ("a", "b"):
        est = iv["per_class"][name]
        assert est["recall"]["verdict"] == est["precision"]["verdict"] == TOO_FEW
        assert est["f1"]["verdict"] == TOO_FEW and iv["roc_auc"][name]["verdict"] == TOO_FEW
    assert iv["roc_auc"]["macro"]["verdict"] == TOO_FEW
    text = m.to_text().split("confusion matrix")[0]
    assert "1.0000 (95% CI 1.0000–1.0000" not in text and f"ROC AUC   {TOO_FEW} (16 images)" in text
    assert f"f1        {TOO_FEW} (8 images)" in text


def test_f1_is_too_few_when_recall_is_even_if_many_images_are_involved():
    # class "a": 6 images, but 14 predicted as it: recall says too few, so F1 must too
    y = [0] * 6 + [1] * 30
    p = np.array([[0.9, 0.1]] * 6 + [[0.8, 0.2]] * 8 + [[0.1, 0.9]] * 22)
    est = compute_metrics(y, p, ["a", "b"]).intervals["per_class"]["a"]
    assert est["recall"]["verdict"] == TOO_FEW and est["f1"]["n"] >= MIN_IMAGES
    assert est["f1"]["verdict"] == TOO_FEW


def test_a_perfect_score_on_enough_images_is_not_shown_as_certain():
    iv = _perfect(12).intervals
    for est in (iv["roc_auc"]["a"], iv["roc_auc"]["macro"], iv["per_class"]["a"]["f1"]):
        assert est["verdict"] is None and est["value"] == 1.0
        assert est["high"] == 1.0 and est["low"] == pytest.approx(wilson(12, 12)[0])  # 12 on the smaller side
        assert "95% CI 0.76–1.00" in describe(est, 2)


def test_a_point_interval_from_an_older_evaluation_is_not_shown_as_an_interval():
    old = {"value": 1.0, "low": 1.0, "high": 1.0, "n": 16, "method": "bootstrap", "verdict": None}
    assert describe(old, 2) == "1.00 (no 95% interval could be computed, 16 images)"


def test_metrics_carry_intervals_and_round_trip():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 90)
    p = rng.dirichlet([1, 1, 1], 90)
    p[np.arange(90), y] += 0.4
    p /= p.sum(axis=1, keepdims=True)
    m = compute_metrics(y, p, ["a", "b", "c"])
    iv = m.intervals
    assert iv["accuracy"]["value"] == pytest.approx(m.accuracy) and iv["accuracy"]["n"] == 90
    for row in m.per_class:
        est = iv["per_class"][row["name"]]
        assert est["recall"]["value"] == pytest.approx(row["recall"]) and est["recall"]["n"] == row["support"]
        assert est["precision"]["value"] == pytest.approx(row["precision"])
        assert est["f1"]["low"] <= row["f1"] <= est["f1"]["high"]
        assert iv["roc_auc"][row["name"]]["value"] == pytest.approx(m.roc_auc[row["name"]])
    assert iv["roc_auc"]["macro"]["low"] <= m.roc_auc["macro"] <= iv["roc_auc"]["macro"]["high"]
    assert m.chance["verdict"] == "better"
    assert Metrics.from_dict(m.to_dict()) == m
    text = m.to_text()
    assert f"accuracy {m.accuracy:.4f} (95% CI" in text and "90 images)" in text


def test_a_handful_of_images_is_too_few_to_tell_in_the_report():
    m = compute_metrics([0, 1, 0, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]), ["x", "y"])
    text = m.to_text()
    assert f"accuracy {TOO_FEW} (4 images)" in text and f"macro ROC AUC {TOO_FEW} (4 images)" in text
    assert "1.0000" not in text.split("confusion matrix")[0].split("macro F1")[1]


def test_chance_verdicts():
    names = ["a", "b"]
    flat = compare_with_guessing(np.array([0, 1] * 8), np.zeros(16, int), names)
    assert flat["verdict"] == "not_better" and "not better than guessing" in flat["message"]
    majority = compare_with_guessing(np.array([0] * 18 + [1] * 2), np.zeros(20, int), names)
    assert majority["verdict"] == "not_better" and "largest class, 'a'" in majority["message"]
    thin = compare_with_guessing(np.array([0, 1, 0, 1, 0, 1]), np.array([0, 1, 0, 1, 0, 0]), names)
    assert thin["verdict"] == "unproven" and "cannot show" in thin["message"]
    assert compare_with_guessing(np.array([0, 1] * 30), np.array([0, 1] * 30), names)["verdict"] == "better"
