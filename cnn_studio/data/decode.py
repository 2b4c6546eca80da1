"""One image file → its header facts (:func:`probe`) or its pixels as uint8 RGB (:func:`decode_file`).

:func:`probe` reads headers only (Pillow's lazy open, pydicom's ``stop_before_pixels``, tifffile's
page shape, nibabel's header), so scanning thousands of files never holds pixels in memory.
:func:`decode_file` returns a ``numpy.uint8`` array of shape ``(H, W, 3)``. How non-8-bit data
becomes 8-bit is a *policy* the user should know about; :data:`SCALING_POLICY` states each one in
words and the dataset report shows them.

Every failure is an :class:`~cnn_studio.core.errors.ImageReadError` whose ``reason`` is one of
:data:`REASONS` and whose ``path`` names the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from cnn_studio.core.errors import ImageReadError
from cnn_studio.data import bands, formats
from cnn_studio.data.pixels import array_to_rgb, grey_to_rgb, percentile_window
from cnn_studio.data.read_errors import REASONS, check_file, check_size, read_error
from cnn_studio.data.records import ProbeResult, parse_key

__all__ = ["DEFAULT_MAX_PIXELS", "REASONS", "SCALING_POLICY", "ProbeResult", "array_to_rgb", "decode_file",
           "decode_key", "decode_notes", "grey_to_rgb", "percentile_window", "probe", "read_error"]

DEFAULT_MAX_PIXELS = 100_000_000
"""Decompression-bomb guard: images with more pixels than this are refused (reason "too_large")."""


SCALING_POLICY: dict[str, str] = {
    "orientation": "JPEG/TIFF EXIF orientation is applied, so images appear the way a photo viewer shows them.",
    "alpha": "Transparent pixels (RGBA, LA, palette transparency) are composited onto a WHITE background.",
    "grey": "Greyscale images are repeated into 3 identical channels (RGB).",
    "high_bit_depth": "16-bit, 32-bit and floating-point images are mapped to 0-255 by a percentile "
    "window: the 0.5th percentile becomes black and the 99.5th white (never truncated to the low 8 bits).",
    "dicom": "DICOM: rescale slope/intercept (modality LUT) is applied, then the file's own VOI window or "
    "VOI LUT; without one, the percentile window. MONOCHROME1 images are inverted so that bone is bright. "
    "Multi-frame files use their middle frame.",
    "nifti": "NIfTI volumes (.nii, .nii.gz) are cut into 2-D slices across the chosen axis (the third by "
    "default), each rotated 90 degrees for display and windowed over the WHOLE volume (its 0.5th percentile "
    "black, its 99.5th white), so the slices of a study are comparable; a single volume shown as one picture "
    "uses its middle slice.",
    "multi_band": "Multi-band images (TIFFs with more than 4 bands or several grey bands, .npy arrays) keep their "
    "raw values for the model, which normalises each band with the training set's statistics; they are SHOWN "
    "as an RGB composite of three bands (B04, B03, B02 when the file names its bands, else bands 1, 2, 3), "
    "each band windowed by its 0.5th-99.5th percentiles.",
    "multi_page": "GIF animations and multi-page TIFFs use their first frame/page.",
    "cmyk": "CMYK images are converted to RGB without a colour profile (colours may shift slightly).",
}
"""How each kind of input becomes 8-bit RGB, in words a user can read (shown in the dataset report)."""


def _trailer_missing(path: Path, fmt: str) -> bool:
    """Cheap truncation hint without decoding: a JPEG should end with EOI, a PNG with IEND."""
    marker = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}.get(fmt)
    if marker is None:
        return False
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 1024))
        return marker not in f.read()


# ---------------------------------------------------------------- probe


def probe(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ProbeResult:
    """Read the header of one image file (never its pixels).

    Parameters
    ----------
    path
        The file.
    max_pixels
        Files whose header announces more pixels are refused with reason ``"too_large"``.

    Returns
    -------
    ProbeResult
        For a multi-band file (``.npy``, a TIFF of more than 4 or several grey bands) ``bands``,
        ``dtype`` and ``band_names`` are set (:func:`cnn_studio.data.bands.probe_bands`).

    Raises
    ------
    ImageReadError
        With ``.reason`` in :data:`REASONS`. ``"truncated"`` is detected here for JPEG/PNG files
        whose end marker is missing and whose data indeed ends early (only such suspicious files
        are decoded once); other truncations show up in :func:`decode_file`.

    Examples
    --------
    >>> probe("scan/cat/001.png")  # doctest: +SKIP
    ProbeResult(width=32, height=32, mode='RGB', fmt='PNG', frames=1, group=None)
    """
    path = Path(path)
    check_file(path)
    reader = formats.reader_for(path)
    if reader is None:
        raise read_error(path, "not_an_image", f"suffix {formats.image_suffix(path) or '(none)'} is not an "
                         f"image type ({formats.describe_formats()})")
    try:
        if reader == formats.PYDICOM:
            from cnn_studio.data.medical import probe_dicom

            return probe_dicom(path, max_pixels)
        if reader == formats.NIBABEL:
            from cnn_studio.data.medical import probe_nifti

            return probe_nifti(path, max_pixels)
        if reader == formats.NUMPY or (formats.is_tiff(path) and bands.is_multiband(path)):
            return bands.probe_bands(path, max_pixels=max_pixels)
        return _probe_pillow(path, max_pixels)
    except ImageReadError:
        raise
    except OSError as exc:
        raise read_error(path, _os_error_reason(exc), str(exc)) from exc


def _open_pillow(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise read_error(path, "too_large", str(exc)) from exc
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc


def _probe_pillow(path: Path, max_pixels: int) -> ProbeResult:
    try:
        img = _open_pillow(path)
    except ImageReadError:
        if formats.is_tiff(path):  # e.g. 16-bit RGB or float TIFFs Pillow cannot open
            return _probe_tiff(path, max_pixels)
        raise
    with img:
        if _needs_tifffile(img):
            return _probe_tiff(path, max_pixels)
        width, height = img.size
        check_size(path, width, height, max_pixels)
        fmt = img.format or ""
        frames = int(getattr(img, "n_frames", 1)) if fmt == "TIFF" else 1
        mode = img.mode
        # Rare files without an end marker near the end are decoded once to tell a cut-off file
        # from one with data appended after the image (e.g. phone "motion photos").
        if _trailer_missing(path, fmt) and not _decodes(img):
            raise read_error(path, "truncated", f"the {fmt} data ends early")
    return ProbeResult(width, height, mode, fmt, frames)


def _decodes(img: Any) -> bool:
    try:
        img.load()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


def _needs_tifffile(img: Any) -> bool:
    """True for TIFFs Pillow would open but reduce: more than 8 bits per sample in colour, or
    a mode Pillow does not fully support (Pillow reads 16-bit RGB TIFF as 8-bit RGB)."""
    if img.format != "TIFF":
        return False
    bits = img.tag_v2.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    if max(bits) > 8 and img.mode not in _HIGH_BIT_MODES:
        return True
    return img.mode not in _HIGH_BIT_MODES | _ALPHA_MODES | {"1", "L", "P", "RGB", "CMYK"}


def _probe_tiff(path: Path, max_pixels: int) -> ProbeResult:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            height, width = int(page.imagelength), int(page.imagewidth)
            mode = f"{page.dtype}x{page.samplesperpixel}" if page.samplesperpixel > 1 else str(page.dtype)
            frames = len(tif.pages)
    except (tifffile.TiffFileError, ValueError, IndexError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    check_size(path, width, height, max_pixels)
    return ProbeResult(width, height, mode, "TIFF", frames)


# ---------------------------------------------------------------- decode


def reduction_factor(width: int, height: int, reduce_to: int | None) -> int:
    """The integer factor a ``width`` × ``height`` picture may shrink by while being read, for a
    model input of ``reduce_to`` pixels: both sides stay at least twice ``reduce_to`` (1: no reduction)."""
    if not reduce_to or reduce_to <= 0:
        return 1
    return max(1, min(width, height) // (2 * int(reduce_to)))


def decode_file(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS,
                reduce_to: int | None = None) -> np.ndarray:
    """Decode one image file to ``uint8`` RGB, ``(H, W, 3)``, following :data:`SCALING_POLICY`.

    A multi-band file (:func:`cnn_studio.data.bands.is_multiband`) gives its default RGB composite,
    for display; the model takes its raw bands (:func:`cnn_studio.data.bands.read_bands`).

    Parameters
    ----------
    path
        The file (any suffix in :data:`cnn_studio.data.formats.IMAGE_SUFFIXES`, or a DICOM file).
    max_pixels
        Decompression-bomb guard, checked from the header before any pixel is decoded.
    reduce_to
        The side the caller resizes the picture to next (the model's input). Given, a large
        picture is reduced *while it is read*: JPEG decodes at 1/2, 1/4 or 1/8 scale (Pillow's
        ``draft``), other Pillow formats are box-reduced by an integer factor before any RGB/float
        copy is made; both sides stay at least ``2 * reduce_to``. A 9990×9990 JPEG then costs
        about what a 1250×1250 one costs (``bench/decode_memory.py``).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(height, width, 3)``.

    Raises
    ------
    ImageReadError
        ``.reason`` is ``"empty"``, ``"not_an_image"``, ``"unreadable"``, ``"truncated"``,
        ``"too_large"`` or ``"unsupported"``.

    Examples
    --------
    >>> decode_file("xray/IM0001.dcm").shape  # doctest: +SKIP
    (512, 512, 3)
    """
    path = Path(path)
    check_file(path)
    reader = formats.reader_for(path)
    if reader is None:
        raise read_error(path, "not_an_image", f"suffix {formats.image_suffix(path) or '(none)'} is not an image type")
    try:
        if reader == formats.PYDICOM:
            from cnn_studio.data.medical import decode_dicom

            return decode_dicom(path, max_pixels)
        if reader == formats.NIBABEL:
            from cnn_studio.data.medical import decode_nifti

            return decode_nifti(path, max_pixels)
        if reader == formats.NUMPY or (formats.is_tiff(path) and bands.is_multiband(path)):
            return bands.read_composite(path, max_pixels=max_pixels)  # for people; the model reads bands.read_bands
        return _decode_pillow(path, max_pixels, reduce_to)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise read_error(path, "too_large", "not enough memory to decode it") from exc
    except OSError as exc:
        raise read_error(path, _os_error_reason(exc), str(exc)) from exc


def decode_key(key: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int | None = None) -> np.ndarray:
    """Decode the image a record key names (:attr:`ImageRecord.key`) to ``uint8`` RGB ``(H, W, 3)``.

    A plain path is :func:`decode_file`; ``path#slice=AXIS:INDEX`` is that slice of a volume file,
    windowed over the whole volume (:func:`cnn_studio.data.medical.decode_volume_slice`).
    """
    path, axis, index = parse_key(key)
    if index is None:
        return decode_file(path, max_pixels=max_pixels, reduce_to=reduce_to)
    from cnn_studio.data.medical import decode_volume_slice

    check_file(Path(path))
    return decode_volume_slice(Path(path), int(axis or 0), index, max_pixels)


def _os_error_reason(exc: OSError) -> str:
    """"truncated" for Pillow's and libjpeg's "file ends early" errors, else "unreadable"."""
    msg = str(exc).lower()
    return "truncated" if "truncat" in msg or "end of file" in msg or "premature end" in msg else "unreadable"


_HIGH_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


_EXIF_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
                   6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def _reduced(img: Any, factor: int) -> Any:
    """``img`` (loaded) box-reduced by ``factor``, EXIF orientation applied; modes ``reduce`` lacks are converted first."""

    orientation = int(img.getexif().get(0x0112, 1) or 1)
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    try:
        img = img.reduce(factor)
    except ValueError:
        pass  # a mode reduce does not take: keep the full size
    method = _EXIF_TRANSPOSE.get(orientation)
    return img.transpose(getattr(Image.Transpose, method)) if method else img


def _decode_pillow(path: Path, max_pixels: int, reduce_to: int | None = None) -> np.ndarray:
    try:
        img = _open_pillow(path)
    except ImageReadError:
        if formats.is_tiff(path):
            return _decode_tiff(path, max_pixels)
        raise
    with img:
        check_size(path, *img.size, max_pixels)
        if _needs_tifffile(img):
            return _decode_tiff(path, max_pixels)
        factor = reduction_factor(*img.size, reduce_to)
        try:
            if factor > 1 and img.format == "JPEG":
                img.draft(None, (img.size[0] // factor, img.size[1] // factor))  # DCT scaling while decoding
                factor = reduction_factor(*img.size, reduce_to)
            img.load()
            img = _reduced(img, factor) if factor > 1 else ImageOps.exif_transpose(img)
        except OSError as exc:
            msg = str(exc).lower()
            if "truncat" in msg or "end of file" in msg or "broken" in msg:
                raise read_error(path, "truncated", str(exc)) from exc
            raise read_error(path, "unsupported", str(exc)) from exc
        except (SyntaxError, ValueError) as exc:
            raise read_error(path, "truncated", str(exc)) from exc
        if img.mode in _HIGH_BIT_MODES:
            return grey_to_rgb(percentile_window(np.asarray(img)))
        if img.mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        return np.asarray(img.convert("RGB"))


def _decode_tiff(path: Path, max_pixels: int) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            check_size(path, int(page.imagewidth), int(page.imagelength), max_pixels)
            arr = page.asarray()
            if arr.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
                arr = np.moveaxis(arr, 0, -1)
    except (tifffile.TiffFileError, IndexError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    except ValueError as exc:
        raise read_error(path, "unsupported", str(exc)) from exc
    return array_to_rgb(arr)


def decode_notes() -> tuple[str, ...]:
    """The scaling policies as sentences, for the dataset report and the docs."""
    return tuple(SCALING_POLICY.values())
