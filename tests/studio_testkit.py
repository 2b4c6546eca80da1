"""Helpers shared by tests (importable by name; never import ``conftest`` — two conftests share that name)."""

from __future__ import annotations

import numpy as np


def make_class_image(label: int, size: int = 32, seed: int = 0, mode: str = "RGB"):
    """An easy-to-learn image: class 0 has a bright square top-left, class 1 bottom-right, etc.

    Background noise differs per ``seed`` so no two images are byte-identical.
    """
    from PIL import Image

    rng = np.random.default_rng(seed * 1009 + label)
    arr = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
    q = size // 2
    corners = [(0, 0), (q, q), (0, q), (q, 0)]
    y, x = corners[label % 4]
    arr[y : y + q, x : x + q] = 230
    img = Image.fromarray(arr, "RGB")
    return img.convert(mode) if mode != "RGB" else img


def drop_files(widget, paths):
    """Deliver a real drop event carrying ``paths`` as file URLs to ``widget``; returns the event."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)
    return event
