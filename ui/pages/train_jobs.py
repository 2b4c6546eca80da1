"""The Train step's jobs and run facts: the worker-thread entries that train in a child process, where a new
run goes, and what a run folder says about continuing it (no Qt widgets)."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

from cnn_studio.ui.session import StudioSession

from cnn_studio.core import events as ev
from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import RunLayout, app_data_dir, job_log
from cnn_studio.runs.run_folder import read_state, resume_point

MULTI_WORKER_JOB = "cnn_studio.training.multi_worker:train_with_local_workers"


def new_run_dir(session: StudioSession, now: _dt.datetime | None = None) -> Path:
    """A fresh run folder: next to the project file when saved, else under the app data folder."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}_{session.config.backbone}"
    if session.project_path is not None:
        base = session.project_path.parent / f"{session.project_path.stem}_runs"
    else:
        base = app_data_dir() / "runs"
    path, n = base / name, 1
    while path.exists():
        n += 1
        path = base / f"{name}-{n}"
    return path


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _train(config, split, run_dir, *, sink, cancel):
    """Worker-thread entry: training runs in a child process (:mod:`cnn_studio.core.child_process`).

    TensorFlow in the app's own process holds the GIL long enough to freeze the window for a
    few hundred milliseconds at a time; in a child the worker thread only relays events. A crash or
    an out-of-memory kill of the child leaves the app running and the run's checkpoints on disk.
    """
    target = MULTI_WORKER_JOB if config.workers > 1 else "cnn_studio.training.trainer:train"
    return _train_job(target, config, split, str(run_dir), run_dir=run_dir, sink=sink, cancel=cancel)


def _resume(run_dir, more_epochs: int = 0, *, sink, cancel):
    """Worker-thread entry for "Continue training": :func:`cnn_studio.training.trainer.resume` in a child
    (``more_epochs`` > 0: a completed run that was still improving trains its last phase that much longer)."""
    return _train_job("cnn_studio.training.trainer:resume", str(run_dir), run_dir=run_dir, sink=sink, cancel=cancel,
                      more_epochs=more_epochs)


def _train_job(target: str, *args, run_dir, sink, cancel, **kwargs):
    sink(ev.StageChanged("train", "Starting the training process", "(loading TensorFlow)"))
    return run_job(target, *args, sink=sink, cancel=cancel, log_path=job_log("train", run_dir), label="training",
                   **kwargs)


def more_epochs_for(run_dir) -> int:
    """Epochs "Continue training" adds to a completed run that was still improving (0: it was not)."""
    try:
        state = read_state(RunLayout(Path(run_dir)))
    except StudioError:
        return 0
    if not state.get("still_improving"):
        return 0
    phases = [v for v in (state.get("schedule") or {}).values() if isinstance(v, dict) and "end" in v]
    ran = max((int(v["end"]) - int(v.get("start", 0)) for v in phases), default=5)
    return min(max(ran, 3), 20)


def _resume_left(run) -> tuple[int, int] | None:
    """:func:`resume_point`, or None when the run's files are damaged (the Runs list says what is wrong)."""
    try:
        return resume_point(run)
    except StudioError:
        return None


def _unit(split) -> str:
    """What one training example is called: "tiles" (multi-band arrays), "slices" (of volumes) or "images"."""
    first = next(iter(split.train), None)
    if first is not None and first.bands:
        return "tiles"
    if first is not None and first.study:
        return "slices"
    return "images"
