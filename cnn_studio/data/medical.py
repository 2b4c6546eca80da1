"""Medical formats: DICOM (pydicom) and NIfTI (nibabel) headers and pixels.

DICOM: rescale slope/intercept (modality LUT), then the file's VOI window or VOI LUT (else the
percentile window), MONOCHROME1 inverted, multi-frame → the middle frame, PatientID as the group
for patient-grouped splits. NIfTI: the middle slice along the third axis. This module (with pydicom and
nibabel, about 0.26 s of imports) is imported only when such a file is met.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import pydicom
from nibabel.filebasedimages import ImageFileError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from cnn_studio.data.pixels import array_to_rgb, grey_to_rgb, percentile_window
from cnn_studio.data.read_errors import check_size, read_error
from cnn_studio.data.records import ProbeResult


def probe_dicom(path: Path, max_pixels: int) -> ProbeResult:
    """Header facts of a DICOM file (size, photometric mode, frames, PatientID as ``group``); no pixels read."""

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
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
