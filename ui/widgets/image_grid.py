"""ImageGrid: a wrapping gallery of thumbnails with captions (Qt's list view in icon mode).

Thumbnails are read with ``QImageReader`` at thumbnail size (fast for JPEG/PNG); what Qt cannot
read (DICOM, 16-bit TIFF, slices of NIfTI volumes, multi-band tiles) goes through the engine's
decoder (:mod:`cnn_studio.ui.thumbnails`); an unreadable file gets a neutral placeholder and its
name. Arrays (Grad-CAM overlays) are shown through :func:`array_to_pixmap`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cnn_studio.ui.thumbnails import read_thumbnail
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QIcon, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from cnn_studio.data.bands import is_multiband_key
from cnn_studio.data.records import parse_key

PATH_ROLE = Qt.ItemDataRole.UserRole


def array_to_pixmap(arr: np.ndarray) -> QPixmap:
    """uint8 (H, W, 3) RGB array → QPixmap (copied, so the array may be freed)."""
    arr = np.ascontiguousarray(arr.astype(np.uint8))
    h, w = arr.shape[:2]
    img = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(img.copy())


def fit(pix: QPixmap, size: int) -> QPixmap:
    """``pix`` scaled to fit ``size`` × ``size``; small pictures are enlarged with whole pixels.

    A 28 px digit or a 64 px tile shown at its own size is a speck in a 128 px cell; enlarging
    it by nearest neighbour keeps its pixels honest (no invented smoothness).
    """
    if pix.isNull() or pix.width() <= 0 or pix.height() <= 0:
        return pix
    longest = max(pix.width(), pix.height())
    if longest > size:
        return pix.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    factor = size // longest
    if factor < 2:
        if longest >= 0.75 * size:
            return pix
        return pix.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return pix.scaled(pix.width() * factor, pix.height() * factor, Qt.AspectRatioMode.KeepAspectRatio,
                      Qt.TransformationMode.FastTransformation)


def thumbnail(path: str | Path, size: int, rgb: tuple[int, int, int] | None = None) -> QPixmap:
    """A thumbnail of ``path`` fitting ``size`` (see :func:`fit`), or a grey placeholder if it cannot be read.

    ``path`` may be a record key: what Qt cannot read — a slice of a volume (``path#slice=AXIS:INDEX``),
    a multi-band tile, DICOM — is drawn by the engine's decoder (:func:`cnn_studio.ui.thumbnails.read_thumbnail`);
    ``rgb``: a multi-band tile's bands (1-based) shown as red, green, blue (default: from the band names).
    """
    key = str(path)
    img = QImage()
    if parse_key(key)[2] is None and not is_multiband_key(key):
        reader = QImageReader(key)
        reader.setAutoTransform(True)  # EXIF orientation
        original = reader.size()
        if original.isValid() and original.width() > size:
            reader.setScaledSize(original.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
        img = reader.read()
    if img.isNull():
        img = read_thumbnail(key, size, rgb)
    if img.isNull():
        pix = QPixmap(size, size)
        pix.fill(QColor("#d0d4da"))
        return pix
    return fit(QPixmap.fromImage(img), size)


class ImageGrid(QListWidget):
    """Thumbnails in a wrapping grid; ``image_activated(path)`` on click."""

    image_activated = Signal(str)

    def __init__(self, thumb_size: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size
        self.rgb: tuple[int, int, int] | None = None  # multi-band tiles: the bands shown as R, G, B
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWrapping(True)
        self.setWordWrap(True)
        self.setSpacing(6)
        self.setIconSize(QSize(thumb_size, thumb_size))
        self.setGridSize(QSize(thumb_size + 48, thumb_size + 52))
        self.setUniformItemSizes(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.itemClicked.connect(self._on_item_clicked)

    def add_image(self, path: str | Path, caption: str, tooltip: str = "",
                  pixmap: QPixmap | None = None) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(self._sharp(pixmap) if pixmap else self._sharp(path)),
                               caption)
        item.setData(PATH_ROLE, str(path))
        item.setToolTip(tooltip or str(path))
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.addItem(item)
        self.fit_caption(caption)
        return item

    def caption_height(self, caption: str) -> int:
        """Pixels ``caption`` needs under a thumbnail (wrapped to the cell's width)."""
        width = self.gridSize().width() - 8
        flags = int(Qt.AlignmentFlag.AlignHCenter) | int(Qt.TextFlag.TextWordWrap) | int(Qt.TextFlag.TextWrapAnywhere)
        return QFontMetrics(self.font()).boundingRect(QRect(0, 0, width, 10_000), flags, caption).height()

    def fit_caption(self, caption: str) -> None:
        """Grow the cells so no caption is clipped (every line shows; a long name wraps)."""
        need = self.thumb_size + self.caption_height(caption) + 16
        if need > self.gridSize().height():
            self.setGridSize(QSize(self.gridSize().width(), need))

    def set_pixmap(self, path: str, pixmap: QPixmap) -> None:
        """Replace the picture of the item showing ``path`` (e.g. with a Grad-CAM overlay)."""
        for item in self.items_for(path):
            item.setIcon(QIcon(self._sharp(pixmap)))

    def _sharp(self, source: QPixmap | str | Path) -> QPixmap:
        """A thumbnail made at the screen's physical pixel size, so it stays sharp on HiDPI screens."""
        ratio = max(1.0, float(self.devicePixelRatioF()))
        side = round(self.thumb_size * ratio)
        pix = fit(source, side) if isinstance(source, QPixmap) else thumbnail(source, side, self.rgb)
        pix.setDevicePixelRatio(ratio)
        return pix

    def items_for(self, path: str) -> list[QListWidgetItem]:
        return [self.item(i) for i in range(self.count()) if self.item(i).data(PATH_ROLE) == str(path)]

    def paths(self) -> list[str]:
        return [self.item(i).data(PATH_ROLE) for i in range(self.count())]

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        self.image_activated.emit(item.data(PATH_ROLE))
