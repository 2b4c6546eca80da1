"""A CSV manifest as a dataset: ``path,label[,group][,split]`` rows → the files the scan visits.

Paths are relative to the manifest's folder; column names are matched case-insensitively among the
choices below. A file listed twice with the same label counts once (with a note); with different
labels it is left out (``MANIFEST_CONFLICT``) until one label is chosen. Used by
:func:`cnn_studio.data.index.scan`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_studio.core.errors import DatasetError
from cnn_studio.data.checks import MANIFEST_CONFLICT
from cnn_studio.data.records import SkippedFile

if TYPE_CHECKING:
    from cnn_studio.data.index import _Scanner

SPLIT_FOLDER_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
"""Top-level folder names (lower case) that mark the ``split_folders`` layout, and the values of a
manifest's split column → split name."""

PATH_COLUMNS = ("path", "file", "filename", "image")
LABEL_COLUMNS = ("label", "class")
GROUP_COLUMNS = ("group", "patient", "patient_id", "subject")
SPLIT_COLUMNS = ("split", "subset")


def _column(header: list[str], choices: tuple[str, ...]) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    return next((lowered[c] for c in choices if c in lowered), None)


def _read_manifest(manifest: Path) -> tuple[list[dict[str, str]], list[int]]:
    """The manifest's rows and the line each ends on; a row with more fields than the header is an error."""
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    try:
        with open(manifest, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)  # the line the row ends on (a quoted line break spans two)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"The manifest {manifest} could not be read: {exc}.",
                           "Save it as a UTF-8 CSV file with a header line path,label[,group].") from exc
    long_rows = [(n, len(reader.fieldnames or ()) + len(r[None])) for r, n in zip(rows, lines, strict=True)
                 if r.get(None)]  # type: ignore[call-overload]
    if long_rows:
        shown = ", ".join(f"line {n} ({k} fields)" for n, k in long_rows[:3])
        more = f" and {len(long_rows) - 3} more" if len(long_rows) > 3 else ""
        raise DatasetError(f"The manifest {manifest} has rows with more fields than its header "
                           f"({','.join(reader.fieldnames or ())}): {shown}{more}.",
                           "A path or label that contains a comma must be in double quotes "
                           '("a, b.png"); otherwise remove the extra fields (or name the column in the header).')
    return rows, lines


def scan_manifest(manifest: Path, scanner: _Scanner) -> tuple[list[str], list[str]]:
    """Visit every file a CSV manifest lists → (class names, notes); a file listed with two labels is skipped."""
    notes: list[str] = []
    rows, lines = _read_manifest(manifest)
    header = list(rows[0].keys()) if rows else []
    if not rows:
        raise DatasetError(f"The manifest {manifest} has no rows.",
                           "Add a header line path,label[,group] and one line per image.")
    path_col, label_col = _column(header, PATH_COLUMNS), _column(header, LABEL_COLUMNS)
    group_col = _column(header, GROUP_COLUMNS)
    split_col = _column(header, SPLIT_COLUMNS)
    if path_col is None or label_col is None:
        raise DatasetError(f"The manifest {manifest} has no 'path' and 'label' columns "
                           f"(its header is: {', '.join(h for h in header if h)}).",
                           "Make the first line of the CSV: path,label (optionally ,group).")
    base = manifest.parent
    entries: dict[str, list[tuple[int, str, dict[str, str]]]] = {}  # path → (line, label, row) per listing
    unlabeled = 0
    for row, line in zip(rows, lines, strict=True):
        rel, lab = (row.get(path_col) or "").strip(), (row.get(label_col) or "").strip()
        if not rel or not lab:
            unlabeled += 1
            continue
        entries.setdefault(os.path.normpath(os.path.join(base, rel)), []).append((line, lab, row))
    labels_of = {path: {lab for _, lab, _ in listed} for path, listed in entries.items()}
    names = sorted({lab for labs in labels_of.values() if len(labs) == 1 for lab in labs})
    label_of = {n: i for i, n in enumerate(names)}
    repeated = 0
    for path, listed in entries.items():
        if len(labels_of[path]) > 1:
            scanner.seen += 1
            scanner.skipped.append(SkippedFile(path, MANIFEST_CONFLICT, _conflict_detail(listed)))
            continue
        repeated += len(listed) - 1
        _, lab, row = listed[0]
        group = (row.get(group_col) or "").strip() or None if group_col else None
        if not os.path.isfile(path):
            scanner.seen += 1
            scanner.skipped.append(SkippedFile(path, "missing", "listed in the manifest but not found"))
            continue
        preset = SPLIT_FOLDER_NAMES.get((row.get(split_col) or "").strip().lower()) if split_col else None
        scanner.visit(path, label_of[lab], group=group, preset=preset)
    if unlabeled:
        notes.append(f"ignored {unlabeled} manifest row(s) with an empty path or label")
    if repeated:
        notes.append(f"{repeated} manifest row(s) list a file again with the same label; each file is counted once")
    return names, notes


def _conflict_detail(listed: list[tuple[int, str, dict[str, str]]]) -> str:
    where = ", ".join(f"{lab!r} on line {line}" for line, lab, _ in listed)
    return f"listed in the manifest with different labels ({where}); left out until one label is chosen"
