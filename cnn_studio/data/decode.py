"""One image file → its header facts (:func:`probe`) or its pixels as uint8 RGB (:func:`decode_file`).

:func:`probe` reads headers only (Pillow's lazy open, pydicom's ``stop_before_pixels``, tifffile's
page shape, nibabel's header), so scanning thousands of files never holds pixels in memory.
:func:`decode_file` returns a ``numpy.uint8`` array of shape ``(H, W, 3)``. How non-8-bit data
becomes 8-bit is a *policy* the user should know about; :data:`SCALING_POLICY` states each one in
words and the dataset report shows them.

Every failure is an :class:`~cnn_studio.errors.ImageReadError` whose ``reason`` is one of
:data:`REASONS` and whose ``path`` names the file.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.data import formats
from cnn_studio.errors import ImageReadError

DEFAULT_MAX_PIXELS = 100_000_000
"""Decompression-bomb guard: images with more pixels than this are refused (reason "too_large")."""

REASONS = ("empty", "not_an_image", "unreadable", "truncated", "too_large", "unsupported")

SCALING_POLICY: dict[str, str] = {
    "orientation": "JPEG/TIFF EXIF orientation is applied, so images appear the way a photo viewer shows them.",
    "alpha": "Transparent pixels (RGBA, LA, palette transparency) are composited onto a WHITE background.",
    "grey": "Greyscale images are repeated into 3 identical channels (RGB).",
    "high_bit_depth": "16-bit, 32-bit and floating-point images are mapped to 0-255 by a percentile "
    "window: the 0.5th percentile becomes black and the 99.5th white (never truncated to the low 8 bits).",
    "dicom": "DICOM: rescale slope/intercept (modality LUT) is applied, then the file's own VOI window or "
    "VOI LUT; without one, the percentile window. MONOCHROME1 images are inverted so that bone is bright. "
    "Multi-frame files use their middle frame.",
    "nifti": "NIfTI volumes (.nii, .nii.gz) use their middle slice along the third axis, rotated 90 degrees "
    "for display, with the percentile window.",
    "multi_page": "GIF animations and multi-page TIFFs use their first frame/page.",
    "cmyk": "CMYK images are converted to RGB without a colour profile (colours may shift slightly).",
}
"""How each kind of input becomes 8-bit RGB, in words a user can read (shown in the dataset report)."""

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


@dataclass(frozen=True)
class ProbeResult:
    """What a file's header says: size, pixel mode, container format, frame count, group id.

    ``group`` is the DICOM PatientID when the file has one (used for patient-grouped splits).
    """

    width: int
    height: int
    mode: str
    fmt: str
    frames: int = 1
    group: str | None = None


def read_error(path: str | os.PathLike[str], reason: str, detail: str = "") -> ImageReadError:
    """Build the :class:`ImageReadError` for ``path`` with a ``reason`` code from :data:`REASONS`."""
    what, hint = _REASON_TEXT[reason]
    name = os.fspath(path)
    err = ImageReadError(f"{name} {what}" + (f": {detail}" if detail else "."), hint)
    err.reason = reason  # type: ignore[attr-defined]
    err.path = name  # type: ignore[attr-defined]
    err.detail = detail  # type: ignore[attr-defined]
    return err


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise read_error(path, "too_large", f"{width}x{height} pixels is more than the limit of {max_pixels:,}")


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise read_error(path, "unreadable", exc.strerror or str(exc)) from exc
    if size == 0:
        raise read_error(path, "empty")


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
    _check_file(path)
    reader = formats.reader_for(path)
    if reader is None:
        raise read_error(path, "not_an_image", f"suffix {formats.image_suffix(path) or '(none)'} is not an "
                         f"image type ({formats.describe_formats()})")
    try:
        if reader == formats.PYDICOM:
            return _probe_dicom(path, max_pixels)
        if reader == formats.NIBABEL:
            return _probe_nifti(path, max_pixels)
        return _probe_pillow(path, max_pixels)
    except ImageReadError:
        raise
    except OSError as exc:
        raise read_error(path, "unreadable", str(exc)) from exc


def _open_pillow(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

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
        _check_size(path, width, height, max_pixels)
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
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            height, width = int(page.imagelength), int(page.imagewidth)
            mode = f"{page.dtype}x{page.samplesperpixel}" if page.samplesperpixel > 1 else str(page.dtype)
            frames = len(tif.pages)
    except (tifffile.TiffFileError, ValueError, IndexError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    _check_size(path, width, height, max_pixels)
    return ProbeResult(width, height, mode, "TIFF", frames)


def _probe_dicom(path: Path, max_pixels: int) -> ProbeResult:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, EOFError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    except (ValueError, KeyError) as exc:
        raise read_error(path, "unreadable", f"damaged DICOM header ({exc})") from exc
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols:
        raise read_error(path, "not_an_image", "the DICOM file holds no image (e.g. a report or a series summary)")
    _check_size(path, int(cols), int(rows), max_pixels)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    patient = str(ds.get("PatientID", "") or "").strip()
    mode = f"DICOM {ds.get('PhotometricInterpretation', '')}".strip()
    return ProbeResult(int(cols), int(rows), mode, "DICOM", frames, patient or None)


def _probe_nifti(path: Path, max_pixels: int) -> ProbeResult:
    img = _load_nifti(path)
    shape = img.shape
    if len(shape) < 2:
        raise read_error(path, "not_an_image", f"the volume has shape {shape}")
    width, height = int(shape[0]), int(shape[1])
    _check_size(path, width, height, max_pixels)
    frames = int(shape[2]) if len(shape) >= 3 else 1
    return ProbeResult(width, height, f"NIfTI {img.get_data_dtype()}", "NIfTI", frames)


def _load_nifti(path: Path) -> Any:
    import nibabel
    from nibabel.filebasedimages import ImageFileError

    try:
        return nibabel.load(path)
    except ImageFileError as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    except (EOFError, ValueError) as exc:
        raise read_error(path, "truncated", str(exc)) from exc


# ---------------------------------------------------------------- decode


def decode_file(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one image file to ``uint8`` RGB, ``(H, W, 3)``, following :data:`SCALING_POLICY`.

    Parameters
    ----------
    path
        The file (any suffix in :data:`cnn_studio.data.formats.IMAGE_SUFFIXES`, or a DICOM file).
    max_pixels
        Decompression-bomb guard, checked from the header before any pixel is decoded.

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
    _check_file(path)
    reader = formats.reader_for(path)
    if reader is None:
        raise read_error(path, "not_an_image", f"suffix {formats.image_suffix(path) or '(none)'} is not an image type")
    try:
        if reader == formats.PYDICOM:
            return _decode_dicom(path, max_pixels)
        if reader == formats.NIBABEL:
            return _decode_nifti(path, max_pixels)
        return _decode_pillow(path, max_pixels)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise read_error(path, "too_large", "not enough memory to decode it") from exc
    except OSError as exc:
        raise read_error(path, "unreadable", str(exc)) from exc


_HIGH_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def _decode_pillow(path: Path, max_pixels: int) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        img = _open_pillow(path)
    except ImageReadError:
        if formats.is_tiff(path):
            return _decode_tiff(path, max_pixels)
        raise
    with img:
        _check_size(path, *img.size, max_pixels)
        if _needs_tifffile(img):
            return _decode_tiff(path, max_pixels)
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
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
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            _check_size(path, int(page.imagewidth), int(page.imagelength), max_pixels)
            arr = page.asarray()
            if arr.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
                arr = np.moveaxis(arr, 0, -1)
    except (tifffile.TiffFileError, IndexError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    except ValueError as exc:
        raise read_error(path, "unsupported", str(exc)) from exc
    return array_to_rgb(arr)


def _decode_dicom(path: Path, max_pixels: int) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols or "PixelData" not in ds:
        raise read_error(path, "not_an_image", "the DICOM file holds no image")
    _check_size(path, int(cols), int(rows), max_pixels)
    try:
        arr = ds.pixel_array
    except (ValueError, RuntimeError, NotImplementedError) as exc:
        msg = str(exc).lower()
        reason = "truncated" if "length" in msg or "expected" in msg else "unsupported"
        raise read_error(path, reason, str(exc)) from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[frames // 2]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if not photometric.startswith("MONOCHROME"):
        return array_to_rgb(arr)  # pydicom already returns RGB for YBR colour spaces
    values = apply_modality_lut(arr, ds)
    voi = _voi_range(ds)
    if voi is not None:
        lo, hi = voi
        windowed = apply_voi_lut(values, ds, index=0).astype(np.float64)
        out = np.clip((windowed - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * 255.0
        grey = np.round(out).astype(np.uint8)
    else:
        grey = percentile_window(values)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return grey_to_rgb(grey)


def _voi_range(ds: Any) -> tuple[float, float] | None:
    """Output range of pydicom's ``apply_voi_lut`` for ``ds``, or None when it has no VOI."""
    if ds.get("VOILUTSequence"):
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    bits = int(ds.get("BitsStored", 16))
    if ds.get("ModalityLUTSequence"):
        lo, hi = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    elif int(ds.get("PixelRepresentation", 0)) == 0:
        lo, hi = 0.0, float(2**bits - 1)
    else:
        lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        lo, hi = lo * float(slope) + float(intercept), hi * float(slope) + float(intercept)
    return min(lo, hi), max(lo, hi)


def _decode_nifti(path: Path, max_pixels: int) -> np.ndarray:
    img = _load_nifti(path)
    shape = img.shape
    if len(shape) < 2:
        raise read_error(path, "not_an_image", f"the volume has shape {shape}")
    _check_size(path, int(shape[0]), int(shape[1]), max_pixels)
    index: tuple[Any, ...] = (slice(None), slice(None))
    if len(shape) >= 3:
        index += (shape[2] // 2,) + (0,) * (len(shape) - 3)
    try:
        plane = np.asarray(img.dataobj[index], dtype=np.float64)
    except (EOFError, ValueError, OSError) as exc:
        raise read_error(path, "truncated", str(exc)) from exc
    return grey_to_rgb(percentile_window(np.rot90(plane)))


# ---------------------------------------------------------------- array policies


def percentile_window(arr: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Map any numeric array to ``uint8``: the ``low`` percentile → 0, the ``high`` percentile → 255.

    NaN/inf become 0. A constant image becomes all zeros.

    Examples
    --------
    >>> a = np.arange(0, 65536, 256, dtype=np.uint16).reshape(16, 16)
    >>> w = percentile_window(a); (int(w.min()), int(w.max()))
    (0, 255)
    """
    values = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    lo, hi = np.percentile(values[finite], [low, high])
    if hi <= lo:
        lo, hi = values[finite].min(), values[finite].max()
    if hi <= lo:
        return np.zeros(values.shape, np.uint8)
    out = np.clip((values - lo) / (hi - lo), 0.0, 1.0) * 255.0
    out[~finite] = 0.0
    return np.round(out).astype(np.uint8)


def grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Repeat a 2-D ``uint8`` image into 3 identical channels."""
    return np.repeat(grey[:, :, None], 3, axis=2)


def array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Any ``(H, W)`` / ``(H, W, C)`` array → ``uint8`` RGB (extra channels and alpha dropped,
    non-uint8 data windowed by :func:`percentile_window`)."""
    arr = np.asarray(arr)
    while arr.ndim > 3:  # e.g. (1, H, W, C) or (Z, H, W): take the first plane
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] in (1, 2):
        arr = arr[..., 0]
    elif arr.ndim == 3:
        arr = arr[..., :3]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        arr = percentile_window(arr)
    return grey_to_rgb(arr) if arr.ndim == 2 else np.ascontiguousarray(arr)


def decode_notes() -> tuple[str, ...]:
    """The scaling policies as sentences, for the dataset report and the docs."""
    return tuple(SCALING_POLICY.values())
