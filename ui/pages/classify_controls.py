"""The Classify step's controls: add images or a folder, clear, save the CSV; the heat maps (on or off, for
which class, how opaque) and the "not sure below" threshold."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

# the widgets the Classify step drives (each is also an attribute of the page)
FIELDS = ("add_button", "folder_button", "clear_button", "save_button", "heat_toggle", "opacity", "heat_class",
          "not_sure")


class ClassifyControls(QWidget):
    """Three rows: the buttons, the heat-map switch and its class, the opacity and the threshold; the page
    connects them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self._make_buttons())
        lay.addLayout(self._make_heat_row())
        lay.addLayout(self._make_view_row())

    def _make_buttons(self) -> QHBoxLayout:
        self.add_button = QPushButton("Add images…")
        self.folder_button = QPushButton("Add a folder…")
        self.clear_button = QPushButton("Clear")
        self.save_button = QPushButton("Save results as CSV…")
        self.save_button.setToolTip("One row per image: its top labels and probabilities (opens in Excel).")
        buttons = QHBoxLayout()
        for w in (self.add_button, self.folder_button, self.clear_button, self.save_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        return buttons

    def _make_heat_row(self) -> QHBoxLayout:
        self.heat_toggle = QCheckBox("Show where the network looked (Grad-CAM)")
        self.heat_toggle.setToolTip("Colours the part of each picture that most influenced the answer: red/yellow "
                                    "= strong evidence. If it is the background, the model may have learned a shortcut.")
        self.heat_class = QComboBox()
        self.heat_class.setToolTip("Which class the heat maps explain: the model's own answer for each picture, "
                                   "or one class for all (where is the evidence for 'dog'?).")
        self.heat_class.addItem("its answer", None)
        heat_row = QHBoxLayout()
        heat_row.addWidget(self.heat_toggle)
        heat_row.addWidget(QLabel("for"))
        heat_row.addWidget(self.heat_class)
        heat_row.addStretch(1)
        return heat_row

    def _make_view_row(self) -> QHBoxLayout:
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setMaximumWidth(160)
        self.opacity.setToolTip("Heat map opacity")
        self.not_sure = QDoubleSpinBox()
        self.not_sure.setRange(0.0, 0.99)
        self.not_sure.setSingleStep(0.05)
        self.not_sure.setDecimals(2)
        self.not_sure.setSpecialValueText("off")
        self.not_sure.setValue(0.0)
        self.not_sure.setToolTip("Answers whose top probability is below this become 'uncertain' instead of a "
                                 "possibly wrong label (e.g. 0.60). The probabilities are calibrated on the "
                                 "validation images when training ends. 'off': always give the best label.")
        view_row = QHBoxLayout()  # a row of its own: one row was too wide for a 1280-pixel screen
        view_row.addWidget(QLabel("opacity"))
        view_row.addWidget(self.opacity)
        view_row.addSpacing(12)
        view_row.addWidget(QLabel("not sure below"))
        view_row.addWidget(self.not_sure)
        view_row.addStretch(1)
        return view_row

    def set_classes(self, class_names) -> None:
        """The heat maps can explain the model's own answer or any one of its classes."""
        if self.heat_class.count() != len(class_names) + 1:
            self.heat_class.clear()
            self.heat_class.addItem("its answer", None)
            for i, name in enumerate(class_names):
                self.heat_class.addItem(name, i)
