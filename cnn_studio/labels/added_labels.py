"""Labels given in CNN Studio to images outside the dataset: the "which images to label next" queue's file.

The suggestion queue (:mod:`cnn_studio.labels.suggest`, the GUI's *Suggest images to label…*) shows
images from a folder of unlabelled pictures; each class a person gives one is kept in a small CSV
(columns ``path, label, when``) **beside the dataset's corrections file** in the app data folder
(:func:`default_path`), never in the user's folders: the image files are never moved, copied,
renamed or changed. :func:`cnn_studio.data.prepare.prepare` reads the file (:func:`apply_added_labels`)
and adds each labelled image to the dataset as a record of its class, so the Data step, the split
and the next training use it; the report says "N images labelled in CNN Studio".

No Qt and no TensorFlow here.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnn_studio.core.csv_text import csv_text
from cnn_studio.core.errors import DatasetError, ImageReadError
from cnn_studio.data.decode import probe
from cnn_studio.data.records import ImageRecord
from cnn_studio.labels.corrections import _now, _root_folder, norm_path
from cnn_studio.labels.corrections import default_path as corrections_path
from cnn_studio.labels.latest_per_image import LatestPerImage

CSV_COLUMNS = ("path", "label", "when")
AUTO = "auto"
"""``PrepareOptions(added_labels=AUTO)``: the dataset's own added-labels file, when there is one."""
NOTE_PREFIX = "Labelled in CNN Studio:"


def default_path(dataset_root: str | Path) -> Path:
    """``<app data>/corrections/<name>-<hash>.added-labels.csv``: beside the dataset's corrections file."""
    c = corrections_path(dataset_root)
    return c.with_name(f"{c.stem}.added-labels.csv")


@dataclass(frozen=True)
class AddedLabel:
    """One image given a class in the suggestion queue."""

    path: str
    label: str
    when: str = ""


@dataclass(frozen=True)
class AddedApplied:
    """What adding the labelled images to a dataset did (recorded in ``split.info["added_labels"]``)."""

    file: str | None
    added: int
    unmatched: int = 0  # a class the dataset does not have
    missing: int = 0  # the file is gone or unreadable
    already: int = 0  # the image is in the dataset's own folders already

    def summary(self) -> str:
        text = (f"{NOTE_PREFIX} {self.added} image(s) from outside the dataset folder were given a class in "
                f"CNN Studio ({self.file or 'labels file'}); the image files were not touched.")
        problems = []
        if self.unmatched:
            problems.append(f"{self.unmatched} name a class this dataset does not have")
        if self.missing:
            problems.append(f"{self.missing} name a file that is gone or cannot be read")
        if problems:
            text += " Not added: " + "; ".join(problems) + "."
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "added": self.added, "unmatched": self.unmatched, "missing": self.missing,
                "already_in_dataset": self.already, "summary": self.summary()}


class AddedLabels(LatestPerImage):
    """The labels given to pool images for one dataset, latest per image, with undo; saved atomically."""

    WHAT = "These labels"

    def __init__(self, labels: list[AddedLabel] | tuple[AddedLabel, ...] = (), path: str | Path | None = None) -> None:
        super().__init__(path)
        self._by_path.update({norm_path(a.path): a for a in labels})

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and norm_path(path) in self._by_path

    def get(self, path: str | os.PathLike[str]) -> AddedLabel | None:
        return self._by_path.get(norm_path(path))

    @property
    def labels(self) -> tuple[AddedLabel, ...]:
        """Current labels, in the order they were given."""
        return tuple(self._by_path.values())

    def label(self, path: str | os.PathLike[str], label: str) -> AddedLabel:
        """Give ``path`` the class ``label`` (replaces an earlier one); returns the entry."""
        if not label:
            raise ValueError("A label is needed.")
        entry = AddedLabel(os.path.abspath(os.fspath(path)), label, _now())
        return self._put(norm_path(path), entry, to_end=True)  # re-labelled: moves to the end (the order given)

    def to_csv(self) -> str:
        return csv_text([CSV_COLUMNS, *((a.path, a.label, a.when) for a in self.labels)])

    @classmethod
    def load(cls, path: str | Path) -> AddedLabels:
        """Read an added-labels CSV; a clear :class:`DatasetError` when it cannot be read."""
        p = Path(path).expanduser()
        try:
            rows = list(csv.DictReader(io.StringIO(p.read_bytes().decode("utf-8-sig"))))
        except OSError as exc:
            raise DatasetError(f"The labels file {p} cannot be read ({exc.strerror or exc}).",
                               "Check the path, or give --added-labels none to go on without it.") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"The labels file {p} is not a UTF-8 CSV file ({exc}).",
                               "Save it as a UTF-8 CSV with the columns path,label,when.") from exc
        if rows and not {"path", "label"} <= set(rows[0]):
            raise DatasetError(f"{p} is not a labels file: expected the columns {', '.join(CSV_COLUMNS)}.",
                               "Give a file written by CNN Studio's suggestion queue.")
        base = p.parent
        labels = [AddedLabel(str(Path(base, r["path"])) if not os.path.isabs(r["path"]) else r["path"],
                             r["label"], r.get("when") or "")
                  for r in rows if r.get("path") and r.get("label")]
        return cls(labels, path=p)

    @classmethod
    def for_dataset(cls, root: str | Path) -> AddedLabels:
        """The dataset's own labels file (empty when there is none yet); saving writes :func:`default_path`."""
        p = default_path(root)
        return cls.load(p) if p.exists() else cls(path=p)


def resolve(added: str | Path | AddedLabels | None, dataset_root: str | Path) -> AddedLabels | None:
    """``prepare``'s ``added_labels`` argument → :class:`AddedLabels` or None (None/"none": none;
    "auto": the dataset's own file when it exists; a path: that file)."""
    if added is None or (isinstance(added, str) and added.lower() == "none"):
        return None
    if isinstance(added, AddedLabels):
        return added
    if isinstance(added, str) and added == AUTO:
        p = default_path(dataset_root)
        return AddedLabels.load(p) if p.exists() else None
    return AddedLabels.load(added)


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _record_for(entry: AddedLabel, label: int, preset: str | None):
    """An :class:`ImageRecord` for a labelled pool image (its header read), or None when unreadable."""
    try:
        h = probe(entry.path)
        size = os.path.getsize(entry.path)
    except (ImageReadError, OSError):
        return None
    return ImageRecord(path=entry.path, label=label, group=h.group, preset_split=preset, width=h.width,
                       height=h.height, mode=h.mode, fmt=h.fmt, size_bytes=size, frames=h.frames, bands=h.bands,
                       dtype=h.dtype)


def apply_added_labels(index, added: AddedLabels):
    """``index`` with the labelled pool images added as records of their class → ``(DatasetIndex, AddedApplied)``.

    Idempotent: an image already in the index (by path) is not added again, so a prepared index can be
    prepared again. In a dataset with train/val/test folders the added images join the training part.
    """
    classes = {name: i for i, name in enumerate(index.class_names)}
    have = {norm_path(r.path) for r in index.records}
    folder = norm_path(_root_folder(index.root))
    preset = "train" if index.records and all(r.preset_split for r in index.records) else None
    relabel: dict[str, int] = {}  # an image added by an earlier prepare of this index: its latest class
    new, counts = [], {"added": 0, "unmatched": 0, "missing": 0, "already": 0}
    for entry in added.labels:
        key = norm_path(entry.path)
        if entry.label not in classes:
            counts["unmatched"] += 1
        elif key in have and _inside(key, folder):
            counts["already"] += 1
        elif key in have:
            relabel[key] = classes[entry.label]
            counts["added"] += 1
        elif (record := _record_for(entry, classes[entry.label], preset)) is None:
            counts["missing"] += 1
        else:
            new.append(record)
            have.add(key)
            counts["added"] += 1
    applied = AddedApplied(file=str(added.path) if added.path else None, **counts)
    notes = tuple(n for n in index.notes if not n.startswith(NOTE_PREFIX))
    if len(added):
        notes = (*notes, applied.summary())
    records = tuple(replace(r, label=relabel[k]) if (k := norm_path(r.path)) in relabel else r for r in index.records)
    return replace(index, records=(*records, *new), notes=notes), applied
