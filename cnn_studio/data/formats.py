"""Which files are images, and which library reads each.

One table maps a file suffix to a *reader* name:

========  =====================================================================
reader    used for
========  =====================================================================
pillow    JPEG, PNG, BMP, GIF (first frame), WebP, and 8-bit TIFF
tifffile  TIFFs Pillow cannot hold: 16/32-bit, float, many-sample, some multi-page
pydicom   ``.dcm``/``.dicom`` files, and files *without a suffix* whose bytes 128-131 are
          ``DICM`` (scanners often write DICOM files with no extension)
nibabel   ``.nii`` and ``.nii.gz`` volumes (the middle axial slice is used, see ``decode``)
numpy     ``.npy`` arrays, H×W or H×W×N: multi-band images read with their raw values
          (:mod:`cnn_studio.data.bands`)
========  =====================================================================

TIFF is listed as ``pillow`` here; :mod:`cnn_studio.data.decode` falls back to ``tifffile`` when
Pillow cannot open the file or would lose precision (16-bit, float), and to
:mod:`cnn_studio.data.bands` for multi-band TIFFs (more than 4 samples, or several MINISBLACK samples). Nothing here imports an image
library, so checking a suffix is free.
"""

from __future__ import annotations

import os
from pathlib import Path

PILLOW = "pillow"
PYDICOM = "pydicom"
NIBABEL = "nibabel"
NUMPY = "numpy"

READERS: dict[str, str] = {
    ".jpg": PILLOW,
    ".jpeg": PILLOW,
    ".jpe": PILLOW,
    ".jfif": PILLOW,
    ".png": PILLOW,
    ".bmp": PILLOW,
    ".gif": PILLOW,
    ".webp": PILLOW,
    ".tif": PILLOW,
    ".tiff": PILLOW,
    ".dcm": PYDICOM,
    ".dicom": PYDICOM,
    ".nii": NIBABEL,
    ".nii.gz": NIBABEL,
    ".npy": NUMPY,
}
"""Lower-case suffix (``.nii.gz`` counts as one) → reader name."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(READERS)
"""Every suffix CNN Studio treats as an image (lower case, with the dot)."""

TIFF_SUFFIXES: frozenset[str] = frozenset({".tif", ".tiff"})

_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"


def image_suffix(path: str | os.PathLike[str]) -> str:
    """The lower-case suffix of ``path`` as the reader table knows it (``.nii.gz`` is one suffix).

    Examples
    --------
    >>> image_suffix("scan/Brain.NII.GZ")
    '.nii.gz'
    >>> image_suffix("a/b.JPG")
    '.jpg'
    """
    name = os.fspath(path).lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return os.path.splitext(name)[1]


def is_image_suffix(path: str | os.PathLike[str]) -> bool:
    """True when the suffix of ``path`` is one CNN Studio reads (no file access).

    Examples
    --------
    >>> is_image_suffix("x/photo.JPEG"), is_image_suffix("notes.txt")
    (True, False)
    """
    return image_suffix(path) in IMAGE_SUFFIXES


def has_dicom_magic(path: str | os.PathLike[str]) -> bool:
    """True when bytes 128-131 of the file are ``DICM`` (reads 132 bytes; False if unreadable)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_DICOM_MAGIC_OFFSET + 4)
    except OSError:
        return False
    return head[_DICOM_MAGIC_OFFSET:] == _DICOM_MAGIC


def reader_for(path: str | os.PathLike[str]) -> str | None:
    """The reader for ``path``, or ``None`` when it is not an image CNN Studio reads.

    Known suffixes decide without touching the file. A file with no suffix (or a purely numeric
    one such as ``IM0001.1``, common for DICOM series) is sniffed for the ``DICM`` magic.

    Parameters
    ----------
    path
        A file path.

    Returns
    -------
    str or None
        ``"pillow"``, ``"pydicom"``, ``"nibabel"``, ``"numpy"`` or ``None``.
    """
    suffix = image_suffix(path)
    if suffix in READERS:
        return READERS[suffix]
    if (suffix == "" or suffix[1:].isdigit()) and has_dicom_magic(path):
        return PYDICOM
    return None


def describe_formats() -> str:
    """A one-line, human-readable list of supported suffixes (for hints and help texts)."""
    return ", ".join(sorted(IMAGE_SUFFIXES)) + ", and DICOM files without a suffix"


def is_tiff(path: str | os.PathLike[str]) -> bool:
    """True for ``.tif``/``.tiff`` suffixes."""
    return Path(path).suffix.lower() in TIFF_SUFFIXES
