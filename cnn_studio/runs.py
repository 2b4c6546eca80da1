"""Every run on this computer: list, summarise and delete run folders (no TensorFlow, no Qt).

The Runs view of the app and ``cnn-studio runs`` both call :func:`list_runs`. A summary never
fails on a damaged run: what cannot be read is left empty and ``problem`` says why.

Status of a run, from its lock and state.json:

* ``running``  — a live process holds its lock (``run_folder.RunLock``);
* ``finished`` — all epochs trained;
* ``stopped``  — Stop / Ctrl+C: the best model so far is kept, ``resume`` continues;
* ``crashed``  — state.json says running but nobody holds the lock (the process was killed);
* ``failed``   — an error ended it (its message is in ``problem``);
* ``damaged``  — state.json cannot be read.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cnn_studio.errors import RunError
from cnn_studio.paths import RunLayout, runs_dir
from cnn_studio.training.run_folder import (
    describe_holder,
    lock_holder,
    read_config,
    read_history,
    read_state,
)

STATUSES = ("running", "finished", "stopped", "crashed", "failed", "damaged")
_STATE_TO_STATUS = {"completed": "finished", "cancelled": "stopped", "failed": "failed"}


@dataclass(frozen=True)
class RunSummary:
    """One line of the runs list."""

    path: str
    name: str
    status: str
    dataset: str = ""
    backbone: str = ""
    epochs_done: int = 0
    total_epochs: int = 0
    best_val_accuracy: float | None = None
    date: str = ""  # ISO 8601, when training started (else the folder's time)
    size_bytes: int = 0
    problem: str = ""  # why the run is not usable as it is, or who holds it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def has_model(self) -> bool:
        return any(m.exists() for m in RunLayout(Path(self.path)).models)


def folder_size(path: str | os.PathLike[str]) -> int:
    """Bytes of every file under ``path`` (links not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _dataset_of(layout: RunLayout) -> str:
    """The folder the run's images came from: the common folder of their class folders."""
    try:
        with open(layout.split, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
        paths = [r["path"] for part in ("train", "val", "test") for r in data.get(part, ())[:200]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return ""
    if not paths:
        return ""
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:
        return ""
    parents = {os.path.dirname(os.path.dirname(p)) for p in paths}
    return next(iter(parents)) if len(parents) == 1 else common


def run_status(layout: RunLayout, state: dict[str, Any] | None = None) -> tuple[str, str]:
    """``(status, problem)`` of one run folder (see the module docstring)."""
    holder = lock_holder(layout.root)
    if holder is not None:
        return "running", f"in use: {describe_holder(holder)}"
    if state is None:
        try:
            state = read_state(layout)
        except RunError as exc:
            return "damaged", exc.message
    raw = state.get("status", "")
    if raw == "running" or (not raw and not any(m.exists() for m in layout.models)):
        return "crashed", "the training process ended without finishing (killed or crashed); continue it with resume"
    status = _STATE_TO_STATUS.get(raw, "finished" if any(m.exists() for m in layout.models) else "crashed")
    return status, str(state.get("message", "")) if status == "failed" else ""


def summarize(run_dir: str | os.PathLike[str]) -> RunSummary:
    """The summary of one run folder; never raises for a damaged run (``problem`` says what is wrong)."""
    layout = RunLayout(Path(run_dir))
    problems = []
    backbone, total = "", 0
    try:
        config = read_config(layout)
        backbone, total = config.backbone, config.total_epochs
    except RunError as exc:
        problems.append(exc.message)
    try:
        state = read_state(layout)
    except RunError as exc:
        state = None
        problems.append(exc.message)
    status, why = run_status(layout, state)
    if why and why not in problems:
        problems.insert(0, why)
    state = state or {}
    history = read_history(layout.history)
    accs = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    started = str(state.get("started", ""))
    if not started:
        try:
            stamp = layout.config.stat().st_mtime
            started = _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).isoformat(timespec="seconds")
        except OSError:
            started = ""
    return RunSummary(path=str(layout.root), name=layout.root.name, status=status, dataset=_dataset_of(layout),
                      backbone=backbone, epochs_done=int(state.get("epochs_done", len(history)) or 0),
                      total_epochs=int(total or state.get("total_epochs", 0) or 0),
                      best_val_accuracy=max(accs) if accs else None, date=started,
                      size_bytes=folder_size(layout.root), problem="; ".join(problems))


def find_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """``folder`` itself when it is a run, else the run folders directly inside it (sorted by name)."""
    folder = Path(folder).expanduser()
    if RunLayout(folder).is_run():
        return [folder]
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [p for p in children if RunLayout(p).is_run()]


def list_runs(*folders: str | os.PathLike[str]) -> list[RunSummary]:
    """Summaries of every run in ``folders`` (default: the app's runs folder, ``paths.runs_dir()``), newest first.

    Each folder may be a run folder or a folder of runs; a run named twice is listed once.

    Examples
    --------
    >>> [r.status for r in list_runs("~/runs")]  # doctest: +SKIP
    ['running', 'finished', 'stopped']
    """
    seen: set[Path] = set()
    out = []
    for folder in folders or (runs_dir(),):
        for run in find_runs(folder):
            key = run.resolve()
            if key not in seen:
                seen.add(key)
                out.append(summarize(run))
    return sorted(out, key=lambda r: r.date, reverse=True)


def delete_run(run_dir: str | os.PathLike[str]) -> None:
    """Remove a run folder for good (the app moves it to the trash instead when it can).

    Raises RunError for a folder that is not a run, or one a live process is writing.
    """
    layout = RunLayout(Path(run_dir).expanduser())
    if not layout.is_run():
        raise RunError(f"{layout.root} is not a run folder; nothing was deleted.", "Give a run folder.")
    holder = lock_holder(layout.root)
    if holder is not None:
        raise RunError(f"{layout.root} is in use: {describe_holder(holder)}; nothing was deleted.",
                       "Stop that training first.")
    shutil.rmtree(layout.root)


def format_size(n: int) -> str:
    """``12.3 MB`` style."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
