"""The Data step's "How the images are divided" box: the validation and test shares and the random seed."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QSpinBox, QWidget

from cnn_studio.data.split import SEED, TEST_FRACTION, VAL_FRACTION

# the spin boxes the Data step reads (each is also an attribute of the page)
FIELDS = ("val_spin", "test_spin", "seed_spin")


class SplitSettingsBox(QGroupBox):
    """``changed()``: the user changed a share or the seed (not emitted by :meth:`show_split`)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("How the images are divided", parent)
        form = QFormLayout(self)
        self.val_spin = _percent_spin(round(VAL_FRACTION * 100), 5, 50,
                                      "Share of each class held back to check progress while training.")
        self.test_spin = _percent_spin(round(TEST_FRACTION * 100), 0, 40, "Share of each class kept aside, untouched, "
                                       "for the final evaluation. 0 = evaluate on the validation images.")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(SEED)
        self.seed_spin.setToolTip("Same number = same division of images, so results can be repeated.")
        form.addRow("Validation", self.val_spin)
        form.addRow("Test", self.test_spin)
        form.addRow("Random seed", self.seed_spin)
        for spin in (self.val_spin, self.test_spin, self.seed_spin):
            spin.valueChanged.connect(self.changed)

    def settings(self) -> dict:
        """The settings shown, as :func:`cnn_studio.data.prepare.prepare` takes them."""
        return {"val_fraction": self.val_spin.value() / 100, "test_fraction": self.test_spin.value() / 100,
                "seed": self.seed_spin.value(), "group_by": None}

    def show_split(self, split) -> None:
        """Show a stored split's settings (a project's), without emitting ``changed``."""
        for spin, value in ((self.val_spin, round(split.val_fraction * 100)),
                            (self.test_spin, round(split.test_fraction * 100)), (self.seed_spin, split.seed)):
            with QSignalBlocker(spin):
                spin.setValue(value)


def _percent_spin(value: int, lo: int, hi: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setSuffix(" %")
    spin.setToolTip(tip)
    return spin
