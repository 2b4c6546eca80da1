"""Label-issue finder: planted wrong labels and near-duplicates are found; correct labels mostly are not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testkit import make_class_image

from cnn_studio.labels.corrections import Corrections
from cnn_studio.labels.issue_maths import (
    confident_suspects,
    near_duplicate_pairs,
    normalise_rows,
    stratified_folds,
)
from cnn_studio.labels.issues import find_label_issues

CLASSES = ("circle", "square", "star")


def planted_dataset(root: Path, per_class: int = 20, flips_per_class: int = 2):
    """3 learnable classes; the first ``flips_per_class`` images of each are saved in the next class's
    folder (wrong label on purpose); one image of "circle" is copied, 3 levels brighter, into "square"
    (a cross-class near-duplicate). Returns (root, {flipped path: true class}, (original, copy))."""
    flipped = {}
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            dest = CLASSES[(c + 1) % 3] if i < flips_per_class else name
            path = root / dest / f"{name}_{i:02d}.png"
            make_class_image(c, 32, seed=i).save(path)
            if dest != name:
                flipped[str(path)] = name
    original = root / "circle" / "original.png"
    make_class_image(0, 32, seed=500).save(original)
    arr = np.clip(np.asarray(Image.open(original)).astype(int) + 3, 0, 255).astype(np.uint8)
    copy = root / "square" / "copy_of_original.png"
    Image.fromarray(arr).save(copy)
    flipped[str(copy)] = "circle"  # the copy is a circle image in the square folder: a wrong label too
    return root, flipped, (str(original), str(copy))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root, flipped, dup = planted_dataset(tmp_path_factory.mktemp("li") / "data")
    issues = find_label_issues(root, backbone="small_cnn", image_size=32, folds=4, epochs=12, corrections=None)
    return root, flipped, dup, issues


# ---------------------------------------------------------------------------- the maths, by hand


def test_confident_learning_rule_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.25, 0.75],  # labelled 0: the third looks like a 1
                      [0.2, 0.8], [0.1, 0.9], [0.7, 0.3],     # labelled 1: the last looks like a 0
                      [0.62, 0.38]])                           # labelled 0, below t0, but 1 is not above t1
    labels = np.array([0, 0, 0, 1, 1, 1, 0])
    idx, suggested, scores, thresholds = confident_suspects(probs, labels, 2)
    assert thresholds == pytest.approx([(0.9 + 0.8 + 0.25 + 0.62) / 4, 2.0 / 3])
    assert list(idx) == [2, 5]  # ranked by margin: 0.75-0.25=0.5 before 0.7-0.3=0.4
    assert list(suggested) == [1, 0]
    assert scores == pytest.approx([0.5, 0.4])


def test_folds_are_stratified_and_duplicates_need_high_similarity():
    labels = np.array([0] * 10 + [1] * 5)
    folds = stratified_folds(labels, 5, seed=3)
    assert all(np.sum((folds == f) & (labels == 0)) == 2 for f in range(5))
    assert all(np.sum((folds == f) & (labels == 1)) == 1 for f in range(5))
    rng = np.random.default_rng(0)
    e = rng.normal(size=(6, 50))
    e[4] = e[1] + rng.normal(scale=0.01, size=50)  # near copy of row 1
    pairs = near_duplicate_pairs(normalise_rows(e), 0.99)
    assert [(i, j) for i, j, _ in pairs] == [(1, 4)]


# ---------------------------------------------------------------------------- planted dataset


def test_planted_wrong_labels_are_found_and_correct_ones_mostly_not(planted):
    root, flipped, _dup, issues = planted
    assert len(issues.paths) == 62 and issues.method == "fold_models" and issues.folds == 4
    found = {s.path: s for s in issues.suspects}
    hits = [p for p in flipped if p in found]
    assert len(hits) >= len(flipped) - 1, f"found {len(hits)} of {len(flipped)} planted wrong labels"
    assert sum(found[p].suggested == flipped[p] for p in hits) >= len(hits) - 1  # and what they should be
    false = [p for p in found if p not in flipped]
    assert len(false) <= 3, f"{len(false)} correct labels flagged: {false}"
    scores = [s.score for s in issues.suspects]
    assert scores == sorted(scores, reverse=True)  # best first
    s = issues.suspects[0]
    assert s.given != s.suggested and 0 < s.score <= 1 and s.split in ("train", "val", "test")
    assert set(s.neighbours) == set(CLASSES) and all(len(v) == 3 for v in s.neighbours.values())
    assert s.path not in {p for v in s.neighbours.values() for p in v}
    assert np.allclose(issues.probabilities.sum(1), 1, atol=1e-4)


def test_near_duplicates_across_classes_and_splits(planted):
    _root, _flipped, (original, copy), issues = planted
    pairs = {frozenset((d.path_a, d.path_b)): d for d in issues.duplicates}
    d = pairs[frozenset((original, copy))]
    assert d.kind == "cross_class" and d.similarity > 0.999
    assert {d.label_a, d.label_b} == {"circle", "square"}
    # distinct images of one class are not duplicates, however alike the generated ones are
    assert len(issues.duplicates) <= 2
    for dup in issues.duplicates:
        assert dup.label_a != dup.label_b or dup.split_a != dup.split_b


def test_corrections_apply_before_the_search_and_kept_labels_are_not_suggested_again(planted, tmp_path):
    root, flipped, _dup, issues = planted
    top, second = issues.suspects[0], issues.suspects[1]
    c = Corrections()
    c.relabel(top.path, top.given, top.suggested)
    c.keep(second.path, second.given)
    again = find_label_issues(root, backbone="small_cnn", image_size=32, folds=4, epochs=12,
                              corrections=c.save(tmp_path / "corrections.csv"))
    paths = {s.path for s in again.suspects}
    assert top.path not in paths and second.path not in paths
    assert again.kept == (1 if second.path in {s.path for s in issues.suspects} else 0)
    i = again.paths.index(top.path)
    assert again.class_names[again.labels[i]] == top.suggested  # the corrected label is the one judged


def test_features_path_and_cli_json(planted, capsys):
    """The frozen-feature path (softmax regression per fold) and the CLI's JSON, best first."""
    from cnn_studio.cli import main

    root, flipped, _dup, _issues = planted
    feats = find_label_issues(root, backbone="small_cnn", image_size=32, folds=4, method="features",
                              corrections=None)
    assert feats.method == "features"
    assert len(set(flipped) & {s.path for s in feats.suspects}) >= len(flipped) - 2

    assert main(["label-issues", str(root), "--backbone", "small_cnn", "--image-size", "32", "--folds", "3",
                 "--epochs", "10", "--corrections", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["suspects"]
    assert rows and {"path", "given", "suggested", "score"} <= set(rows[0])
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert len(set(flipped) & {r["path"] for r in rows}) >= len(flipped) - 2
    assert out["near_duplicates"][0]["kind"] == "cross_class"


def test_fold_training_uses_the_trainers_callback_progress_and_divergence_rule(tmp_path):
    """Issue 20: the folds train through the trainer's pieces. Their epochs report as the check's progress
    line, and a loss that becomes NaN/inf stops the check with what to do (a second fit loop said nothing
    and ranked the images by NaN probabilities)."""
    from cnn_studio.core import events as ev
    from cnn_studio.core.errors import StudioError

    root, _flipped, _dup = planted_dataset(tmp_path / "data", per_class=8, flips_per_class=1)
    seen = []
    find_label_issues(root, backbone="small_cnn", image_size=32, folds=2, epochs=2, corrections=None,
                      sink=seen.append)
    details = [e.detail for e in seen if isinstance(e, ev.TaskProgress)]
    assert "training fold 1 of 2, epoch 2 of 2" in details and "training fold 2 of 2, epoch 1 of 2" in details
    assert not any(isinstance(e, (ev.EpochStarted, ev.BatchEnded)) for e in seen), "fold epochs are not a run's"
    with pytest.raises(StudioError, match="stopped learning in fold 1"):
        find_label_issues(root, backbone="small_cnn", image_size=32, folds=2, epochs=2, corrections=None,
                          learning_rate=1e30)
