"""Every run on this computer: list, summarise and delete run folders (no TensorFlow, no Qt).

The Runs view of the app and ``cnn-studio runs`` both call :func:`list_runs`. A summary never
fails on a damaged run: what cannot be read is left empty and ``problem`` says why.

Status of a run, from its lock and state.json:

* ``running``  — a live process holds its lock (``run_folder.RunLock``);
* ``finished`` — all epochs trained;
* ``stopped``  — Stop / Ctrl+C: the best model so far is kept, ``resume`` continues;
* ``crashed``  — state.json says running but nobody holds the lock (the process was killed);
* ``failed``   — an error ended it (its message is in ``problem``);
* ``damaged``  — config.json or state.json is missing or cannot be read (checked: the run's settings,
  its status and epochs), or labels.txt disagrees with split.json; ``problem`` says which and what
  was recovered honestly (epochs done counted from history.csv). A folder that lost config.json is
  still found (:func:`looks_like_run`).

Comparing runs is :mod:`cnn_studio.runs.compare`; what training stores in reproducibility.json,
:mod:`cnn_studio.runs.reproducibility`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnn_studio.core.errors import RunError
from cnn_studio.core.paths import RunLayout, runs_dir
from cnn_studio.runs import run_folder
from cnn_studio.runs.checks import agreeing_class_names, check_history
from cnn_studio.runs.lock import describe_holder, lock_holder
from cnn_studio.runs.registry import remembered_runs
from cnn_studio.runs.reproducibility import (
    reproducibility_record as reproducibility_record,  # re-exported: the trainer imports it from here
)
from cnn_studio.runs.run_folder import (
    read_config,
    read_history,
    read_labels,
    read_optional_json,
    read_state,
)

NO_MODEL_YET = "Stopped before the first epoch ended, so no model was saved yet."  # app, CLI and log alike
STATUSES = ("running", "finished", "stopped", "crashed", "failed", "damaged")
_STATE_TO_STATUS = {"completed": "finished", "cancelled": "stopped", "failed": "failed", "extending": "stopped"}


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
    best_model_bytes: int = 0  # best.keras (no optimizer state)
    last_model_bytes: int = 0  # last.keras (with the optimizer state that resume needs)
    problem: str = ""  # why the run is not usable as it is, or who holds it
    # the model the run kept, checked: {"accuracy", "subset", "n_images", "verdict", "message"} (see kept_model_check)
    kept_model: dict[str, Any] = field(default_factory=dict)

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


def _split_json(layout: RunLayout) -> dict[str, Any]:
    """split.json as plain JSON, read once for the list (``{}`` when missing or unreadable)."""
    try:
        with open(layout.split, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _dataset_of(data: dict[str, Any]) -> str:
    """The folder the run's images came from (``data``: split.json): the common folder of their class folders."""
    try:
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
            state = read_state(layout, required=True)
        except RunError as exc:
            return "damaged", exc.message
    raw = state.get("status", "")
    if raw == "running" or (not raw and not any(m.exists() for m in layout.models)):
        return "crashed", "the training process ended without finishing (killed or crashed); continue it with resume"
    status = _STATE_TO_STATUS.get(raw, "finished" if any(m.exists() for m in layout.models) else "crashed")
    return status, str(state.get("message", "")) if status == "failed" else ""


def summarize(run_dir: str | os.PathLike[str]) -> RunSummary:
    """The summary of one run folder; never raises for a damaged run (``problem`` says what is wrong).

    A run whose config.json or state.json is missing or damaged is ``damaged`` (unless a live
    process holds it); what can be told honestly from its other files is kept and said: the epochs
    planned from state.json, the epochs done from history.csv's rows. Nothing is defaulted.
    """
    layout = RunLayout(Path(run_dir))
    problems = []
    backbone, total = "", 0
    try:
        config = read_config(layout)
        backbone, total = config.backbone, config.total_epochs
    except RunError as exc:
        config = None
        problems.append(exc.message)
    try:
        state = read_state(layout, required=True)
    except RunError as exc:
        state = None
        problems.append(exc.message)
    status, why = run_status(layout, state)
    if status == "running":
        problems = []  # its writer is making config.json and state.json right now
    elif config is None:
        status = "damaged"
    if why and why not in problems:
        problems.insert(0, why)
    history = read_history(layout.history)
    if state is None and history:
        problems.append(f"the {len(history)} epoch(s) done are counted from history.csv")
    split = _split_json(layout)
    if status != "running":
        disagree, notes = _cross_checks(layout, split, int((state or {}).get("epochs_done", len(history)) or 0))
        status = "damaged" if disagree else status
        problems += notes
    state = state or {}
    accs = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    started = str(state.get("started", ""))
    if not started:
        try:
            stamp = layout.config.stat().st_mtime
            started = _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).isoformat(timespec="seconds")
        except OSError:
            started = ""
    return RunSummary(path=str(layout.root), name=layout.root.name, status=status, dataset=_dataset_of(split),
                      backbone=backbone, epochs_done=int(state.get("epochs_done", len(history)) or 0),
                      total_epochs=int(total or state.get("total_epochs", 0) or 0),
                      best_val_accuracy=max(accs) if accs else None, date=started,
                      size_bytes=folder_size(layout.root), best_model_bytes=_file_size(layout.best_model),
                      last_model_bytes=_file_size(layout.last_model),
                      problem="; ".join(p.rstrip(".") for p in problems),
                      kept_model=kept_model_check(layout))


def _cross_checks(layout: RunLayout, split: dict[str, Any], epochs_done: int) -> tuple[bool, list[str]]:
    """``(the files disagree, what to say)``: labels.txt against split.json's classes (disagreeing: the
    run is damaged), history.csv against the epochs done (damaged or short: said, the model is fine)."""
    problems, disagree = [], False
    names = split.get("class_names")
    try:
        labels = read_labels(layout.labels) if layout.labels.exists() else ()
        agreeing_class_names(layout.labels, labels, layout.split,
                             tuple(map(str, names)) if isinstance(names, list) else None)
    except RunError as exc:
        problems.append(exc.message)
        disagree = True
    try:
        note = check_history(layout.history, epochs_done)
    except RunError as exc:
        note = exc.message
    return disagree, problems + ([note] if note else [])


def kept_model_check(layout: RunLayout) -> dict[str, Any]:
    """How the model the run kept (best.keras) scored: Evaluate's metrics.json, else the review at the end
    of training (review.json, on the validation images); ``{}`` when neither was written after that model.

    ``accuracy`` is the kept model's, which can differ from the best epoch's validation accuracy in
    history.csv (the model is kept by validation loss, and calibrated afterwards). ``verdict`` is
    "better", "unproven" or "not_better" (than guessing, :func:`cnn_studio.evaluation.intervals.compare_with_guessing`).
    """
    model_time = max((_mtime(m) for m in layout.models), default=0.0)
    for key in ("metrics", "review"):
        try:
            data = read_optional_json(layout, key) or {}
        except RunError:
            continue
        chance = data.get("chance") or {}
        accuracy = data.get("accuracy", chance.get("accuracy"))
        if not isinstance(accuracy, (int, float)) or _mtime(getattr(layout, key)) < model_time:
            continue  # none, or written before the model was last saved (a continued run)
        return {"accuracy": float(accuracy), "subset": str(data.get("subset") or "val"),
                "n_images": int(data.get("n_images") or chance.get("n") or 0),
                "verdict": str(chance.get("verdict", "")), "message": str(chance.get("message", ""))}
    return {}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def looks_like_run(folder: str | os.PathLike[str]) -> bool:
    """A run folder, also one whose config.json is lost (listed as damaged, never silently left out)."""
    return run_folder.looks_like_run(RunLayout(Path(folder)))


def find_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """``folder`` itself when it is a run, else the run folders directly inside it (sorted by name)."""
    folder = Path(folder).expanduser()
    if looks_like_run(folder):
        return [folder]
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [p for p in children if looks_like_run(p)]


def list_runs(*folders: str | os.PathLike[str], remembered: bool | None = None) -> list[RunSummary]:
    """Summaries of every run in ``folders`` (default: the app's runs folder, ``paths.runs_dir()``), newest first.

    Each folder may be a run folder or a folder of runs; a run named twice is listed once.
    ``remembered``: also the runs made elsewhere (``train --out``) that :mod:`cnn_studio.runs.registry`
    remembers; None (default) means when the app's runs folder is listed.

    Examples
    --------
    >>> [r.status for r in list_runs("~/runs")]  # doctest: +SKIP
    ['running', 'finished', 'stopped']
    """
    seen: set[Path] = set()
    out = []
    folders = folders or (runs_dir(),)
    if remembered is None:
        remembered = runs_dir().absolute() in {Path(f).expanduser().absolute() for f in folders}
    for folder in (*folders, *(remembered_runs() if remembered else ())):
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
    if not looks_like_run(layout.root):
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

