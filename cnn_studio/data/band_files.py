"""Which files are multi-band, and reading them: N-band arrays with their raw values and band names.

A file is *multi-band* when it is a ``.npy`` array (``H×W`` or ``H×W×N``, any numeric dtype) or a TIFF
whose first page is not plain picture data (:func:`is_multiband`). :func:`read_bands` gives float32
``(H, W, N)`` with its RAW values; band names come from the GDAL_METADATA tag (:data:`GDAL_METADATA_TAG`).
Statistics, composites and a run's ``bands.json`` are :mod:`cnn_studio.data.bands`, which re-exports these.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from cnn_studio.core.errors import ImageReadError
from cnn_studio.data.read_errors import check_file, check_size, read_error
from cnn_studio.data.records import ProbeResult, parse_key

NPY_SUFFIX = ".npy"
GDAL_METADATA_TAG = 42112
DEFAULT_MAX_PIXELS = 100_000_000
"""Files announcing more pixels than this are refused before they are read."""


def _tiff_page_is_multiband(page: Any) -> bool:
    spp = int(page.samplesperpixel)
    if spp > 4:
        return True
    if spp < 2 or page.photometric != tifffile.PHOTOMETRIC.MINISBLACK:
        return False
    extras = tuple(getattr(page, "extrasamples", ()) or ())
    return not (spp == 2 and any(int(e) in (1, 2) for e in extras))  # grey + alpha is a picture


def is_multiband(path: str | os.PathLike[str]) -> bool:
    """True for a ``.npy`` array or a multi-band TIFF (reads the TIFF header only; False if unreadable)."""
    p = Path(path)
    if p.suffix.lower() == NPY_SUFFIX:
        return True
    if p.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        with tifffile.TiffFile(p) as tif:
            return _tiff_page_is_multiband(tif.pages[0])
    except Exception:  # noqa: BLE001 - not a readable TIFF: the picture readers say why
        return False


def is_multiband_key(key: str) -> bool:
    """:func:`is_multiband` for a record key (a slice of a volume is never multi-band)."""
    path, _axis, index = parse_key(key)
    return index is None and is_multiband(path)


def _gdal_band_names(page: Any, n: int) -> tuple[str, ...]:
    tag = page.tags.get(GDAL_METADATA_TAG)
    if tag is None:
        return ()
    text = tag.value if isinstance(tag.value, str) else bytes(tag.value).decode("utf-8", "replace")
    names = [""] * n
    for m in re.finditer(r"<Item\s+([^>]*)>([^<]*)</Item>", text):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if attrs.get("name", "").upper() != "DESCRIPTION" or "sample" not in attrs:
            continue
        try:
            i = int(attrs["sample"])
        except ValueError:
            continue
        if 0 <= i < n:
            names[i] = m.group(2).strip()
    return tuple(names) if any(names) else ()


def gdal_metadata(band_names: Sequence[str]) -> str:
    """The GDAL_METADATA XML that names bands (what GDAL writes; :func:`read_band_names` reads it back)."""
    items = "".join(f'<Item name="DESCRIPTION" sample="{i}" role="description">{name}</Item>'
                    for i, name in enumerate(band_names))
    return f"<GDALMetadata>{items}</GDALMetadata>"


def probe_bands(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ProbeResult:
    """The header facts of a multi-band file: size, band count, dtype, band names (no pixels read).

    Raises :class:`~cnn_studio.core.errors.ImageReadError` for a file that is not a readable array.
    """
    p = Path(path)
    check_file(p)
    if p.suffix.lower() == NPY_SUFFIX:
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise read_error(p, "not_an_image", f"not a numpy array file: {exc}") from exc
        shape = arr.shape
        if len(shape) not in (2, 3) or not np.issubdtype(arr.dtype, np.number) or min(shape) == 0:
            raise read_error(p, "unsupported", f"expected an H×W or H×W×N numeric array, found shape "
                                               f"{tuple(shape)} of {arr.dtype}")
        n = 1 if len(shape) == 2 else int(shape[2])
        h, w = int(shape[0]), int(shape[1])
        check_size(p, w, h, max_pixels)
        return ProbeResult(w, h, f"{arr.dtype}x{n}", "NPY", 1, bands=n, dtype=str(arr.dtype))
    try:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            h, w, n = int(page.imagelength), int(page.imagewidth), int(page.samplesperpixel)
            dtype, frames = str(page.dtype), len(tif.pages)
            names = _gdal_band_names(page, n)
    except (tifffile.TiffFileError, ValueError, IndexError) as exc:
        raise read_error(p, "not_an_image", str(exc)) from exc
    check_size(p, w, h, max_pixels)
    return ProbeResult(w, h, f"{dtype}x{n}", "TIFF", frames, bands=n, dtype=dtype, band_names=names)


def read_band_names(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The band names a file carries (GDAL_METADATA), or ``()``."""
    try:
        return probe_bands(path).band_names
    except ImageReadError:
        return ()


def read_bands(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A multi-band file's pixels as float32 ``(H, W, N)`` with their RAW values.

    Raises :class:`~cnn_studio.core.errors.ImageReadError` (reason ``not_an_image``/``unsupported``/...).
    """
    return read_with_header(path, max_pixels)[1]


def read_with_header(path: str | os.PathLike[str], max_pixels: int) -> tuple[ProbeResult, np.ndarray]:
    """:func:`probe_bands` and the pixels of :func:`read_bands`, the header read once."""
    p = Path(path)
    info = probe_bands(p, max_pixels=max_pixels)
    try:
        if p.suffix.lower() == NPY_SUFFIX:
            arr = np.load(p, allow_pickle=False)
        else:
            with tifffile.TiffFile(p) as tif:
                page = tif.pages[0]
                arr = page.asarray()
                if arr.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
                    arr = np.moveaxis(arr, 0, -1)
    except (tifffile.TiffFileError, IndexError, EOFError) as exc:
        raise read_error(p, "truncated", str(exc)) from exc
    except ValueError as exc:
        raise read_error(p, "unsupported", str(exc)) from exc
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape != (info.height, info.width, info.bands):
        raise read_error(p, "unsupported", f"expected {info.height}×{info.width}×{info.bands} values, "
                                           f"found shape {arr.shape}")
    return info, arr.astype(np.float32, copy=False)
