"""The label check on the issue-11 data: 13-band tiles (raw bands through the model) and slices of volumes (named by key)."""

from __future__ import annotations

import shutil

from cnn_studio.labels.issues import find_label_issues
from cnn_studio.synthetic.multiband import make_multiband_dataset
from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset


def test_label_check_reads_every_band_of_a_tile_and_finds_a_planted_wrong_label(tmp_path):
    root = make_multiband_dataset(tmp_path / "tiles", classes=("wheat", "barley"), per_class=16, size=16, seed=3)
    planted = sorted((root / "wheat").iterdir())[0]
    moved = root / "barley" / f"was_wheat_{planted.name}"
    shutil.move(planted, moved)  # a wheat tile filed under barley
    found = find_label_issues(root, backbone="small_cnn", weights="none", folds=4, epochs=25, image_size=16,
                              corrections="none")
    assert found.method == "fold_models"
    assert len(found.paths) == 32 and all(p.endswith(".tif") for p in found.paths)
    assert found.probabilities.shape == (32, 2)
    top = [s.path for s in found.suspects[:3]]
    assert str(moved) in top, top


def test_label_check_names_slices_by_key(tmp_path):
    root = make_volume_dataset(tmp_path / "mri", studies_per_class=3, patients=3, seed=2,
                               form=StudyFormat(slices=12, size=16)).root
    found = find_label_issues(root, backbone="small_cnn", weights="none", folds=2, epochs=1, image_size=16,
                              corrections="none")
    assert found.paths and all("#slice=2:" in p for p in found.paths)
    assert len(set(found.paths)) == len(found.paths)
