"""Label corrections: the review's decisions (relabel / exclude / keep), kept beside the data, never in it.

A decision names an image by its path and says what the review made of its label: a new class,
``excluded`` (leave the image out of training and evaluation) or ``kept`` (the given label is
right; the finder stops suggesting it). The user's files are never moved, renamed or deleted: the
decisions live in a ``corrections.csv`` (columns ``path, original_label, new_label, when``) and are
applied to the scanned :class:`~cnn_studio.data.records.DatasetIndex` by
:func:`cnn_studio.data.prepare.prepare` — the one preparation the Data step, ``cnn-studio scan``,
``cnn-studio train`` and ``cnn-studio label-issues`` share — so everything downstream (the split,
training, evaluation, the run folder's split.json) sees the corrected labels.

Where the file lives: ``--corrections FILE`` on the command line, or by default one file per
dataset under the app data folder (:func:`default_path`), which the GUI's review queue writes.

No Qt and no TensorFlow here.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cnn_studio.core.csv_text import csv_text
from cnn_studio.core.errors import DatasetError
from cnn_studio.core.paths import app_data_dir
from cnn_studio.labels.latest_per_image import LatestPerImage

EXCLUDED = "excluded"
"""``new_label`` of an image left out of training and evaluation."""
KEPT = "kept"
"""``new_label`` of an image whose given label the review confirmed."""
CSV_COLUMNS = ("path", "original_label", "new_label", "when")
AUTO = "auto"
"""``PrepareOptions(corrections=AUTO)``: the dataset's default corrections file, when there is one."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def norm_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """The key an image is matched by: absolute (relative paths are taken from ``root``), normalised."""
    p = os.path.expanduser(os.fspath(path))
    if not os.path.isabs(p) and root is not None:
        p = os.path.join(os.fspath(root), p)
    return os.path.normcase(os.path.normpath(os.path.abspath(p)))


@dataclass(frozen=True)
class Decision:
    """One image's decision: ``new`` is a class name, :data:`EXCLUDED` or :data:`KEPT`."""

    path: str
    original: str
    new: str
    when: str = field(default_factory=_now)

    @property
    def action(self) -> str:
        """"relabel", "exclude" or "keep"."""
        if self.new == EXCLUDED:
            return "exclude"
        if self.new == KEPT or self.new == self.original:
            return "keep"
        return "relabel"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Applied:
    """What applying corrections to a dataset did (recorded in ``split.info["corrections"]``)."""

    file: str | None
    relabelled: int
    excluded: int
    kept: int
    unmatched: int
    decisions: tuple[Decision, ...] = ()

    @property
    def labels_changed(self) -> int:
        """Images whose label the review changed: relabelled plus excluded."""
        return self.relabelled + self.excluded

    def summary(self) -> str:
        """One line for a report, a model card or a run record."""
        where = f" ({self.file})" if self.file else ""
        text = (f"Label review: {self.relabelled} label(s) changed and {self.excluded} image(s) excluded"
                f"{where}; the image files were not touched.")
        if self.unmatched:
            text += (f" {self.unmatched} correction(s) name a file that is not in this dataset (or a class it "
                     "does not have); not applied.")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "relabelled": self.relabelled, "excluded": self.excluded, "kept": self.kept,
                "unmatched": self.unmatched, "labels_changed": self.labels_changed, "summary": self.summary(),
                "decisions": [d.to_dict() for d in self.decisions]}


class Corrections(LatestPerImage):
    """The decisions for one dataset, latest per image, with undo.

    Each :meth:`decide` (or :meth:`relabel`/:meth:`exclude`/:meth:`keep`) replaces the image's
    earlier decision; :meth:`undo` takes back the last one and restores what was there before.
    :meth:`save` writes the CSV atomically (temp + rename).

    Examples
    --------
    >>> c = Corrections()
    >>> c.relabel("/data/cat/1.png", "cat", "dog").new
    'dog'
    >>> c.undo().path, len(c)
    ('/data/cat/1.png', 0)
    """

    def __init__(self, decisions: list[Decision] | tuple[Decision, ...] = (), path: str | Path | None = None,
                 root: str | Path | None = None) -> None:
        super().__init__(path)
        self.root = str(root) if root is not None else None
        for d in decisions:
            self._by_path[norm_path(d.path, self.root)] = d

    WHAT = "These corrections"

    # ---------------------------------------------------------------- reading
    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and norm_path(path, self.root) in self._by_path

    def get(self, path: str | os.PathLike[str]) -> Decision | None:
        """The current decision for ``path``, or None."""
        return self._by_path.get(norm_path(path, self.root))

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """Current decisions, in the order they were made."""
        return tuple(sorted(self._by_path.values(), key=lambda d: d.when))

    def counts(self) -> dict[str, int]:
        """Current decisions by action: relabel, exclude, keep."""
        out = {"relabel": 0, "exclude": 0, "keep": 0}
        for d in self._by_path.values():
            out[d.action] += 1
        return out

    # ---------------------------------------------------------------- deciding
    def decide(self, path: str | os.PathLike[str], original: str, new: str) -> Decision:
        """Record ``new`` (a class, :data:`EXCLUDED` or :data:`KEPT`) for ``path``; returns the decision."""
        if not new:
            raise ValueError("A decision needs a new label, 'excluded' or 'kept'.")
        key = norm_path(path, self.root)
        previous = self._by_path.get(key)
        # the original label is the one the files gave, even when the image was decided on before
        return self._put(key, Decision(str(path), previous.original if previous else original, new, _now()))

    def relabel(self, path: str | os.PathLike[str], original: str, new_label: str) -> Decision:
        return self.decide(path, original, new_label)

    def exclude(self, path: str | os.PathLike[str], original: str) -> Decision:
        return self.decide(path, original, EXCLUDED)

    def keep(self, path: str | os.PathLike[str], original: str) -> Decision:
        return self.decide(path, original, KEPT)


    # ---------------------------------------------------------------- files
    def to_csv(self) -> str:
        return csv_text([CSV_COLUMNS, *((d.path, d.original, d.new, d.when) for d in self.decisions)])


    @classmethod
    def load(cls, path: str | Path, root: str | Path | None = None) -> Corrections:
        """Read a corrections.csv (relative image paths are taken from ``root``, else the file's folder).

        Raises :class:`DatasetError` when the file is missing or has no ``path`` and ``new_label`` columns.
        """
        p = Path(path).expanduser()
        try:
            text = p.read_bytes().decode("utf-8-sig")  # bytes: a quoted \r in a path stays a \r
            rows = list(csv.DictReader(io.StringIO(text)))
        except OSError as exc:
            raise DatasetError(f"The corrections file {p} cannot be read ({exc.strerror or exc}).",
                               "Check the path given with --corrections, or leave the option out.") from exc
        except UnicodeDecodeError as exc:
            raise DatasetError(f"The corrections file {p} is not UTF-8 text (byte {exc.start} cannot be read).",
                               "Save it as a UTF-8 CSV file (e.g. 'CSV UTF-8' in a spreadsheet), or give "
                               "--corrections none to go on without it.") from exc
        except csv.Error as exc:
            raise DatasetError(f"The corrections file {p} is not a valid CSV file: {exc}.",
                               "Save it as a CSV file with the columns path,original_label,new_label,when.") from exc
        if rows and not {"path", "new_label"} <= set(rows[0]):
            raise DatasetError(f"{p} is not a corrections file: expected the columns {', '.join(CSV_COLUMNS)}.",
                               "Give a corrections.csv written by CNN Studio's review queue.")
        decisions = [Decision(r["path"], r.get("original_label") or "", r["new_label"], r.get("when") or _now())
                     for r in rows if r.get("path") and r.get("new_label")]
        return cls(decisions, path=p, root=root if root is not None else p.parent)

    @classmethod
    def for_dataset(cls, root: str | Path) -> Corrections:
        """The dataset's default corrections (empty when there is no file yet); saving writes :func:`default_path`."""
        p = default_path(root)
        return cls.load(p, root=_root_folder(root)) if p.exists() else cls(path=p, root=_root_folder(root))


def _root_folder(root: str | Path) -> str:
    r = Path(root)
    return str(r.parent if r.suffix.lower() == ".csv" else r)


def corrections_dir() -> Path:
    """Where the review keeps every dataset's corrections: ``<app data>/corrections``."""
    return app_data_dir() / "corrections"


def default_path(dataset_root: str | Path) -> Path:
    """Where the review keeps a dataset's corrections: ``<app data>/corrections/<name>-<hash>.csv``.

    Outside the dataset, so a read-only or shared folder works and nothing is added to the user's data.
    """

    key = norm_path(dataset_root)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(key).stem or "dataset")[:40]
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
    return corrections_dir() / f"{name}-{digest}.csv"


def resolve(corrections: str | Path | Corrections | None, dataset_root: str | Path) -> Corrections | None:
    """``prepare``'s ``corrections`` argument → :class:`Corrections` or None.

    None or "none": no corrections. :data:`AUTO`: the dataset's default file when it exists. A path:
    that file (it must exist). A :class:`Corrections`: itself.
    """
    if corrections is None or (isinstance(corrections, str) and corrections.lower() == "none"):
        return None
    if isinstance(corrections, Corrections):
        return corrections
    if isinstance(corrections, str) and corrections == AUTO:
        p = default_path(dataset_root)
        return Corrections.load(p, root=_root_folder(dataset_root)) if p.exists() else None
    return Corrections.load(corrections, root=_root_folder(dataset_root))


def apply_corrections(index, corrections: Corrections):
    """``index`` with the decisions applied → ``(DatasetIndex, Applied)``.

    Relabelled images get the new class (a class the dataset does not have is left alone and
    counted as unmatched), excluded images are left out, kept ones are unchanged. Applying twice
    gives the same index (decisions are by path and absolute), so a corrected index can be split again.
    A slice of a volume is matched by its record key (``path#slice=AXIS:INDEX``, a decision made on
    that slice) first, then by its file's path (a decision on the whole volume applies to every slice).

    Only decisions that applied are counted: a decision naming a file that is not in the dataset
    (moved, renamed, another dataset's, or skipped as unreadable) is ``unmatched``, never "excluded";
    an exclusion whose image is absent only because this index was corrected already (the file is
    still in the dataset's folder) counts as excluded again.
    """
    classes = {name: i for i, name in enumerate(index.class_names)}
    records = []
    counted = {"relabel": 0, "exclude": 0, "keep": 0}
    unmatched = 0
    seen: set[str] = set()
    for r in index.records:
        d = corrections.get(r.key) if r.key != r.path else None
        d = d if d is not None else corrections.get(r.path)
        if d is None:
            records.append(r)
            continue
        seen.add(norm_path(d.path, corrections.root))
        if d.action == "exclude":  # counted per image: a decision on a volume leaves out each of its slices
            counted["exclude"] += 1
            continue
        if d.action == "relabel" and d.new not in classes:
            unmatched += 1
        elif d.action == "relabel":
            r = replace(r, label=classes[d.new])
            counted["relabel"] += 1
        else:
            counted["keep"] += 1
        records.append(r)
    for d in corrections.decisions:
        key = norm_path(d.path, corrections.root)
        if key in seen:
            continue
        if d.action == "exclude" and _excluded_before(index, key):
            counted["exclude"] += 1
        else:
            unmatched += 1
    applied = Applied(file=str(corrections.path) if corrections.path else None, relabelled=counted["relabel"],
                      excluded=counted["exclude"], kept=counted["keep"], unmatched=unmatched,
                      decisions=corrections.decisions)
    notes = tuple(n for n in index.notes if not n.startswith("Label review:"))
    if applied.labels_changed or unmatched:
        notes = (*notes, applied.summary())
    return replace(index, records=tuple(records), notes=notes), applied


def _excluded_before(index, key: str) -> bool:
    """True when ``key`` (a normalised path) is absent from ``index`` only because an earlier exclusion
    left it out: the image file is still there, inside the dataset's folder, and was not skipped."""
    path = key.split("#slice=", 1)[0]
    if not os.path.isfile(path) or any(norm_path(s.path) == key for s in index.skipped):
        return False
    folder = norm_path(_root_folder(index.root))
    return path.startswith(folder.rstrip(os.sep) + os.sep)
