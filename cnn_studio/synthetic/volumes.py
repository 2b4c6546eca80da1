"""MRI-like studies, generated: NIfTI volumes (and optionally DICOM series) where a lesion shows in some slices only.

Every study is a ``size`` × ``size`` × ``slices`` volume: a dark background with a little noise
(so at least the first and last two slices, without tissue, are left out by the "content" slice selection),
and an ellipsoid of noisy grey "tissue" of random size and brightness inside a bright rim (like the
skull of a T1 scan; it sets the volume's window, so the grey tissue shows grey). A study of the ``lesion`` class
(the last class) also holds one small bright blob spanning about five slices at a random place
inside the tissue; every other slice of that study is drawn exactly like a slice of a healthy
study. So a single slice without the blob cannot tell the classes apart: only the study can,
which is what study-level aggregation (:mod:`cnn_studio.evaluation.studies`) is for. The blob is small
and no brighter than the rim, so it does not move the volume's window.

Studies are spread over ``patients`` (study ``i`` belongs to patient ``i % patients``), so a
patient usually has studies of both classes, as follow-up scans do. NIfTI files are named
BIDS-style (``<class>/sub-03_ses-2.nii.gz``), which the scan reads as the patient; DICOM series
(``dicom=True``) are folders ``<class>/P03_study2/IM0001.dcm ...`` with PatientID "P03",
one SeriesInstanceUID per series, ImagePositionPatient and the volume's window in every file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import nibabel
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

LESION_CLASS = "lesion"


@dataclass(frozen=True)
class GeneratedStudy:
    """One generated study: where it is, its class, its patient, the slices (axis 2) that show the lesion."""

    path: str
    label: str
    patient: str
    lesion_slices: tuple[int, ...] = ()


@dataclass(frozen=True)
class VolumeDataset:
    """What :func:`make_volume_dataset` wrote."""

    root: Path
    studies: tuple[GeneratedStudy, ...] = field(default_factory=tuple)

    @property
    def patients(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.patient for s in self.studies))


def _volume(rng: np.random.Generator, size: int, slices: int, lesion: bool) -> tuple[np.ndarray, tuple[int, ...]]:
    x, y, z = np.meshgrid(np.arange(size), np.arange(size), np.arange(slices), indexing="ij")
    cx, cy = size / 2 + rng.uniform(-1.0, 1.0, 2)
    rx, ry = size * rng.uniform(0.34, 0.38, 2)
    cz, rz = (slices - 1) / 2, (slices - 6) / 2
    d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2
    tissue, rim = d <= 1.0, (d > 1.0) & (d <= 1.25)  # a bright rim ("skull") round grey tissue
    level = rng.uniform(97, 103)
    vol = np.abs(rng.normal(0, 3, (size, size, slices)))
    vol[tissue] = rng.normal(level, 6, int(tissue.sum()))
    vol[rim] = rng.normal(2 * level, 8, int(rim.sum()))
    shown: tuple[int, ...] = ()
    if lesion:
        inside = np.argwhere(tissue & (np.abs(z - cz) <= max(0.2 * rz, 0.5)) & (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 0.35))
        bx, by, bz = inside[rng.integers(len(inside))]
        r, rzb = size / 6, 0.6 * rz  # about 5 pixels across a 32-pixel slice, over about half the tissue slices
        blob = tissue & (((x - bx) / r) ** 2 + ((y - by) / r) ** 2 + ((z - bz) / rzb) ** 2 <= 1.0)
        vol[blob] = rng.normal(1.5 * level, 6, int(blob.sum()))  # brighter than tissue, darker than the rim
        shown = tuple(int(i) for i in np.flatnonzero(blob.any(axis=(0, 1))))
    return np.clip(np.round(vol), 0, 32767).astype(np.int16), shown


@dataclass(frozen=True)
class StudyFormat:
    """How each generated study is written: ``slices`` per study (axis 2, at least 8), in-plane ``size``
    (at least 16), and ``dicom``: a DICOM series folder (one ``.dcm`` file per slice) instead of a ``.nii.gz`` file."""

    slices: int = 24
    size: int = 32
    dicom: bool = False


def make_volume_dataset(dest: str | os.PathLike[str], *, classes: tuple[str, ...] = ("healthy", LESION_CLASS),
                        studies_per_class: int = 6, patients: int = 4, seed: int = 0,
                        form: StudyFormat = StudyFormat()) -> VolumeDataset:
    """Write a folder of studies, one sub-folder per class (see the module docstring).

    Parameters
    ----------
    dest
        The dataset folder (created; existing files of the same names are overwritten).
    classes
        Class folder names; the last one holds the lesion, the others are healthy-looking.
    studies_per_class, patients
        Studies per class, and the patients they are spread over.
    seed
        Same seed, same bytes.
    form
        Slices per study, in-plane size, DICOM series or NIfTI files (:class:`StudyFormat`: 24, 32, NIfTI).

    Returns
    -------
    VolumeDataset
        The root and every study with its class, patient and lesion slices.

    Examples
    --------
    >>> ds = make_volume_dataset("/tmp/mri", studies_per_class=4, patients=3)  # doctest: +SKIP
    >>> len(ds.studies), len(ds.patients)  # doctest: +SKIP
    (8, 3)
    """
    if form.slices < 8 or form.size < 16:
        raise ValueError(f"make_volume_dataset: expected slices >= 8 and size >= 16, received {form.slices} and "
                         f"{form.size}")
    root = Path(dest)
    rng = np.random.default_rng(seed)
    studies: list[GeneratedStudy] = []
    n = 0
    for ci, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for _ in range(studies_per_class):
            patient_no = n % max(1, patients) + 1
            session = n // max(1, patients) + 1
            n += 1
            vol, shown = _volume(rng, form.size, form.slices, lesion=ci == len(classes) - 1)
            if form.dicom:
                folder = root / name / f"P{patient_no:02d}_study{session}"
                _write_series(folder, vol, patient=f"P{patient_no:02d}", seed=seed, study_no=n)
                studies.append(GeneratedStudy(str(folder), name, f"P{patient_no:02d}", shown))
            else:
                path = root / name / f"sub-{patient_no:02d}_ses-{session}.nii.gz"
                _write_nifti(path, vol)
                studies.append(GeneratedStudy(str(path), name, f"sub-{patient_no:02d}", shown))
    return VolumeDataset(root, tuple(studies))


def _write_nifti(path: Path, vol: np.ndarray) -> None:
    img = nibabel.Nifti1Image(vol, np.eye(4))
    img.header.set_xyzt_units("mm")
    nibabel.save(img, str(path))


def _write_series(folder: Path, vol: np.ndarray, *, patient: str, seed: int, study_no: int) -> None:
    """One DICOM MR file per slice (axis 2), 16-bit unsigned, the volume's window in every file."""
    from cnn_studio.data.medical import volume_window

    folder.mkdir(parents=True, exist_ok=True)
    lo, hi = volume_window(vol.astype(np.float32))
    study_uid = generate_uid(entropy_srcs=[f"study-{seed}-{study_no}"])
    series_uid = generate_uid(entropy_srcs=[f"series-{seed}-{study_no}"])
    for z in range(vol.shape[2]):
        plane = np.ascontiguousarray(np.rot90(vol[:, :, z])).astype(np.uint16)
        sop_uid = generate_uid(entropy_srcs=[f"sop-{seed}-{study_no}-{z}"])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid
        ds.Modality = "MR"
        ds.PatientID, ds.PatientName = patient, patient
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SeriesNumber, ds.InstanceNumber = 1, z + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 1.0
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.WindowCenter, ds.WindowWidth = round((lo + hi) / 2, 2), round(max(hi - lo, 1.0), 2)
        ds.PixelData = plane.tobytes()
        ds.save_as(folder / f"IM{z + 1:04d}.dcm", enforce_file_format=True)
