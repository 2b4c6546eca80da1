"""Thumbnails of dataset pictures for the Data step and the label review (any format the engine reads)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QImageReader

from cnn_studio.data.bands import is_multiband_key, read_composite
from cnn_studio.data.decode import decode_key
from cnn_studio.data.records import parse_key


def read_thumbnail(key: str, size: int, rgb: Sequence[int] | None = None) -> QImage:
    """A picture scaled to fit ``size`` px: Qt's reader where it can (EXIF turned), else the engine's decoder.

    ``key`` is a file or a record key (``path#slice=AXIS:INDEX`` for a slice of a volume). ``rgb``: for a
    multi-band file, the three bands (1-based) shown as red, green and blue (default: the bands named red,
    green and blue, else 1, 2, 3).
    """
    if rgb or is_multiband_key(key):  # Qt would show a multi-band TIFF's first bands as a dark picture
        try:
            return array_image(read_composite(key, rgb or None), size)
        except Exception:  # noqa: BLE001 - as below
            return QImage()
    if parse_key(key)[2] is None:
        reader = QImageReader(key)
        reader.setAutoTransform(True)
        if reader.canRead():
            s = reader.size()
            if s.isValid() and s.width() > 0 and s.height() > 0:
                reader.setScaledSize(s.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
            img = reader.read()
            if not img.isNull():
                return img
    try:  # DICOM, NIfTI slices, 16-bit TIFF, multi-band arrays ...: the engine's decoder
        return array_image(decode_key(key), size)
    except Exception:  # noqa: BLE001 - a thumbnail that cannot be made is just left blank
        return QImage()


def array_image(arr: np.ndarray, size: int) -> QImage:
    """A ``uint8`` RGB (or grey) array as a QImage scaled to fit ``size`` px."""
    arr = np.ascontiguousarray(arr[..., :3] if arr.ndim == 3 else arr)
    h, w = arr.shape[:2]
    fmt = QImage.Format.Format_RGB888 if arr.ndim == 3 else QImage.Format.Format_Grayscale8
    img = QImage(arr.data, w, h, arr.strides[0], fmt).copy()
    return img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
