"""HeatmapView: a picture with a Grad-CAM heat map blended on top, re-blended instantly.

It keeps a (downscaled) uint8 original and a [0, 1] heat map; the opacity slider only
re-blends them on the GUI thread (cheap), while the heat map itself comes from an engine task.
A small colour legend explains the colours in plain words.
"""

from __future__ import annotations

import numpy as np
from cnn_studio.ui.widgets.image_grid import array_to_pixmap
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from cnn_studio.explain.gradcam import overlay

LEGEND = "blue = no evidence · green/yellow = some · red = strongest evidence for the class"


def blend(original: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """``original`` (H, W, 3) uint8 with ``heat`` (H, W) in [0, 1] coloured (jet) on top at ``alpha``."""

    return overlay(original, heat, alpha=alpha)


def legend_strip(width: int = 256, height: int = 12) -> np.ndarray:
    """The colour scale used for heat maps, left (0) to right (1), as a uint8 image."""
    ramp = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
    return blend(np.zeros((height, width, 3), np.uint8), ramp, 1.0)


class HeatmapView(QWidget):
    """Original + heat map with an opacity slider (0 = only the picture, 100 = only the heat map)."""

    def __init__(self, side: int = 384, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self._original: np.ndarray | None = None
        self._heat: np.ndarray | None = None
        self.picture = QLabel("No image yet.")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(220, 200)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setToolTip("How strongly the heat map covers the picture (0 = only your image).")
        self.opacity.valueChanged.connect(self.redraw)
        legend = QLabel()
        legend.setPixmap(array_to_pixmap(legend_strip()))
        legend.setToolTip(LEGEND)
        legend_text = QLabel(LEGEND)
        legend_text.setWordWrap(True)
        legend_text.setObjectName("hint")
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.picture, 1)
        lay.addLayout(row)
        lay.addWidget(legend)
        lay.addWidget(legend_text)

    def set_images(self, original: np.ndarray, heat: np.ndarray | None) -> None:
        """Show ``original`` (uint8 RGB) with ``heat`` ([0, 1], same height/width) or without."""
        if heat is not None and heat.shape[:2] != original.shape[:2]:
            raise ValueError(f"heat map {heat.shape[:2]} does not match the image {original.shape[:2]}")
        self._original, self._heat = original, heat
        self.redraw()

    def clear(self) -> None:
        self._original = self._heat = None
        self.picture.clear()
        self.picture.setText("No image yet.")

    def blended(self) -> np.ndarray | None:
        """The picture as currently shown (None before any image)."""
        if self._original is None:
            return None
        if self._heat is None:
            return self._original
        return blend(self._original, self._heat, self.opacity.value() / 100)

    def pixmap(self) -> QPixmap:
        return self.picture.pixmap()

    def redraw(self) -> None:
        img = self.blended()
        if img is None:
            return
        self.picture.setPixmap(array_to_pixmap(img).scaled(
            self.side, self.side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
