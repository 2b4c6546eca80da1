"""SliceSettings: how volumes (NIfTI files, DICOM series) become the 2-D slices the model sees.

The axis the volume is cut across and which slices are kept: every slice with content (tissue), all
slices, or the middle K. The values are those of :class:`cnn_studio.data.records.VolumeSlicing` and
:attr:`TrainConfig.slice_axis` / :attr:`TrainConfig.slices`; the Data step rescans when they change.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from cnn_studio.data.records import SLICE_AXES, SLICE_KINDS, VolumeSlicing
from cnn_studio.training.config import parse_slices

# The axis numbers are the CLI's (--slice-axis 0, 1, 2) and the model card's: counted from 0, as numpy does.
_AXIS_WORDS = {2: "axis 2 (third) — axial for most NIfTI files", 1: "axis 1 (second) — coronal",
               0: "axis 0 (first) — sagittal"}
AXES = tuple((axis, _AXIS_WORDS[axis]) for axis in reversed(SLICE_AXES))
_KIND_WORDS = {"content": "every slice with content", "all": "all slices", "middle": "the middle slices"}
KINDS = tuple((kind, _KIND_WORDS[kind]) for kind in SLICE_KINDS)
MIDDLE_DEFAULT = 16

EXPLAIN = ("Each <b>study</b> (a volume file or a folder of DICOM slices) is cut into 2-D slices; the model "
           "learns from slices and a study's answer is the average over its slices. All slices of a study — "
           "and all studies of a patient — stay together on one side of the train/validation split.")


class SliceSettings(QGroupBox):
    """Slice axis and which slices to keep.

    Signals
    -------
    changed()
        The user chose another axis or another set of slices.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Volumes: how studies become slices", parent)
        self.setObjectName("slice_settings")
        self.explain = QLabel(EXPLAIN)
        self.explain.setWordWrap(True)
        self.axis = QComboBox()
        self.axis.setToolTip("The direction the volumes are cut in. Axial (axis 2, the third) is the usual view of a head scan; the command line's --slice-axis uses the same numbers.")
        for value, text in AXES:
            self.axis.addItem(text, value)
        self.kind = QComboBox()
        self.kind.setToolTip("'Every slice with content' leaves out the empty slices at the ends of a volume "
                             "(air around the head). 'The middle slices' keeps the K slices around the centre.")
        for value, text in KINDS:
            self.kind.addItem(text, value)
        self.middle = QSpinBox()
        self.middle.setRange(1, 4096)
        self.middle.setValue(MIDDLE_DEFAULT)
        self.middle.setSuffix(" slices")
        self.middle.setToolTip("How many slices around the centre of each volume are kept.")
        self.middle.setEnabled(False)
        which = QHBoxLayout()
        which.addWidget(self.kind)
        which.addWidget(self.middle)
        which.addStretch(1)
        form = QFormLayout(self)
        form.addRow(self.explain)
        form.addRow("Cut across", self.axis)
        form.addRow("Which slices", which)
        self.axis.activated.connect(self._on_user_change)
        self.kind.activated.connect(self._on_user_change)
        self.middle.editingFinished.connect(self._on_middle_done)
        self._last = self.value()

    def value(self) -> tuple[int, str]:
        """``(axis, slices)`` as :class:`VolumeSlicing` takes them, e.g. ``(2, "middle:16")``."""
        kind = self.kind.currentData()
        return int(self.axis.currentData()), (f"middle:{self.middle.value()}" if kind == "middle" else kind)

    def set_value(self, axis: int, slices: str) -> None:
        """Show ``axis`` and ``slices`` without emitting :attr:`changed` (an unknown value shows the default)."""
        try:
            kind, k = parse_slices(slices)
        except Exception:  # noqa: BLE001 - a damaged project value: show the default
            kind, k = parse_slices(VolumeSlicing.slices)
        with QSignalBlocker(self.axis), QSignalBlocker(self.kind), QSignalBlocker(self.middle):
            self.axis.setCurrentIndex(max(0, self.axis.findData(axis)))
            self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))
            if kind == "middle":
                self.middle.setValue(k)
        self.middle.setEnabled(kind == "middle")
        self._last = self.value()

    def choose(self, axis: int | None = None, slices: str | None = None) -> None:
        """Pick ``axis`` and/or ``slices`` as the user would; emits :attr:`changed` when something changed."""
        current = self.value()
        self.set_value(current[0] if axis is None else axis, current[1] if slices is None else slices)
        self._last = current
        self._on_user_change()

    def _on_middle_done(self) -> None:
        self._on_user_change()

    def _on_user_change(self, *_args) -> None:
        self.middle.setEnabled(self.kind.currentData() == "middle")
        now = self.value()
        if now != self._last:
            self._last = now
            self.changed.emit()
