"""Slices and tiles are named as a person reads them: the class table's unit, a slice's display name."""

from __future__ import annotations

from cnn_studio.ui.qmodels.class_table import ClassTableModel
from PySide6.QtCore import Qt

from cnn_studio.data.records import DatasetIndex, ImageRecord, display_name, slice_key


def _index(**fields) -> DatasetIndex:
    recs = tuple(ImageRecord(f"/d/{c}/{i}.x", label, **fields) for label, c in enumerate("ab") for i in range(2))
    return DatasetIndex("/d", "class_folders", ("a", "b"), recs)


def test_class_table_counts_images_tiles_or_slices(qtbot):
    model = ClassTableModel()
    header = lambda: model.headerData(1, Qt.Orientation.Horizontal)  # noqa: E731
    model.set_index(_index())
    assert header() == "Images"
    model.set_index(_index(bands=13, dtype="uint16"))
    assert header() == "Tiles"
    assert "tiles the network learns from" in model.headerData(2, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole).lower()
    model.set_index(_index(study="/d/s1.nii.gz", slice_index=3))
    assert header() == "Slices"
    model.set_index(None)
    assert header() == "Images"


def test_display_name_of_a_slice_key():
    assert display_name(slice_key("/mri/lesion/sub-02.nii.gz", 2, 13)) == "sub-02.nii.gz, slice 13"
    assert display_name("/leaf/ä b.png") == "ä b.png"


def test_train_step_plan_counts_tiles_or_slices():
    from cnn_studio.ui.pages.train_page import _unit

    from cnn_studio.data.records import Split

    def split(**fields):
        recs = tuple(ImageRecord(f"/d/{i}.x", i % 2, **fields) for i in range(4))
        return Split(("a", "b"), train=recs[:3], val=recs[3:])

    assert _unit(split()) == "images"
    assert _unit(split(bands=13)) == "tiles"
    assert _unit(split(study="/d/s.nii.gz", slice_index=1)) == "slices"
