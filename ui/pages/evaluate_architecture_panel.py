"""The Evaluate step's Architecture tab: every layer with its parameters, and the first layer's filters."""

from __future__ import annotations

from cnn_studio.ui.pages.result_tables import fill_table, results_table
from cnn_studio.ui.widgets.image_grid import array_to_pixmap
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from cnn_studio.explain.architecture import shape_text as text

# the widgets tests and the page read (each is also an attribute of the page)
FIELDS = ("arch_text", "arch_table", "filters")


def shape_text(shape) -> str:
    """A layer's output shape for the screen: (None, 32, 32, 16) → "32 × 32 × 16"."""

    return text(shape, " × ", "–")


class ArchitecturePanel(QWidget):
    """The layer table beside the first layer's filters, enlarged."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.arch_text = QLabel("Every layer of the network, with how many numbers (parameters) it learns. "
                                "A convolution re-uses one small kernel at every position of the image, "
                                "which is why it needs so few parameters.")
        self.arch_text.setWordWrap(True)
        self.arch_text.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.arch_table = results_table(["Layer", "Type", "Output (h × w × maps)", "Parameters", "Trainable", "Note"])
        self.filters = QLabel()
        self.filters.setToolTip("The first layer's filters: the small colour patterns the network looks for first.")
        alay = QVBoxLayout(self)
        alay.addWidget(self.arch_text)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.arch_table)
        filters_box = QWidget()
        fl = QVBoxLayout(filters_box)
        fl.setContentsMargins(6, 0, 0, 0)
        filters_caption = QLabel("<b>First layer's filters</b>, enlarged: the small colour patterns the network "
                                 "looks for first. The same few filters slide over the whole image.")
        filters_caption.setWordWrap(True)
        fl.addWidget(filters_caption)
        fl.addWidget(self.filters)
        fl.addStretch(1)
        split.addWidget(filters_box)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        self.filters.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.filters.setWordWrap(True)
        alay.addWidget(split, 1)

    def clear(self) -> None:
        self.arch_table.setRowCount(0)
        self.filters.clear()

    def show_architecture(self, result) -> None:
        """(ArchitectureTable, the first layer's filters tiled as an image or None), as :func:`architecture_of`
        returns them."""
        table, filters = result
        fill_table(self.arch_table, [[r.name, r.type, shape_text(r.output_shape), int(r.params),
                                      "yes" if r.trainable else "no", r.note] for r in table.rows])
        self.arch_text.setText(f"{len(table.rows)} layers, {table.total:,} parameters ({table.trainable:,} "
                               f"trainable). A convolution re-uses one small kernel at every position of the "
                               f"image, which is why it needs so few parameters.")
        if filters is not None:
            self.filters.setPixmap(array_to_pixmap(filters))
        else:
            self.filters.setText("The first layer's filters cannot be drawn for this network "
                                 "(they are not 3-channel colour filters).")
