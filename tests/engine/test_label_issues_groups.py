"""Label-issue folds keep a group (a patient) in one fold, so a patient's near-identical images do not leak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testkit import make_class_image

from cnn_studio.labels.issue_maths import stratified_folds
from cnn_studio.labels.issues import find_label_issues


def test_a_group_lands_in_one_fold_and_classes_stay_spread():
    rng = np.random.default_rng(1)
    groups, labels = [], []
    for g in range(20):  # 20 patients, 10 per class, 1-6 images each
        n = int(rng.integers(1, 7))
        groups += [f"p{g}"] * n
        labels += [g % 2] * n
    groups += ["", ""]  # two images without a patient id: each a group of its own
    labels += [0, 1]
    labels = np.array(labels)
    folds = stratified_folds(labels, 4, seed=3, groups=groups)
    for g in set(groups) - {""}:
        assert len({folds[i] for i, x in enumerate(groups) if x == g}) == 1, g
    assert set(folds) == {0, 1, 2, 3}
    for c in (0, 1):  # every fold holds images of each class, in similar numbers
        per_fold = np.bincount(folds[labels == c], minlength=4)
        assert per_fold.min() > 0 and per_fold.max() - per_fold.min() <= 6
    assert np.array_equal(folds, stratified_folds(labels, 4, seed=3, groups=groups))  # reproducible
    # without groups (or with none set) the per-image stratified folds are unchanged
    assert np.array_equal(stratified_folds(labels, 4, seed=3, groups=[""] * len(labels)),
                          stratified_folds(labels, 4, seed=3))


def _patients(root: Path):
    """Two classes of 8 patients, 4 near-identical images each; patient a0's images are all labelled "b".

    Returns (manifest with a group column, the same without it, the wrongly labelled paths)."""
    rng = np.random.default_rng(0)
    with_groups, without, wrong = [], [], set()
    root.mkdir(parents=True)
    for c, name in enumerate(("a", "b")):
        for p in range(8):
            base = np.asarray(make_class_image(c, 32, seed=100 * c + p)).astype(int)
            label = "b" if (c, p) == (0, 0) else name
            for s in range(4):
                f = root / f"{name}{p}_{s}.png"
                Image.fromarray(np.clip(base + rng.integers(-4, 5, base.shape), 0, 255).astype(np.uint8)).save(f)
                with_groups.append(f"{f},{label},patient_{name}{p}")
                without.append(f"{f},{label}")
                if label != name:
                    wrong.add(str(f))
    (root / "grouped.csv").write_text("path,label,group\n" + "\n".join(with_groups) + "\n")
    (root / "plain.csv").write_text("path,label\n" + "\n".join(without) + "\n")
    return root / "grouped.csv", root / "plain.csv", wrong


@pytest.mark.slow
def test_a_mislabelled_patient_is_found_only_when_its_images_share_a_fold(tmp_path):
    grouped, plain, wrong = _patients(tmp_path / "data")
    kwargs = {"backbone": "small_cnn", "image_size": 32, "folds": 4, "epochs": 8, "corrections": None}
    found = {s.path for s in find_label_issues(grouped, **kwargs).suspects}
    assert found == wrong  # all four, and no correct image
    # folds by image: the patient's siblings teach the wrong label to the model that judges each of them
    leaked = {s.path for s in find_label_issues(plain, **kwargs).suspects}
    assert len(leaked & wrong) < len(wrong)
