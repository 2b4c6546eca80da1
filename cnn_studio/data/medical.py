"""Medical formats: DICOM (pydicom) and NIfTI (nibabel) headers and pixels.

DICOM: rescale slope/intercept (modality LUT), then the file's VOI window or VOI LUT (else the
percentile window), MONOCHROME1 inverted, multi-frame → the middle frame, PatientID as the group
for patient-grouped splits. NIfTI: the middle slice along the third axis when a whole file is
decoded (:func:`decode_nifti`); a slice record of a volume (``path#slice=AXIS:INDEX``, see
:mod:`cnn_studio.data.volumes`) is :func:`decode_volume_slice`, windowed over the whole volume.
This module (with pydicom and nibabel, about 0.26 s of imports) is imported only when such a file is met.

Volume cache: an epoch reads every slice of a volume, one after the other (the pipeline decodes in
record order before it shuffles). A ``.nii.gz`` must be decompressed to reach any slice, so the
last few volumes read are kept in memory (:data:`VOLUME_CACHE_BYTES` in all, process-wide, thread-safe),
keyed by path, modification time and size: an edited file is read again. Their windows (two
numbers each) are kept for many more volumes.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import pydicom
from nibabel.filebasedimages import ImageFileError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from cnn_studio.data.pixels import (
    array_to_rgb,
    grey_to_rgb,
    percentile_range,
    percentile_window,
    window_to_uint8,
)
from cnn_studio.data.read_errors import check_size, read_error
from cnn_studio.data.records import SLICE_AXES, ProbeResult


@functools.lru_cache(maxsize=1)
def _header_of(key: tuple[str, int, int]) -> Any:
    return pydicom.dcmread(key[0], stop_before_pixels=True)


def dicom_header(path: Path) -> Any:
    """A DICOM file's header (``dcmread(..., stop_before_pixels=True)``, read-only for callers). The last
    one is remembered by path, modification time and size: a scan asks :func:`probe_dicom` and then
    :func:`dicom_slice_info` for the same file, and reads it once."""
    st = os.stat(path)
    return _header_of((os.path.abspath(path), st.st_mtime_ns, st.st_size))


def probe_dicom(path: Path, max_pixels: int) -> ProbeResult:
    """Header facts of a DICOM file (size, photometric mode, frames, PatientID as ``group``); no pixels read."""

    try:
        ds = dicom_header(path)
    except (InvalidDicomError, EOFError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    except (ValueError, KeyError) as exc:
        raise read_error(path, "unreadable", f"damaged DICOM header ({exc})") from exc
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols:
        raise read_error(path, "not_an_image", "the DICOM file holds no image (e.g. a report or a series summary)")
    check_size(path, int(cols), int(rows), max_pixels)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    patient = str(ds.get("PatientID", "") or "").strip()
    mode = f"DICOM {ds.get('PhotometricInterpretation', '')}".strip()
    return ProbeResult(int(cols), int(rows), mode, "DICOM", frames, patient or None)


def probe_nifti(path: Path, max_pixels: int) -> ProbeResult:
    """Header facts of a NIfTI volume (in-plane size, slices as ``frames``)."""
    img = load_nifti(path)
    shape = img.shape
    if len(shape) < 2:
        raise read_error(path, "not_an_image", f"the volume has shape {shape}")
    width, height = int(shape[0]), int(shape[1])
    check_size(path, width, height, max_pixels)
    frames = int(shape[2]) if len(shape) >= 3 else 1
    return ProbeResult(width, height, f"NIfTI {img.get_data_dtype()}", "NIfTI", frames)


def load_nifti(path: Path) -> Any:
    """``nibabel.load`` with its errors turned into ImageReadErrors (data stays on disk until sliced)."""

    try:
        return nibabel.load(path)
    except ImageFileError as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    except (EOFError, ValueError) as exc:
        raise read_error(path, "truncated", str(exc)) from exc


def decode_dicom(path: Path, max_pixels: int) -> np.ndarray:
    """A DICOM image (its middle frame) as uint8 RGB, windowed as the module docstring says."""

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not rows or not cols or "PixelData" not in ds:
        raise read_error(path, "not_an_image", "the DICOM file holds no image")
    check_size(path, int(cols), int(rows), max_pixels)
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
    bad = _bad_window_width(ds)
    if bad is not None:  # pydicom raises a bare ValueError deep in apply_voi_lut
        raise read_error(path, "unsupported", f"its display window is invalid: WindowWidth is {bad} "
                                              "(it must be at least 1); fix the file's header")
    voi = voi_range(ds)
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


def _bad_window_width(ds: Any) -> float | None:
    """The first WindowWidth below 1 (DICOM PS3.3 C.11.2.1.2: it must be >= 1), else None."""
    if ds.get("VOILUTSequence") or "WindowWidth" not in ds:
        return None
    raw = ds.WindowWidth
    widths = list(raw) if isinstance(raw, (list, tuple)) or hasattr(raw, "__iter__") and not isinstance(raw, str) else [raw]
    try:
        return next((float(w) for w in widths if float(w) < 1), None)
    except (TypeError, ValueError):
        return 0.0


def voi_range(ds: Any) -> tuple[float, float] | None:
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


def decode_nifti(path: Path, max_pixels: int) -> np.ndarray:
    """The middle slice of a NIfTI volume as uint8 RGB (percentile window)."""
    img = load_nifti(path)
    shape = img.shape
    if len(shape) < 2:
        raise read_error(path, "not_an_image", f"the volume has shape {shape}")
    check_size(path, int(shape[0]), int(shape[1]), max_pixels)
    index: tuple[Any, ...] = (slice(None), slice(None))
    if len(shape) >= 3:
        index += (shape[2] // 2,) + (0,) * (len(shape) - 3)
    try:
        plane = np.asarray(img.dataobj[index], dtype=np.float64)
    except (EOFError, ValueError, OSError) as exc:
        raise read_error(path, "truncated", str(exc)) from exc
    return grey_to_rgb(percentile_window(np.rot90(plane)))


# ---------------------------------------------------------------- volumes (slices windowed over the volume)

WINDOW_PERCENTILES = (0.5, 99.5)
"""A volume's display window: its 0.5th percentile is black, its 99.5th white (every slice alike)."""

VOLUME_CACHE_BYTES = 512 * 1024 * 1024
"""Decoded volumes kept in memory (all threads together); the most recently used stay."""

_VOLUME_CACHE_ITEMS = 8
_WINDOW_CACHE_ITEMS = 4096


@dataclass(frozen=True)
class Volume:
    """A 3-D volume as float32 (first volume of a 4-D file) and its display window ``(lo, hi)``."""

    data: np.ndarray
    window: tuple[float, float]


_lock = threading.Lock()
_volumes: OrderedDict[tuple[str, int, int], Volume] = OrderedDict()
_windows: OrderedDict[tuple[str, int, int], tuple[float, float]] = OrderedDict()
_stats = {"loads": 0, "hits": 0}


def volume_cache_stats() -> dict[str, int]:
    """How often a volume was read from disk (``loads``) and found in memory (``hits``) in this process."""
    with _lock:
        return dict(_stats)


def clear_volume_cache() -> None:
    """Forget every cached volume and window (and the counts)."""
    with _lock:
        _volumes.clear()
        _windows.clear()
        _stats.update(loads=0, hits=0)


def _cache_key(path: Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return os.path.abspath(path), st.st_mtime_ns, st.st_size


def volume_window(data: np.ndarray) -> tuple[float, float]:
    """The display window of a whole volume: its :data:`WINDOW_PERCENTILES` (finite values only)."""
    return percentile_range(data, *WINDOW_PERCENTILES) or (0.0, 0.0)


def load_volume(path: Path) -> Volume:
    """A NIfTI file as a 3-D float32 :class:`Volume` (4-D: its first volume; 2-D: one slice), cached."""
    key = _cache_key(path)
    with _lock:
        hit = _volumes.get(key)
        if hit is not None:
            _volumes.move_to_end(key)
            _stats["hits"] += 1
            return hit
    img = load_nifti(path)
    shape = img.shape
    if len(shape) < 2:
        raise read_error(path, "not_an_image", f"the volume has shape {shape}")
    index = (slice(None),) * min(3, len(shape)) + (0,) * max(0, len(shape) - 3)
    try:
        data = np.asarray(img.dataobj[index], dtype=np.float32)
    except (EOFError, ValueError, OSError) as exc:
        raise read_error(path, "truncated", str(exc)) from exc
    except MemoryError as exc:
        raise read_error(path, "too_large", "not enough memory to read the volume") from exc
    if data.ndim == 2:
        data = data[:, :, None]
    with _lock:
        window = _windows.get(key)
    if window is None:
        window = volume_window(data)
    volume = Volume(data, window)
    with _lock:
        _stats["loads"] += 1
        _windows[key] = window
        _windows.move_to_end(key)
        while len(_windows) > _WINDOW_CACHE_ITEMS:
            _windows.popitem(last=False)
        if data.nbytes <= VOLUME_CACHE_BYTES:
            _volumes[key] = volume
            _volumes.move_to_end(key)
            while len(_volumes) > _VOLUME_CACHE_ITEMS or sum(v.data.nbytes for v in _volumes.values()) > VOLUME_CACHE_BYTES:
                _volumes.popitem(last=False)
    return volume


def volume_shape(path: Path) -> tuple[int, int, int]:
    """The 3-D shape of a NIfTI volume from its header (4-D: the first volume; 2-D: one slice)."""
    shape = tuple(int(n) for n in load_nifti(path).shape)
    if len(shape) < 2:
        raise read_error(path, "not_an_image", f"the volume has shape {shape}")
    return (shape + (1,))[:3] if len(shape) == 2 else shape[:3]  # type: ignore[return-value]


def slice_plane(data: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice ``index`` across ``axis`` of a 3-D array, turned for display (rotated 90 degrees, like
    :func:`decode_nifti`): a ``(rows, columns)`` array."""
    return np.rot90(data[(slice(None),) * axis + (index,)])  # a view (np.take would gather-copy, 100x slower)


def decode_volume_slice(path: Path, axis: int, index: int, max_pixels: int) -> np.ndarray:
    """Slice ``index`` across ``axis`` of a NIfTI volume as uint8 RGB ``(H, W, 3)``.

    Windowed over the WHOLE volume (:func:`volume_window`), so the slices of one study are
    comparable and an empty slice stays dark; rotated 90 degrees for display like
    :func:`decode_nifti`; grey repeated into 3 channels. The volume stays cached (see the module
    docstring), so reading all slices of a ``.nii.gz`` decompresses it once.

    Raises
    ------
    ImageReadError
        ``"not_an_image"`` (not a volume, or no such axis/slice: the file changed since the scan),
        ``"truncated"``, ``"too_large"``.
    """
    if axis not in SLICE_AXES:
        raise read_error(path, "not_an_image", f"slice axis {axis} is not 0, 1 or 2")
    volume = load_volume(path)
    n = volume.data.shape[axis]
    if not 0 <= index < n:
        raise read_error(path, "not_an_image", f"slice {index} along axis {axis} does not exist: the volume has "
                                               f"{n} (the file changed since the scan? scan it again)")
    plane = slice_plane(volume.data, axis, index)
    check_size(path, int(plane.shape[1]), int(plane.shape[0]), max_pixels)
    return grey_to_rgb(window_to_uint8(plane, volume.window))


# ---------------------------------------------------------------- DICOM series facts


@dataclass(frozen=True)
class DicomSlice:
    """What a DICOM file says about its place in a series: series UID, instance number, position
    along the slice normal (None when the header lacks it), frames."""

    series: str
    instance: int | None
    position: float | None
    frames: int


def dicom_slice_info(path: Path) -> DicomSlice:
    """Series UID, InstanceNumber and the position along the slice normal
    (ImagePositionPatient · (row × column direction of ImageOrientationPatient)); header only."""
    try:
        ds = dicom_header(path)
    except (InvalidDicomError, EOFError, ValueError, KeyError) as exc:
        raise read_error(path, "not_an_image", str(exc)) from exc
    series = str(ds.get("SeriesInstanceUID", "") or "").strip()
    try:
        instance = int(ds.get("InstanceNumber")) if ds.get("InstanceNumber") is not None else None
    except (TypeError, ValueError):
        instance = None
    position = None
    try:
        ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
        if ipp is not None and len(ipp) == 3:
            normal = np.array([0.0, 0.0, 1.0])
            if iop is not None and len(iop) == 6:
                normal = np.cross(np.array(iop[:3], float), np.array(iop[3:], float))
            position = float(np.dot(np.array(ipp, float), normal))
    except (TypeError, ValueError):
        position = None
    return DicomSlice(series, instance, position, int(ds.get("NumberOfFrames", 1) or 1))


def dicom_values(path: Path) -> np.ndarray:
    """A single-frame DICOM file's pixel values after the modality LUT (float64), for content detection."""
    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except (InvalidDicomError, EOFError, ValueError, RuntimeError, NotImplementedError, KeyError, AttributeError) as exc:
        raise read_error(path, "unreadable", str(exc)) from exc
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[int(ds.NumberOfFrames) // 2]
    return np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
