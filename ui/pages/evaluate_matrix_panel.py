"""The Evaluate step's Confusion matrix tab: the matrix and its legend beside the images of the chosen cell,
with the actions that relabel, exclude or keep one of them (widgets only: the page fills and connects them)."""

from __future__ import annotations

from cnn_studio.ui.widgets.confusion_matrix import ConfusionMatrix, legend_html
from cnn_studio.ui.widgets.image_grid import ImageGrid
from cnn_studio.ui.widgets.label_actions import LabelActions
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

# the widgets the Evaluate step drives (each is also an attribute of the page)
FIELDS = ("matrix", "matrix_legend", "cell_label", "cell_images", "label_actions")


class MatrixPanel(QSplitter):
    """The matrix (left) and the chosen cell's images with their label actions (right)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.matrix = ConfusionMatrix()
        self.matrix_legend = QLabel(legend_html())
        self.matrix_legend.setWordWrap(True)
        self.cell_label = QLabel("Click a cell to see its images.")
        self.cell_images = ImageGrid(80)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.matrix, 1)
        ll.addWidget(self.matrix_legend)
        self.addWidget(left)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.cell_label)
        rl.addWidget(self.cell_images, 1)
        self.label_actions = LabelActions(shortcut_scope=right)
        rl.addWidget(self.label_actions)
        self.addWidget(right)
        self.setSizes([420, 380])
