"""Every file of a run folder has one validated reader here (and labels.txt, skipped.csv their writers).

:func:`read_config`, :func:`read_split`, :func:`read_state`, :func:`read_labels`, :func:`read_history` and
the optional JSON files (:func:`read_metrics`, :func:`read_robustness`, :func:`read_optional_json`) are
checked by :mod:`~cnn_studio.runs.checks` (required keys and types, never defaults): damage becomes a
:class:`~cnn_studio.core.errors.RunError` that names the file and says what still works. Opening a run
and loading its model is :mod:`cnn_studio.runs.run_folder`, which re-exports these names.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

from cnn_studio.core.csv_text import csv_text
from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import write_text
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.records import Split
from cnn_studio.runs.checks import WHAT_STILL_WORKS, check_config, check_state, damaged
from cnn_studio.training.config import TrainConfig


def read_json_file(path: Path, key: str, expect: type = dict) -> Any:
    """A run folder's JSON file, or a RunError naming it (missing, unreadable, not UTF-8, not JSON, wrong type)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise RunError(f"{path} is missing.", WHAT_STILL_WORKS[key]) from exc
    except OSError as exc:
        raise damaged(path, f"it cannot be read ({exc.strerror or exc})", key) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise damaged(path, "it is not UTF-8 text", key) from exc
    except ValueError as exc:
        why = "it is empty" if not raw.strip() else f"it is not valid JSON ({exc})"
        raise damaged(path, why, key) from exc
    if not isinstance(data, expect):
        raise damaged(path, f"expected a JSON {'object' if expect is dict else expect.__name__}, "
                             f"found {type(data).__name__}", key)
    return data


def read_config(layout: RunLayout) -> TrainConfig:
    """config.json as a validated :class:`TrainConfig` (:func:`~cnn_studio.runs.checks.check_config`).

    Raises RunError naming the file when it is missing, lacks the run's settings (never filled in
    with defaults), or holds a value of the wrong type or out of range.
    """
    data = read_json_file(layout.config, "config")
    try:
        return check_config(layout.config, data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise damaged(layout.config, f"its settings do not make sense ({exc})", "config") from exc


def read_split(layout: RunLayout) -> Split | None:
    """split.json as a :class:`Split`, None when there is none. Raises RunError naming the file when damaged."""
    if not layout.split.exists():
        return None
    data = read_json_file(layout.split, "split")
    try:
        split = Split.from_dict(data)
        for part in (split.train, split.val, split.test):
            for r in part:
                if not isinstance(r.path, str) or not 0 <= int(r.label) < len(split.class_names):
                    raise ValueError(f"record {r.path!r} has label {r.label!r}")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise damaged(layout.split, f"its file lists do not make sense ({exc})", "split") from exc
    return split


def read_state(layout: RunLayout, *, required: bool = False) -> dict[str, Any]:
    """state.json, checked (:func:`~cnn_studio.runs.checks.check_state`: a status, the epochs done).

    When there is none: ``{}`` for a writer that is about to write it, RunError with ``required``
    (what reads a finished or stopped run: resume, the runs list). Raises RunError naming the file
    when it is damaged.
    """
    if not layout.state.exists():
        if required:
            raise RunError(f"{layout.state} is missing: the run's status and the epochs it trained are unknown.",
                           WHAT_STILL_WORKS["state"])
        return {}
    return check_state(layout.state, read_json_file(layout.state, "state"))


def read_history(path: str | Path) -> list[dict[str, float]]:
    """A history.csv as numbers, one dict per finished epoch.

    Empty if there is none, or when it is unreadable as a whole (the curves are lost, nothing else);
    an unreadable row is left out.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    out = []
    for row in rows:
        try:
            out.append({k: float(v) for k, v in row.items() if k and v not in ("", None)})
        except (ValueError, TypeError):
            continue
    return out


def read_optional_json(layout: RunLayout, key: str) -> dict[str, Any] | None:
    """metrics.json, robustness.json or reproducibility.json (``key``): None when missing.

    Raises RunError naming the file, and saying the model is unaffected, when it is damaged.
    """
    path = getattr(layout, key)
    if not path.exists():
        return None
    return read_json_file(path, key)


def read_metrics(layout: RunLayout) -> dict[str, Any] | None:
    """metrics.json (None when the run was never evaluated). Raises RunError naming it when damaged."""
    return read_optional_json(layout, "metrics")


def read_robustness(layout: RunLayout) -> dict[str, Any] | None:
    """robustness.json (None when there is none). Raises RunError naming it when damaged."""
    return read_optional_json(layout, "robustness")


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Class names, one per line, in model output order.

    Non-UTF-8 bytes (a class folder whose name is not UTF-8) come back as they were written. Raises
    RunError naming the file when it cannot be class names (binary data, control characters).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise RunError(f"{path} cannot be read ({exc.strerror or exc}).", WHAT_STILL_WORKS["labels"]) from exc
    names = tuple(line.rstrip("\r") for line in text.split("\n") if line.strip())
    bad = next((n for n in names if any(ord(c) < 32 and c != "\t" for c in n)), None)
    if bad is not None:
        raise damaged(path, "it holds binary data, not class names", "labels")
    return names


def write_labels(path: str | Path, class_names: tuple[str, ...]) -> Path:
    """Write labels.txt (the file :func:`read_labels` reads)."""
    return write_text(path, "\n".join(class_names) + "\n")


def write_skipped(layout: RunLayout, skipped: dict[str, str]) -> Path | None:
    """Write skipped.csv (``path,reason``) for the files training dropped; None (and no file) when there were none."""
    if not skipped:
        with contextlib.suppress(FileNotFoundError):
            layout.skipped.unlink()
        return None
    return write_text(layout.skipped, csv_text([["path", "reason"], *sorted(skipped.items())]))


def read_skipped(layout: RunLayout) -> list[tuple[str, str]]:
    """skipped.csv as ``(path, reason)`` pairs (empty when there is none or it is unreadable)."""
    try:
        text = layout.skipped.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return []
    rows = list(csv.reader(io.StringIO(text)))
    return [(r[0], r[1]) for r in rows[1:] if len(r) >= 2]
