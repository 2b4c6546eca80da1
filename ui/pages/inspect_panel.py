"""InspectPanel: one image up close — where the network looked (Grad-CAM) and what its layers see.

Model work runs in engine tasks (:func:`explain_image`, :func:`layer_maps`); the panel keeps a
downscaled original and heat map so the opacity slider re-blends instantly on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cnn_studio.ui.messages import show_error
from cnn_studio.ui.widgets.image_grid import array_to_pixmap
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QScrollArea, QSlider, QVBoxLayout, QWidget

PREVIEW = 384


def _shrink(arr: np.ndarray, side: int = PREVIEW) -> np.ndarray:
    from PIL import Image

    h, w = arr.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if arr.ndim == 2:
        return np.asarray(Image.fromarray((arr * 255).astype(np.uint8)).resize(size, Image.BILINEAR)) / 255.0
    return np.asarray(Image.fromarray(arr).resize(size, Image.BILINEAR))


def explain_image(classifier, path: str, class_index: int | None = None, *, sink, cancel) -> dict:
    """Grad-CAM of ``path`` for the predicted (or chosen) class, plus the model's feature layers."""
    from cnn_studio.data.decode import decode_file
    from cnn_studio.data.pipeline import resize_image
    from cnn_studio.explain.feature_maps import list_feature_layers
    from cnn_studio.explain.gradcam import gradcam as run_gradcam
    from cnn_studio.explain.gradcam import heatmap_on_original

    original = decode_file(path)
    model_input = np.round(np.clip(np.asarray(resize_image(original, classifier.image_size, classifier.resize)),
                                   0, 255)).astype(np.float32)
    cam = run_gradcam(classifier.model, model_input, class_index=class_index)
    heat = heatmap_on_original(cam.heatmap, original.shape[:2], classifier.image_size, classifier.resize)
    layers = [(info.name, f"{info.name}  {tuple(info.output_shape)}  {info.kind}") for info in
              list_feature_layers(classifier.model)]
    return {"path": path, "original": _shrink(original), "heat": _shrink(heat), "class_index": cam.class_index,
            "class_prob": cam.class_prob, "layer": cam.layer_name, "layers": layers, "input": model_input}


def layer_maps(classifier, model_input: np.ndarray, layer: str, *, sink, cancel) -> tuple[np.ndarray, str]:
    """The first 16 feature maps of ``layer`` tiled into one picture, and a caption."""
    from cnn_studio.explain.feature_maps import feature_maps, grid

    fm = feature_maps(classifier.model, model_input, layer, max_channels=16)
    h, w = fm.maps.shape[1:]
    return grid(fm.maps, cols=4, cell=96), (f"{layer}: showing {len(fm.channels)} of {fm.total_channels} "
                                             f"feature maps, each {h}x{w}. Bright = strong response.")


class InspectPanel(QWidget):
    """Large Grad-CAM overlay with an opacity slider, and feature maps of a chosen layer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classifier = None
        self.result: dict | None = None
        self._task = None
        self.title = QLabel("Select an image to look inside the network.")
        self.title.setWordWrap(True)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(260, 220)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setToolTip("How strongly the heat map covers the picture (0 = only your image).")
        self.opacity.valueChanged.connect(self._redraw)
        self.class_box = QComboBox()
        self.class_box.setToolTip("Show where the network found evidence for this class.")
        self.class_box.activated.connect(self._on_class_box_activated)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("Pick a layer to see its feature maps: early layers respond to edges and "
                                  "colours, later ones to larger parts. Stride and pooling make maps smaller.")
        self.layer_box.activated.connect(self._on_layer_box_activated)
        self.maps = QLabel()
        self.maps.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.maps_caption = QLabel("")
        self.maps_caption.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Heat map opacity", self.opacity)
        form.addRow("Explain class", self.class_box)
        form.addRow("Feature maps of", self.layer_box)
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.addWidget(self.title)
        lay.addWidget(self.picture)
        lay.addLayout(form)
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
        return self._task is not None and not self._task.is_done

    def inspect(self, classifier, path: str, class_index: int | None = None):
        """Explain ``path`` with ``classifier`` (a :class:`cnn_studio.predict.Classifier`)."""
        if self.busy():
            self._task.cancel()
        self.classifier = classifier
        self.title.setText(f"Looking at {Path(path).name}…")
        if self.class_box.count() != len(classifier.class_names):
            self.class_box.clear()
            self.class_box.addItems(list(classifier.class_names))
        self._task = start_task(explain_image, classifier, path, class_index, on_returned=self._on_explained,
                                on_errored=self._on_errored)
        return self._task

    def _on_explained(self, result: dict) -> None:
        self.result = result
        names = self.classifier.class_names
        name = names[result["class_index"]]
        self.title.setText(f"<b>{Path(result['path']).name}</b>: red/yellow areas are where the network found "
                           f"the most evidence for <b>{name}</b> ({result['class_prob']:.0%}); "
                           f"layer {result['layer']}.")
        self.class_box.setCurrentIndex(result["class_index"])
        current = self.layer_box.currentData()
        self.layer_box.clear()
        for key, label in result["layers"]:
            self.layer_box.addItem(label, key)
        if current:
            i = self.layer_box.findData(current)
            if i >= 0:
                self.layer_box.setCurrentIndex(i)
        self._redraw()

    def _redraw(self) -> None:
        if self.result is None:
            return
        from cnn_studio.explain.gradcam import overlay

        img = overlay(self.result["original"], self.result["heat"], alpha=self.opacity.value() / 100)
        pix = array_to_pixmap(img)
        self.picture.setPixmap(pix.scaled(PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))

    def _on_class_box_activated(self, index: int) -> None:
        if self.result is not None and self.classifier is not None:
            self.inspect(self.classifier, self.result["path"], index)

    def _on_layer_box_activated(self, index: int) -> None:
        if self.result is None or self.classifier is None or self.busy():
            return
        self._task = start_task(layer_maps, self.classifier, self.result["input"], self.layer_box.itemData(index),
                                on_returned=self._on_maps_returned, on_errored=self._on_errored)

    def _on_maps_returned(self, result) -> None:
        image, caption = result
        self.maps.setPixmap(array_to_pixmap(image))
        self.maps_caption.setText(caption)

    def _on_errored(self, exc: BaseException) -> None:
        self.title.setText("This image could not be explained.")
        show_error(self, exc)
