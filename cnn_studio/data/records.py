"""The plain records that flow from the scan to the pipeline: ImageRecord, SkippedFile, DatasetIndex, Split.

No TensorFlow, no Qt, no image decoding here: only data. Produced by ``data.index.scan`` and
``data.split.make_split``; consumed by ``data.checks``, ``data.report``, ``data.pipeline`` and the
trainer. Everything round-trips through JSON (``to_dict``/``from_dict``) so a project or a run
folder can store exactly what was used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SPLIT_NAMES = ("train", "val", "test")
# How records become pixels in ``data.pipeline`` (defined here, beside the records, so the settings,
# the CLI and the pages can list them without importing the pipeline's numpy/TensorFlow code):
RESIZE_POLICIES = ("stretch", "pad", "crop")  # scale to square; pad to square keeping the aspect; centre crop
CACHE_MODES = ("auto", "memory", "disk", "none")  # where decoded, resized images are kept between epochs
# "auto": memory when the decoded set fits comfortably, else disk, else none (cnn_studio.training.cache_choice)


@dataclass(frozen=True)
class ImageRecord:
    """One usable image: its path, class index, and what its header told us (no pixels)."""

    path: str
    label: int
    group: str | None = None  # patient / field / source id for group-aware splits
    preset_split: str | None = None  # "train"/"val"/"test" when the folder layout says so
    width: int = 0
    height: int = 0
    mode: str = ""  # e.g. "RGB", "L", "I;16", "F", "DICOM MONOCHROME2"
    fmt: str = ""  # e.g. "JPEG", "PNG", "TIFF", "DICOM"
    size_bytes: int = 0
    frames: int = 1
    # Multi-band arrays (GeoTIFF/TIFF with N samples, .npy H×W×N): read with their raw values.
    bands: int = 0  # 0: a picture, decoded to 8-bit RGB; N >= 1: an N-band array (cnn_studio.data.bands)
    dtype: str = ""  # the sample type of a multi-band array ("uint16", "float32" ...)
    # Volumes and studies (cnn_studio.data.volumes): a NIfTI volume or a DICOM series folder is one study.
    study: str | None = None  # the study this image is a slice of (the volume file or the series folder)
    slice_index: int | None = None  # the slice of a volume file along ``slice_axis`` (None: the whole file)
    slice_axis: int = 2

    @property
    def key(self) -> str:
        """What names this image uniquely: the path, or for a slice of a volume ``path#slice=AXIS:INDEX``."""
        return self.path if self.slice_index is None else slice_key(self.path, self.slice_axis, self.slice_index)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageRecord:
        return cls(**d)


SLICE_MARK = "#slice="


def slice_key(path: str, axis: int, index: int) -> str:
    """The key of slice ``index`` along ``axis`` of the volume file ``path``.

    Examples
    --------
    >>> slice_key("brain/s01.nii.gz", 2, 12)
    'brain/s01.nii.gz#slice=2:12'
    """
    return f"{path}{SLICE_MARK}{int(axis)}:{int(index)}"


def display_name(key: str) -> str:
    """A record key as a person reads it: the file name, and the slice of a volume.

    Examples
    --------
    >>> display_name("mri/lesion/sub-02.nii.gz#slice=2:13")
    'sub-02.nii.gz, slice 13'
    >>> display_name("leaf/a.png")
    'a.png'
    """
    path, _axis, index = parse_key(key)
    name = _file_name(path)
    return name if index is None else f"{name}, slice {index}"


def slice_name(key: str) -> str:
    """A key as named within its study: "slice 12" for a slice of a volume file, else the file's name
    (one DICOM file of a series).

    Examples
    --------
    >>> slice_name("mri/lesion/sub-02.nii.gz#slice=2:12"), slice_name("ct/s1/IM0003.dcm")
    ('slice 12', 'IM0003.dcm')
    """
    path, _axis, index = parse_key(key)
    return f"slice {index}" if index is not None else _file_name(path)


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def parse_key(key: str) -> tuple[str, int | None, int | None]:
    """``(path, axis, index)`` of a record key; axis and index are None for a whole file.

    Examples
    --------
    >>> parse_key("brain/s01.nii.gz#slice=2:12")
    ('brain/s01.nii.gz', 2, 12)
    >>> parse_key("leaf/a.png")
    ('leaf/a.png', None, None)
    """
    head, mark, tail = key.rpartition(SLICE_MARK)
    if mark:
        axis, _, index = tail.partition(":")
        if axis.isdigit() and index.isdigit():
            return head, int(axis), int(index)
    return key, None, None


@dataclass(frozen=True)
class SkippedFile:
    """A file that will not be used, with a reason a person can act on."""

    path: str
    reason: str  # short code: "unreadable", "truncated", "empty", "not_an_image", "too_large", "unsupported"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetIndex:
    """A scanned dataset: class names (sorted, = output order), usable images, skipped files, notes."""

    root: str
    layout: str  # "class_folders", "split_folders" or "csv"
    class_names: tuple[str, ...]
    records: tuple[ImageRecord, ...]
    skipped: tuple[SkippedFile, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "ignored 3 files at the top level (README.txt, ...)"
    band_names: tuple[str, ...] = ()  # names of a multi-band dataset's bands when its files carry them

    @property
    def bands(self) -> int:
        """The band count of a multi-band dataset (that of its first array), 0 for pictures."""
        return next((r.bands for r in self.records if r.bands), 0)

    @property
    def studies(self) -> tuple[str, ...]:
        """The studies (volumes, DICOM series) the images are slices of, in first-seen order (empty: none)."""
        return tuple(dict.fromkeys(r.study for r in self.records if r.study))

    def counts(self) -> dict[str, int]:
        """Images per class name, in class order."""
        n = [0] * len(self.class_names)
        for r in self.records:
            n[r.label] += 1
        return dict(zip(self.class_names, n, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "layout": self.layout,
            "class_names": list(self.class_names),
            "records": [r.to_dict() for r in self.records],
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": list(self.notes),
            "band_names": list(self.band_names),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetIndex:
        return cls(
            root=d["root"],
            layout=d["layout"],
            class_names=tuple(d["class_names"]),
            records=tuple(ImageRecord.from_dict(r) for r in d["records"]),
            skipped=tuple(SkippedFile(**s) for s in d.get("skipped", ())),
            notes=tuple(d.get("notes", ())),
            band_names=tuple(d.get("band_names", ())),
        )


@dataclass(frozen=True)
class Split:
    """Train/val/test record lists (test may be empty) and how they were made."""

    class_names: tuple[str, ...]
    train: tuple[ImageRecord, ...]
    val: tuple[ImageRecord, ...]
    test: tuple[ImageRecord, ...] = ()
    seed: int = 1337
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    group_by: str | None = None  # "group" when records' group ids kept groups within one split
    source: str = "random"  # "random" (stratified), "grouped", or "preset" (folder layout)
    info: dict[str, Any] = field(default_factory=dict)

    def subset(self, name: str) -> tuple[ImageRecord, ...]:
        if name not in SPLIT_NAMES:
            raise KeyError(f"Expected one of {SPLIT_NAMES}, received {name!r}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_names": list(self.class_names),
            "train": [r.to_dict() for r in self.train],
            "val": [r.to_dict() for r in self.val],
            "test": [r.to_dict() for r in self.test],
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "group_by": self.group_by,
            "source": self.source,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        recs = {k: tuple(ImageRecord.from_dict(r) for r in d.get(k, ())) for k in SPLIT_NAMES}
        return cls(
            class_names=tuple(d["class_names"]),
            seed=d.get("seed", 1337),
            val_fraction=d.get("val_fraction", 0.2),
            test_fraction=d.get("test_fraction", 0.0),
            group_by=d.get("group_by"),
            source=d.get("source", "random"),
            info=d.get("info", {}),
            **recs,
        )


@dataclass(frozen=True)
class VolumeSlicing:
    """How volumes (NIfTI files, DICOM series) become 2-D slices at scan time.

    ``axis``: the volume axis cut across (0, 1 or 2; 2 is axial for RAS-oriented NIfTI).
    ``slices``: "content" (every slice with content), "all", or "middle:K" (the K middle slices).
    """

    axis: int = 2
    slices: str = "content"


SLICE_AXES = (0, 1, 2)  # VolumeSlicing.axis: counted from 0, as numpy does
SLICE_KINDS = ("content", "all", "middle")  # VolumeSlicing.slices: "content", "all" or "middle:K"


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
    bands: int = 0  # N for a multi-band array read with raw values (see ImageRecord.bands)
    dtype: str = ""
    band_names: tuple[str, ...] = ()
