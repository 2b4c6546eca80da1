"""The :class:`~cnn_studio.core.errors.ImageReadError` of one file: a reason code, what happened, what to do.

Every reader (:mod:`cnn_studio.data.decode`, :mod:`cnn_studio.data.medical`) raises through
:func:`read_error`, so the scan report and the pipeline can group skipped files by ``reason``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnn_studio.core.errors import ImageReadError

REASONS = ("empty", "not_an_image", "unreadable", "truncated", "too_large", "unsupported")
"""The reason codes, in the order the report lists them."""

_REASON_TEXT = {
    "empty": ("is an empty file (0 bytes)", "Copy the file again from its source, or remove it."),
    "not_an_image": ("is not an image CNN Studio can read (its content does not match its name)",
                     "Check the file: it may be a document renamed to an image suffix. Remove it or re-export it."),
    "unreadable": ("could not be read", "Check that the file exists and that you have permission to read it."),
    "truncated": ("is truncated (the file ends early)", "The copy or download was probably interrupted: "
                  "copy the file again from its source, or remove it."),
    "too_large": ("is too large to decode safely", "Downscale the image, or raise the pixel limit if you trust "
                  "the file."),
    "unsupported": ("uses a variant CNN Studio cannot decode", "Convert the file to PNG (or uncompressed DICOM) "
                    "and try again."),
}


def read_error(path: str | os.PathLike[str], reason: str, detail: str = "") -> ImageReadError:
    """Build the :class:`ImageReadError` for ``path`` with a ``reason`` code from :data:`REASONS`."""
    what, hint = _REASON_TEXT[reason]
    name = os.fspath(path)
    err = ImageReadError(f"{name} {what}" + (f": {detail}" if detail else "."), hint)
    err.reason = reason  # type: ignore[attr-defined]
    err.path = name  # type: ignore[attr-defined]
    err.detail = detail  # type: ignore[attr-defined]
    return err


def check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise read_error(path, "too_large", f"{width}x{height} pixels is more than the limit of {max_pixels:,}")


def check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise read_error(path, "unreadable", exc.strerror or str(exc)) from exc
    if size == 0:
        raise read_error(path, "empty")
