"""InspectPanel: one image up close — where the network looked (Grad-CAM) and what its layers see.

Model work runs in engine tasks (:func:`explain_image`, :func:`layer_maps`); the panel keeps a
downscaled original and heat map so the opacity slider re-blends instantly on the GUI thread.
"""

from __future__ import annotations

import numpy as np
from cnn_studio.ui.messages import show_error
from cnn_studio.ui.widgets.heatmap_view import HeatmapView
from cnn_studio.ui.widgets.image_grid import array_to_pixmap
from cnn_studio.ui.widgets.probability_bars import ProbabilityBars
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.data.records import display_name
from cnn_studio.explain.architecture import shape_text
from cnn_studio.explain.views import EXPLAIN, LAYER_MAPS, PREVIEW  # PREVIEW: the size explain_image delivers


def explain_image(model, path: str, class_index: int | None = None, *, sink, cancel) -> dict:
    """Grad-CAM of ``path`` and the model's layers (:func:`cnn_studio.explain.views.explain_image`)."""
    return model.call(EXPLAIN, str(path), class_index, sink=sink, cancel=cancel)


KIND_WORDS = {
    "resize": "The picture, resized to the size the network expects.",
    "preprocess": "The picture with its pixel values rescaled the way the network was trained.",
    "activation": "The layer before, with weak (negative) responses switched off.",
    "normalization": "The layer before, rescaled to a steady range so learning is stable.",
    "dropout": "Randomly hides some responses while training (a guard against memorising).",
}


def describe_layer(info) -> str:
    """One layer of :func:`cnn_studio.explain.feature_maps.list_feature_layers` in plain words."""
    shape = tuple(info.output_shape)
    h, w, c = shape[1], shape[2], shape[3]
    kind = str(info.kind).lower()
    text = [f"{info.name} ({info.kind}) gives {c} feature maps of {h}×{w} positions."]
    if kind in KIND_WORDS:
        text.append(KIND_WORDS[kind])
    if info.kernel_size:
        k = "×".join(str(v) for v in info.kernel_size)
        if "pool" in kind:
            text.append(f"Each position sums up (pools) a {k} patch of the layer before, keeping the strongest "
                        "or average response.")
        else:
            text.append(f"Each position looks at a {k} patch of the layer before with learned weights.")
    if info.strides and max(info.strides) > 1:
        s = info.strides[0]
        text.append(f"Stride {s}: it moves {s} pixels at a time, so its maps are {s}× smaller.")
    elif info.strides:
        text.append("Stride 1: it moves one pixel at a time, keeping the size.")
    if info.padding == "same":
        text.append("Padding 'same': zeros are added around the border so edges are looked at too.")
    elif info.padding == "valid":
        text.append("Padding 'valid': no border is added, so the map shrinks a little at the edges.")
    return " ".join(text)


def layer_maps(model, model_input: np.ndarray, layer: str, *, sink, cancel) -> tuple[np.ndarray, str]:
    """The first 16 feature maps of ``layer`` tiled into one picture, and a caption."""
    return model.call(LAYER_MAPS, model_input, layer, sink=sink, cancel=cancel)


class InspectPanel(QWidget):
    """One image: its top labels, a large Grad-CAM overlay, its layers and their feature maps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classifier = None
        self.result: dict | None = None
        self._task = None
        self.title = QLabel("Select an image to look inside the network.")
        self.title.setWordWrap(True)
        self.bars = ProbabilityBars()
        self.heatmap = HeatmapView(PREVIEW)
        self.class_box = QComboBox()
        self.class_box.setToolTip("Show where the network found evidence for this class.")
        self.class_box.activated.connect(self._on_class_box_activated)
        self.layer_table = QTableWidget(0, 5)
        self.layer_table.setHorizontalHeaderLabels(["Layer", "Kind", "Output (h × w × maps)", "Stride", "Padding"])
        self.layer_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.layer_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.layer_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.layer_table.verticalHeader().setVisible(False)
        self.layer_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.layer_table.setMinimumHeight(160)
        self.layer_table.setToolTip("Pick a layer to see its feature maps: early layers respond to edges and "
                                    "colours, later ones to larger parts. Stride and pooling make maps smaller.")
        self.layer_table.currentCellChanged.connect(self._on_layer_row_changed)
        self.layer_text = QLabel("")
        self.layer_text.setWordWrap(True)
        self.maps = QLabel()
        self.maps.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.maps_caption = QLabel("")
        self.maps_caption.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Explain class", self.class_box)
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.addWidget(self.title)
        lay.addWidget(self.bars)
        lay.addWidget(self.heatmap)
        lay.addLayout(form)
        lay.addWidget(QLabel("<b>Layers</b> (click one to see what it responds to)"))
        lay.addWidget(self.layer_table)
        lay.addWidget(self.layer_text)
        lay.addWidget(self.maps_caption)
        lay.addWidget(self.maps)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def busy(self) -> bool:
        return self._task is not None and self._task.is_live

    def inspect(self, classifier, path: str, class_index: int | None = None, prediction=None):
        """Explain ``path`` with ``classifier`` (a model held by :func:`cnn_studio.explain.views.open_model`).

        ``prediction`` (a :class:`cnn_studio.predict.predictor.Prediction`) fills the probability bars.
        """
        if self.busy():
            self._task.cancel()
        self.classifier = classifier
        self.title.setText(f"Looking at {display_name(path)}…")
        if prediction is not None:
            self.bars.set_probabilities(prediction.top)
        if self.class_box.count() != len(classifier.info.class_names):
            self.class_box.clear()
            self.class_box.addItems(list(classifier.info.class_names))
        self._task = start_task(explain_image, classifier, path, class_index, on_returned=self._on_explained,
                                on_errored=self._on_errored)
        return self._task

    def show_problem(self, path: str, error: str) -> None:
        """A card for a file that could not be classified: what happened and what to do."""
        self.title.setText(f"<b>{display_name(path)}</b> could not be read, so it was not classified.")
        self.bars.set_message(f"{error}\nCheck that the file opens in an image viewer; if it does, save it "
                              "again as PNG or JPEG and drop it here once more.")
        self.heatmap.clear()

    def show_layer(self, row: int):
        """Compute the feature maps of layer ``row`` of the layer table (in a task)."""
        if self.result is None or self.classifier is None or not 0 <= row < len(self.result["layers"]):
            return None
        if self.busy():
            self._task.cancel()
        info = self.result["layers"][row]
        self.layer_text.setText(describe_layer(info))
        self._task = start_task(layer_maps, self.classifier, self.result["input"], info.name,
                                on_returned=self._on_maps_returned, on_errored=self._on_errored)
        return self._task

    def _on_explained(self, result: dict) -> None:
        self.result = result
        names = self.classifier.info.class_names
        name = names[result["class_index"]]
        self.title.setText(f"<b>{display_name(result['path'])}</b>: red/yellow areas are where the network found "
                           f"the most evidence for <b>{name}</b> ({result['class_prob']:.0%}); "
                           f"layer {result['layer']}.")
        self.class_box.setCurrentIndex(result["class_index"])
        self.heatmap.set_images(result["original"], result["heat"])
        current = self.layer_table.currentRow()
        self.layer_table.blockSignals(True)
        self.layer_table.setRowCount(len(result["layers"]))
        for r, info in enumerate(result["layers"]):
            shape = tuple(info.output_shape)
            cells = [info.name, info.kind, shape_text(shape, " × "),
                     "" if not info.strides else str(info.strides[0]), info.padding or ""]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(describe_layer(info))
                self.layer_table.setItem(r, c, item)
        self.layer_table.blockSignals(False)
        if 0 <= current < len(result["layers"]):
            self.layer_table.selectRow(current)

    def _on_class_box_activated(self, index: int) -> None:
        if self.result is not None and self.classifier is not None:
            self.inspect(self.classifier, self.result["path"], index)

    def _on_layer_row_changed(self, row: int, *_ignored) -> None:
        self.show_layer(row)

    def _on_maps_returned(self, result) -> None:
        image, caption = result
        self.maps.setPixmap(array_to_pixmap(image))
        self.maps_caption.setText(caption)

    def _on_errored(self, exc: BaseException) -> None:
        self.title.setText("This image could not be explained.")
        show_error(self, exc)
