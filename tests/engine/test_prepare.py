"""data.prepare.prepare: the one scan → check → split path of the Data page, ``cnn-studio scan`` and ``train``."""

from __future__ import annotations

import pytest

from cnn_studio.core.errors import ConfigError
from cnn_studio.data.index import scan
from cnn_studio.data.prepare import PrepareOptions, min_images_per_class, prepare
from cnn_studio.data.split import make_split


def _codes(prepared):
    return [f.code for f in prepared.findings]


def test_prepared_split_is_make_split_with_the_same_settings(image_folder):
    root = image_folder(classes=("a", "b", "c"), per_class=50)  # 30 train, 15 val, 5 test a class: no sample-size warning
    prepared = prepare(root, PrepareOptions(val_fraction=0.3, test_fraction=0.1, seed=5))
    assert prepared.usable and prepared.findings == [] and prepared.first_error is None
    expected = make_split(scan(root), val_fraction=0.3, test_fraction=0.1, seed=5)
    assert prepared.split.to_dict() == expected.to_dict()
    assert prepared.report.split_counts["test"] == {"a": 5, "b": 5, "c": 5}
    # an index instead of a folder (the Data page re-splitting) gives the same split without a rescan
    again = prepare(prepared.index, PrepareOptions(val_fraction=0.3, test_fraction=0.1, seed=5))
    assert again.split.to_dict() == expected.to_dict()


def test_a_test_part_needs_three_images_per_class(image_folder):
    assert (min_images_per_class(0.0), min_images_per_class(0.1)) == (2, 3)
    root = image_folder(classes=("a", "b"), per_class=8)
    image_folder(classes=("small",), per_class=2, root=root)
    without_test = prepare(root, PrepareOptions(val_fraction=0.25))
    assert without_test.usable
    with_test = prepare(root, PrepareOptions(val_fraction=0.25, test_fraction=0.1))
    assert not with_test.usable and with_test.split is None
    assert with_test.first_error.code == "too_few_images" and "at least 3" in with_test.first_error.message
    assert with_test.report.split_counts is None


def test_a_split_that_cannot_be_made_is_an_error_finding(tmp_path, image_folder):
    images = image_folder(classes=("a", "b"), per_class=6)
    rows = ["path,label,group"]
    for name in ("a", "b"):
        for i, p in enumerate(sorted((images / name).iterdir())):
            # class a: one patient only, so a grouped split cannot give it training and validation images
            rows.append(f"{p},{name},{'p0' if name == 'a' else f'q{i}'}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    prepared = prepare(manifest, PrepareOptions(val_fraction=0.3, group_by="group"))
    assert prepared.split is None and not prepared.usable
    assert _codes(prepared)[0] == "split_failed"
    assert prepared.report.findings[0]["code"] == "split_failed"
    # the same data split without grouping is fine
    assert prepare(manifest, PrepareOptions(val_fraction=0.3, group_by="none")).usable


def test_settings_no_data_could_meet_fail_before_scanning(tmp_path):
    with pytest.raises(ConfigError, match="val_fraction"):
        prepare(tmp_path / "does-not-exist", PrepareOptions(val_fraction=0.0))
    with pytest.raises(ConfigError, match="group_by"):
        prepare(tmp_path / "does-not-exist", PrepareOptions(group_by="patient"))
