"""The Data step's row of ways to choose a dataset (a folder, a CSV manifest, the bundled and the generated
samples) and the two label tools that need a loaded dataset (find label issues, suggest images to label)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QMenu, QPushButton, QWidget

from cnn_studio.data.sample import GENERATED_SAMPLES

# the buttons the Data step drives (each is also an attribute of the page)
FIELDS = ("choose_button", "csv_button", "sample_button", "generated_button", "generated_menu",
          "suggest_button", "issues_button")


class DataSourceBar(QWidget):
    """The buttons; the page connects their clicks. ``generated_sample_chosen(kind)``: a generated sample
    was chosen in the "More samples" menu."""

    generated_sample_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.setToolTip("The folder that holds one sub-folder per class.")
        self.csv_button = QPushButton("Open CSV manifest…")
        self.csv_button.setToolTip("A .csv file with the columns path,label (and optionally split or group).")
        self.sample_button = QPushButton("Use sample dataset")
        self.sample_button.setToolTip("Small handwritten digits bundled with CNN Studio: try everything in a minute.")
        self.issues_button = QPushButton("Find label issues…")
        self.issues_button.setToolTip("Look for images whose label looks wrong (and near-duplicates), then review "
                                      "them: relabel, exclude or keep. Your files are never moved or deleted.")
        self.issues_button.setEnabled(False)
        self.suggest_button = QPushButton("Suggest images to label…")
        self.suggest_button.setToolTip("Choose a folder of unlabelled images: CNN Studio ranks them by what would "
                                       "teach the model most, and you label them with a key press. Your files are "
                                       "never moved or changed.")
        self.suggest_button.setEnabled(False)
        self.generated_button = QPushButton("More samples ▾")
        self.generated_button.setToolTip("Datasets made on this computer (no download): multispectral satellite "
                                         "tiles with 13 bands, and MRI volumes grouped into studies and patients.")
        self.generated_menu = QMenu(self.generated_button)
        for kind, sample in GENERATED_SAMPLES.items():
            action = self.generated_menu.addAction(sample.title, lambda k=kind: self.generated_sample_chosen.emit(k))
            action.setToolTip(sample.description)
            action.setStatusTip(sample.description)
        self.generated_menu.setToolTipsVisible(True)
        self.generated_button.setMenu(self.generated_menu)
        buttons = QHBoxLayout(self)
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.choose_button, self.csv_button, self.sample_button, self.generated_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.suggest_button)
        buttons.addWidget(self.issues_button)

    def set_dataset_loaded(self, loaded: bool) -> None:
        """The label tools work on a loaded dataset only."""
        self.issues_button.setEnabled(loaded)
        self.suggest_button.setEnabled(loaded)
