"""A folder (or a CSV manifest) of labeled images → :class:`~cnn_studio.data.records.DatasetIndex`.

Three layouts are recognised:

``class_folders``
    ``root/<class>/**/<image>``: one sub-folder per class (the Keras/torchvision convention).
    Images nested deeper inside a class folder belong to that class.
``split_folders``
    ``root/train/<class>/...`` plus ``val/`` (or ``validation/``) and/or ``test/``: the user made
    the split; each record keeps it in ``preset_split`` and ``split.make_split`` honours it.
``csv``
    a ``.csv`` file with a header and the columns ``path,label`` and optionally ``group`` (patient,
    field, source: kept within one split) and ``split`` (train/val/test); paths are relative to the
    CSV's folder (absolute paths also work). Listed files that do not exist are skipped ("missing").
    Reading the manifest is :mod:`cnn_studio.data.manifest`.

Class names are sorted (case-sensitive, like Keras): that order is the model's output order.
Only headers are read (:func:`cnn_studio.data.decode.probe`); pixels are never decoded here, except
for volumes with the "content" slice selection (:mod:`cnn_studio.data.volumes`), whose voxels tell
which slices have content. A NIfTI file becomes one record per kept slice; the DICOM files of one
series (same folder, same SeriesInstanceUID, two or more) become the slices of one study.
Files that are not images (by suffix) are ignored with a note; images that cannot be read are
listed in ``DatasetIndex.skipped`` with a reason. Hidden files and folders (``.name``) are ignored.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import ConfigError, DatasetError, ImageReadError
from cnn_studio.data import formats
from cnn_studio.data.decode import DEFAULT_MAX_PIXELS, probe
from cnn_studio.data.manifest import SPLIT_FOLDER_NAMES, scan_manifest
from cnn_studio.data.read_errors import read_error
from cnn_studio.data.records import SLICE_AXES, DatasetIndex, ImageRecord, SkippedFile, VolumeSlicing
from cnn_studio.data.volumes import VolumeEntry, dicom_series, nifti_slice_records
from cnn_studio.training.config import parse_slices

_PROGRESS_EVERY_FILES = 100
_PROGRESS_EVERY_S = 0.1


class _Scanner:
    """The state of one scan: collected records, skipped files, ignored names, throttled progress."""

    def __init__(self, sink: ev.EventSink, cancel: CancelToken | None, max_pixels: int,
                 slicing: VolumeSlicing | None = None, root: str | None = None) -> None:
        self.sink = sink
        self.cancel = cancel
        self.max_pixels = max_pixels
        self.slicing = slicing or VolumeSlicing()
        self.root = root
        self.band_names: tuple[str, ...] = ()
        self.dicom: dict[str, Any] = {}  # path → medical.DicomSlice, for the series grouping
        self.slices_left_out = 0
        self.records: list[ImageRecord] = []
        self.skipped: list[SkippedFile] = []
        self.broken: dict[str, str] = {}  # folder entries that cannot be followed (symlink loops) → why
        self.ignored: list[str] = []
        self.seen = 0
        self._last_n = 0
        self._last_t = time.monotonic()

    def visit(self, path: str, label: int, *, preset: str | None = None, group: str | None = None) -> None:
        """Probe one file and file it under records, skipped or ignored (a volume: one record per kept slice)."""
        raise_if_cancelled(self.cancel)
        self.seen += 1
        reader = formats.reader_for(path)
        if reader is None and os.path.islink(path) and not os.path.exists(path):
            self.broken[path] = _link_problem(path)  # not "not an image": it cannot be read at all
        elif reader is None:
            self.ignored.append(path)
        else:
            try:
                if reader == formats.NIBABEL:
                    self._visit_volume(path, label, preset=preset, group=group)
                else:
                    self._visit_file(path, label, reader, preset=preset, group=group)
            except ImageReadError as exc:
                self.skipped.append(SkippedFile(path, exc.reason, exc.detail))  # type: ignore[attr-defined]
        self._progress(path)

    def _visit_file(self, path: str, label: int, reader: str, *, preset: str | None, group: str | None) -> None:
        info = probe(path, max_pixels=self.max_pixels)
        if info.band_names and not self.band_names:
            self.band_names = tuple(info.band_names)
        self.records.append(ImageRecord(
            path=path, label=label, group=group if group is not None else info.group,
            preset_split=preset, width=info.width, height=info.height, mode=info.mode,
            fmt=info.fmt, size_bytes=_size(path), frames=info.frames, bands=info.bands, dtype=info.dtype))
        if reader == formats.PYDICOM and info.frames == 1:
            from cnn_studio.data.medical import dicom_slice_info

            try:
                self.dicom[path] = dicom_slice_info(Path(path))
            except (ImageReadError, OSError):
                pass  # a file without series facts stays a picture of its own

    def _visit_volume(self, path: str, label: int, *, preset: str | None, group: str | None) -> None:
        probe(path, max_pixels=self.max_pixels)  # the header's errors, as for any file
        try:
            entry = VolumeEntry(label, group=group, preset=preset, root=self.root, size_bytes=_size(path))
            records, left_out = nifti_slice_records(path, entry, self.slicing, max_pixels=self.max_pixels)
        except OSError as exc:
            raise read_error(path, "unreadable", str(exc)) from exc
        self.records += records
        self.slices_left_out += left_out

    def group_series(self) -> None:
        """Make the DICOM files of each series the slices of one study (:func:`volumes.dicom_series`)."""
        if not self.dicom:
            return
        self.records, skipped, left_out = dicom_series(self.records, self.dicom, self.slicing,
                                                       lambda: raise_if_cancelled(self.cancel))
        self.skipped += skipped
        self.slices_left_out += left_out

    def _progress(self, current: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or self.seen - self._last_n >= _PROGRESS_EVERY_FILES or now - self._last_t >= _PROGRESS_EVERY_S:
            self._last_n, self._last_t = self.seen, now
            self.sink(ev.ScanProgress(self.seen, len(self.records), current))

    def finish(self) -> None:
        """Skip the entries that could not be followed (once each), and report the last progress."""
        listed = {s.path for s in self.skipped}
        self.skipped += [SkippedFile(p, "unreadable", why) for p, why in sorted(self.broken.items()) if p not in listed]
        self.seen += sum(1 for p in self.broken if p not in listed)
        self._progress("", force=True)


def _link_problem(path: str) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return "the link cannot be followed"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _entries(folder: Path, broken: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(sub-folder names, file names) in ``folder``, sorted, hidden ones left out.

    An entry that cannot be followed (a symlink loop, a link to nothing) is neither: it goes into
    ``broken`` as path → why, so the scan lists it as a skipped file and goes on.
    """
    dirs: list[str] = []
    files: list[str] = []
    with os.scandir(folder) as it:
        for e in it:
            if _hidden(e.name):
                continue
            try:
                if e.is_dir():
                    dirs.append(e.name)
                elif e.is_file():
                    files.append(e.name)
                elif e.is_symlink():
                    os.stat(e.path)  # raises: a link to nothing, or a loop
            except OSError as exc:
                if broken is not None:
                    broken[e.path] = exc.strerror or str(exc)
    return sorted(dirs), sorted(files)


def _subdirs(folder: Path, broken: dict[str, str] | None = None) -> list[str]:
    return _entries(folder, broken)[0]


def _top_files(folder: Path, broken: dict[str, str] | None = None) -> list[str]:
    return _entries(folder, broken)[1]


def _walk_files(folder: Path, cancel: CancelToken | None = None) -> Iterator[str]:
    """Every non-hidden file below ``folder``, depth-first, in sorted order (no symlinked folders)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        raise_if_cancelled(cancel)
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        for name in sorted(filenames):
            if not _hidden(name):
                yield os.path.join(dirpath, name)


def _examples(paths: Iterable[str], root: Path, n: int = 3) -> str:
    names = []
    for p in paths:
        try:
            names.append(os.path.relpath(p, root))
        except ValueError:
            names.append(p)
    more = f", ... ({len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def require_source(source: str | os.PathLike[str]) -> Path:
    """The dataset's absolute path; DatasetError when nothing is there (checked before any other work)."""
    root = Path(source).expanduser().absolute()
    if not root.exists():
        raise DatasetError(f"The dataset {root} does not exist.",
                           "Check the path, or choose the folder again (it may have been moved or renamed).")
    return root


def scan(source: str | os.PathLike[str], *, sink: ev.EventSink = ev.null_sink,
         cancel: CancelToken | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
         slicing: VolumeSlicing | None = None) -> DatasetIndex:
    """Index a dataset folder or CSV manifest, reading image headers only.

    Parameters
    ----------
    source
        A folder (``class_folders`` or ``split_folders`` layout) or a ``.csv`` manifest.
    sink
        Receives the events below.
    cancel
        Checked before every file; when set, :class:`~cnn_studio.core.cancel.Cancelled` is raised.
    max_pixels
        Images whose header announces more pixels are skipped (reason ``"too_large"``).
    slicing
        How volumes become slices (:mod:`cnn_studio.data.volumes`): a NIfTI file becomes one record
        per kept slice along ``slicing.axis``; the DICOM files of one series folder become the
        slices of one study. Default ``VolumeSlicing()``: axis 2, every slice with content.

    Returns
    -------
    DatasetIndex
        ``records`` in class order then path order; ``skipped`` with reasons; ``notes`` saying
        what was ignored.

    Raises
    ------
    DatasetError
        The source is missing or empty, has no class folders, or only one class.
    Cancelled
        ``cancel`` was set.

    Events emitted
    --------------
    ``ScanStarted`` once, ``ScanProgress`` at most every 100 files or 0.1 s (and once at the end),
    ``ScanFinished`` once.

    Examples
    --------
    >>> index = scan("~/data/leaves")  # doctest: +SKIP
    >>> index.class_names, index.counts()  # doctest: +SKIP
    (('healthy', 'rust'), {'healthy': 120, 'rust': 95})
    """
    root = require_source(source)
    sink(ev.ScanStarted(str(root)))
    slicing = _checked_slicing(slicing)
    scanner = _Scanner(sink, cancel, max_pixels, slicing, str(root if root.is_dir() else root.parent))
    class_names, layout, notes = _scan_source(root, scanner)
    scanner.group_series()
    scanner.finish()
    notes += _left_out_notes(scanner, root, slicing)
    index = DatasetIndex(root=str(root), layout=layout, class_names=tuple(class_names),
                         records=tuple(sorted(scanner.records, key=lambda r: (r.label, r.path, r.slice_index or 0))),
                         skipped=tuple(scanner.skipped), notes=tuple(notes), band_names=scanner.band_names)
    _require_two_classes(index, root)
    sink(ev.ScanFinished(len(index.records), len(index.class_names), len(index.skipped)))
    return index


def _scan_source(root: Path, scanner: _Scanner) -> tuple[list[str], str, list[str]]:
    """Scan a CSV manifest or a folder → (class names, layout, notes); a file that is no CSV is refused."""
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DatasetError(f"{root} is a file, not a dataset folder or a CSV manifest.",
                               "Choose the folder that holds one sub-folder per class, or a .csv file "
                               "with the columns path,label.")
        class_names, notes = scan_manifest(root, scanner)
        return class_names, "csv", notes
    return _scan_folder(root, scanner)


def _checked_slicing(slicing: VolumeSlicing | None) -> VolumeSlicing:
    """``slicing`` (default ``VolumeSlicing()``), or a ConfigError before any file is read."""
    slicing = slicing or VolumeSlicing()
    parse_slices(slicing.slices)
    if slicing.axis not in SLICE_AXES:
        raise ConfigError(f"Slice axis: expected 0, 1 or 2, received {slicing.axis!r}.",
                          "Axis 2 cuts a RAS-oriented NIfTI volume into axial slices.")
    return slicing


def _left_out_notes(scanner: _Scanner, root: Path, slicing: VolumeSlicing) -> list[str]:
    """The notes on what the scan left out: files that are not images, volume slices not kept."""
    notes = []
    if scanner.ignored:
        notes.append(f"ignored {len(scanner.ignored)} file(s) that are not images "
                     f"({_examples(scanner.ignored, root if root.is_dir() else root.parent)})")
    if scanner.slices_left_out:
        kind = parse_slices(slicing.slices)[0]
        why = "without content" if kind == "content" else f"outside the {slicing.slices} selection"
        notes.append(f"left out {scanner.slices_left_out:,} volume slice(s) {why} (slices: {slicing.slices}, "
                     f"axis {slicing.axis})")
    return notes


def _scan_folder(root: Path, scanner: _Scanner) -> tuple[list[str], str, list[str]]:
    notes: list[str] = []
    dirs, top_files = _entries(root, scanner.broken)
    if not dirs and not top_files and not scanner.broken:
        raise DatasetError(f"The folder {root} is empty.",
                           "Put one sub-folder per class in it (e.g. healthy/ and diseased/), each holding "
                           "that class's images.")
    if top_files:
        notes.append(f"ignored {len(top_files)} file(s) at the top level of the folder "
                     f"({_examples(top_files, Path('.'))}); only images inside class folders are used")
    splits = {d: SPLIT_FOLDER_NAMES[d.lower()] for d in dirs if d.lower() in SPLIT_FOLDER_NAMES}
    if dirs and len(splits) == len(dirs) and "train" in splits.values():
        names = sorted({c for d in dirs for c in _subdirs(root / d, scanner.broken)})
        if not names:
            raise DatasetError(f"The split folders in {root} ({', '.join(dirs)}) hold no class folders.",
                               "Inside train/ (and val/, test/) put one sub-folder per class.")
        label_of = {n: i for i, n in enumerate(names)}
        for d in dirs:
            for f in _top_files(root / d):
                scanner.ignored.append(str(root / d / f))
            for cls in _subdirs(root / d):
                for path in _walk_files(root / d / cls, scanner.cancel):
                    scanner.visit(path, label_of[cls], preset=splits[d])
        return names, "split_folders", notes

    names: list[str] = []
    files_of: dict[str, list[str]] = {}
    for d in dirs:
        files = list(_walk_files(root / d, scanner.cancel))
        if any(formats.reader_for(p) for p in files):
            names.append(d)
            files_of[d] = files
        else:
            notes.append(f"ignored folder {d!r}: it holds no image files")
    if not names:
        found = ("its images lie at the top level, not in class folders"
                 if any(formats.is_image_suffix(f) for f in top_files) else "it holds no images anywhere")
        raise DatasetError(f"No class folders with images were found in {root}: {found}.",
                           "Make one sub-folder per class inside this folder (e.g. cats/ and dogs/) and move "
                           "each image into its class's folder.")
    for label, cls in enumerate(names):
        for path in files_of.pop(cls):
            scanner.visit(path, label)
    return names, "class_folders", notes


def _require_two_classes(index: DatasetIndex, root: Path) -> None:
    counts = index.counts()
    usable = [c for c, n in counts.items() if n > 0]
    if not index.records:
        reasons = Counter(s.reason for s in index.skipped)
        why = f" ({', '.join(f'{n} {r}' for r, n in reasons.items())})" if reasons else ""
        raise DatasetError(f"No usable images were found in {root}{why}.",
                           f"Supported types: {formats.describe_formats()}. Check that the files open in an "
                           "image viewer.")
    if len(usable) < 2:
        only = usable[0] if usable else "?"
        raise DatasetError(f"Only one class ({only!r}) has images in {root}; a classifier needs at least two.",
                           "Add a second class folder next to it (e.g. the 'normal' or 'other' images), each "
                           "with its own images.")
