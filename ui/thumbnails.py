"""Thumbnails of dataset pictures for the Data step and the label review (any format the engine reads)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QImageReader

from cnn_studio.data.decode import decode_file


def read_thumbnail(path: str, size: int) -> QImage:
    """A picture scaled to fit ``size`` px: Qt's reader where it can (EXIF turned), else the engine's decoder."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    if reader.canRead():
        s = reader.size()
        if s.isValid() and s.width() > 0 and s.height() > 0:
            reader.setScaledSize(s.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
        img = reader.read()
        if not img.isNull():
            return img
    try:  # DICOM, NIfTI, 16-bit TIFF ...: the engine's decoder
        arr = decode_file(path)
        h, w = arr.shape[:2]
        arr = arr[..., :3].copy() if arr.ndim == 3 else arr
        fmt = QImage.Format.Format_RGB888 if arr.ndim == 3 else QImage.Format.Format_Grayscale8
        img = QImage(arr.data, w, h, arr.strides[0], fmt).copy()
        return img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    except Exception:  # noqa: BLE001 - a thumbnail that cannot be made is just left blank
        return QImage()
