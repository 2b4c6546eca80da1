"""Volumes and studies → 2-D slice records: NIfTI files and DICOM series, sliced, selected, grouped.

A *study* is one NIfTI file (``.nii``/``.nii.gz``; 4-D: its first volume) or one DICOM series (the
single-frame DICOM files of one folder that share a SeriesInstanceUID, two or more of them). It
becomes one :class:`~cnn_studio.data.records.ImageRecord` per kept slice:

- NIfTI: ``study`` = the file path, ``slice_index``/``slice_axis`` name the slice
  (:attr:`ImageRecord.key` = ``path#slice=AXIS:INDEX``), ``fmt`` "NIfTI";
- DICOM: one record per file (``slice_index`` None), ``study`` = the series folder (with
  ``#series=UID`` appended when one folder holds several series), slices ordered by their position
  along the slice normal (ImagePositionPatient), else InstanceNumber, else file name.

``group`` (what the split keeps together) is the patient when known — the DICOM PatientID, a CSV
manifest's group column, or a BIDS-style ``sub-<id>`` in the NIfTI file's name or in a folder
name below the dataset root (``lesion/sub-07/ses-2.nii.gz``, ``lesion/sub-07_ses-2.nii.gz``) —
else the study itself. So every slice of a study, and every study of a patient, lands in one split.

Which slices are kept (:class:`~cnn_studio.data.records.VolumeSlicing.slices`):

``"content"`` (default)
    slices with content. **Definition**: the volume's display window is its 0.5th–99.5th
    percentile (:data:`cnn_studio.data.medical.WINDOW_PERCENTILES`, the same window the slices are
    shown and trained with); a voxel is *content* when it is brighter than
    :data:`CONTENT_LEVEL` (10 %) of that window, i.e. not black on screen; a slice *has content*
    when at least :data:`CONTENT_FRACTION` (5 %) of its voxels are content. Air and padding slices
    at the ends of a scan are left out. A volume without any such slice is skipped (reason "empty").
``"all"``
    every slice.
``"middle:K"``
    the K slices around the middle of the axis (all of them when the volume has K or fewer).

A DICOM series is windowed per file as :func:`cnn_studio.data.medical.decode_dicom` says (its VOI
window; scanners write the same one in every file of a series); content detection uses the modality
values of all files of the series with the window taken over the whole series.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.data.read_errors import check_size, read_error
from cnn_studio.data.records import DatasetIndex, ImageRecord, SkippedFile, VolumeSlicing
from cnn_studio.training.config import parse_slices

CONTENT_LEVEL = 0.10
"""A voxel is content when brighter than this share of the volume's display window (lo + 10 % of hi - lo)."""

CONTENT_FRACTION = 0.05
"""A slice has content when at least this share of its voxels is content."""

_BIDS_SUBJECT = re.compile(r"(?:^|[_/\\])sub-([A-Za-z0-9]+)")


# ---------------------------------------------------------------- which slices


def content_fractions(data: np.ndarray, axis: int, window: tuple[float, float]) -> np.ndarray:
    """Per slice across ``axis``: the share of voxels brighter than :data:`CONTENT_LEVEL` of ``window``."""
    lo, hi = window
    if hi <= lo:
        return np.zeros(data.shape[axis])
    bright = np.nan_to_num(data, nan=lo) > lo + CONTENT_LEVEL * (hi - lo)
    other = tuple(a for a in range(data.ndim) if a != axis)
    return bright.mean(axis=other)


def select_slices(n: int, slices: str, fractions: Sequence[float] | np.ndarray | None = None) -> list[int]:
    """The indices of the kept slices among ``n``, for a ``slices`` setting ("content", "all", "middle:K").

    ``fractions`` (from :func:`content_fractions`) are needed for "content" only.

    Examples
    --------
    >>> select_slices(10, "middle:4")
    [3, 4, 5, 6]
    >>> select_slices(5, "content", [0.0, 0.2, 0.5, 0.01, 0.3])
    [1, 2, 4]
    """
    kind, k = parse_slices(slices)
    if kind == "all":
        return list(range(n))
    if kind == "middle":
        k = min(int(k or n), n)
        start = (n - k) // 2
        return list(range(start, start + k))
    if fractions is None:
        raise ValueError("select_slices: 'content' needs the slices' content fractions")
    return [i for i in range(n) if float(fractions[i]) >= CONTENT_FRACTION]


def patient_from_path(path: str, root: str | None = None) -> str | None:
    """A BIDS-style subject id (``sub-<id>``) in the file name or a folder name below ``root``, else None.

    Examples
    --------
    >>> patient_from_path("/d/lesion/sub-07_ses-2_T1w.nii.gz", "/d")
    'sub-07'
    >>> patient_from_path("/d/healthy/scan3.nii.gz", "/d") is None
    True
    """
    rel = os.path.relpath(path, root) if root else path
    found = _BIDS_SUBJECT.findall(rel.replace(os.sep, "/"))
    return f"sub-{found[-1]}" if found else None


# ---------------------------------------------------------------- NIfTI


@dataclass(frozen=True)
class VolumeEntry:
    """A volume file's place in a dataset, which each of its slice records carries.

    ``label``: its class; ``group``: its patient or group when the dataset says (else the BIDS subject
    found in its path below ``root``, else the study itself); ``preset``: its preset split;
    ``size_bytes``: the file's size.
    """

    label: int
    group: str | None = None
    preset: str | None = None
    root: str | None = None
    size_bytes: int = 0


def nifti_slice_records(path: str, entry: VolumeEntry, slicing: VolumeSlicing, *,
                        max_pixels: int) -> tuple[list[ImageRecord], int]:
    """One NIfTI file → its kept slice records, and how many slices were left out.

    Raises
    ------
    ImageReadError
        The file is not a volume, is damaged, a slice is larger than ``max_pixels``, or (reason
        "empty") no slice has content.
    """
    from cnn_studio.data.medical import load_nifti, load_volume, volume_shape

    p = Path(path)
    axis = int(slicing.axis)
    kind, _ = parse_slices(slicing.slices)
    if kind == "content":
        volume = load_volume(p)
        shape = volume.data.shape
        fractions = content_fractions(volume.data, axis, volume.window)
    else:
        shape = volume_shape(p)
        fractions = None
    mode = f"NIfTI {load_nifti(p).get_data_dtype()}"
    if axis >= len(shape):
        raise read_error(p, "not_an_image", f"the volume has {len(shape)} axes; there is no slice axis {axis}")
    in_plane = [n for a, n in enumerate(shape) if a != axis]
    width, height = int(in_plane[0]), int(in_plane[1])  # the plane is rotated 90 degrees for display
    check_size(p, width, height, max_pixels)
    kept = select_slices(int(shape[axis]), slicing.slices, fractions)
    if not kept:
        raise read_error(p, "empty", f"no slice along axis {axis} has content (at least {CONTENT_FRACTION:.0%} of "
                                     "its voxels brighter than the dark tenth of the volume's window); "
                                     "scan with slices 'all' to use every slice")
    study = path
    patient = entry.group or patient_from_path(path, entry.root)
    records = [ImageRecord(path=path, label=entry.label, group=patient or study, preset_split=entry.preset,
                           width=width, height=height, mode=mode, fmt="NIfTI", size_bytes=entry.size_bytes, frames=1,
                           study=study, slice_index=i, slice_axis=axis) for i in kept]
    return records, int(shape[axis]) - len(kept)


# ---------------------------------------------------------------- DICOM series


def dicom_series(records: list[ImageRecord], infos: dict[str, Any], slicing: VolumeSlicing,
                 check_cancel: Callable[[], None] = lambda: None
                 ) -> tuple[list[ImageRecord], list[SkippedFile], int]:
    """Turn the DICOM files of each series into the slices of one study.

    Parameters
    ----------
    records
        All records of the scan; those whose path is in ``infos`` are DICOM files.
    infos
        ``{path: cnn_studio.data.medical.DicomSlice}`` for the DICOM files.
    slicing
        Which slices to keep (the axis does not apply: a series is cut as it was acquired).

    Returns
    -------
    (records, skipped, left_out)
        The records with every series' kept files marked (``study``, ``group``) and its other files
        removed; series whose files could not be read for content detection are skipped; how many
        slices the selection left out.
    """
    members: dict[tuple[Any, ...], list[ImageRecord]] = defaultdict(list)
    for r in records:
        info = infos.get(r.path)
        if info is not None and info.series and info.frames == 1:
            members[(r.label, r.preset_split, os.path.dirname(r.path), info.series)].append(r)
    series = {k: v for k, v in members.items() if len(v) >= 2}
    if not series:
        return records, [], 0
    per_folder: dict[str, int] = defaultdict(int)
    for _label, _preset, folder, _uid in series:
        per_folder[folder] += 1
    replaced: dict[str, ImageRecord | None] = {}
    skipped: list[SkippedFile] = []
    left_out = 0
    for (_label, _preset, folder, uid), recs in series.items():
        check_cancel()
        study = folder if per_folder[folder] == 1 else f"{folder}#series={uid}"
        ordered = _slice_order(recs, infos)
        try:
            fractions = _series_content(ordered) if parse_slices(slicing.slices)[0] == "content" else None
        except Exception as exc:  # noqa: BLE001 - an ImageReadError of one file: the series is skipped
            for r in ordered:
                replaced[r.path] = None
            skipped.append(SkippedFile(study, getattr(exc, "reason", "unreadable"),
                                       f"a file of this DICOM series could not be read: {exc}"))
            continue
        kept = set(select_slices(len(ordered), slicing.slices, fractions))
        left_out += len(ordered) - len(kept)
        for i, r in enumerate(ordered):
            replaced[r.path] = replace(r, study=study, group=r.group or study) if i in kept else None
    out = [replaced.get(r.path, r) if r.path in replaced else r for r in records]
    return [r for r in out if r is not None], skipped, left_out


def _slice_order(recs: list[ImageRecord], infos: dict[str, Any]) -> list[ImageRecord]:
    if all(infos[r.path].position is not None for r in recs):
        return sorted(recs, key=lambda r: (infos[r.path].position, r.path))
    if all(infos[r.path].instance is not None for r in recs):
        return sorted(recs, key=lambda r: (infos[r.path].instance, r.path))
    return sorted(recs, key=lambda r: r.path)


def _series_content(ordered: list[ImageRecord]) -> np.ndarray:
    from cnn_studio.data.medical import dicom_values, volume_window

    planes = [dicom_values(Path(r.path)) for r in ordered]
    window = volume_window(np.concatenate([p.ravel() for p in planes]))
    return np.array([float(content_fractions(p[None], 0, window)[0]) for p in planes])


# ---------------------------------------------------------------- summary


@dataclass(frozen=True)
class StudyCounts:
    """Studies, their slices and (when known) patients of a scanned dataset."""

    studies: int
    slices: int
    patients: int  # 0 when no study has a known patient id

    def describe(self) -> str:
        """``"36 studies, 1,152 slices, 12 patients"`` (the patients only when known; "" without studies)."""
        if not self.studies:
            return ""
        text = f"{self.studies:,} stud{'y' if self.studies == 1 else 'ies'}, {self.slices:,} slice{'s' * (self.slices != 1)}"
        if self.patients:
            text += f", {self.patients:,} patient{'s' * (self.patients != 1)}"
        return text


def study_counts(index: DatasetIndex | Sequence[ImageRecord]) -> StudyCounts:
    """Count the studies, slices and patients (records whose ``group`` is not the study itself) of an index."""
    records = index.records if isinstance(index, DatasetIndex) else index
    slices = [r for r in records if r.study]
    studies = {r.study for r in slices}
    patients = {r.group for r in slices if r.group and r.group != r.study}
    return StudyCounts(len(studies), len(slices), len(patients))
