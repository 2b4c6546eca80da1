"""A run folder's bookkeeping while it trains: state.json, its ``schedule`` record, a failed start.

A start that failed before its first epoch leaves a folder the next ``train`` reuses
(:func:`failed_start`, :func:`claim_folder`); :func:`extend_completed` turns a completed run's
config into one whose last phase is longer (``resume(more_epochs=...)``).
"""

from __future__ import annotations

import datetime as _dt
import shutil

from cnn_studio.core import events as ev
from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.run_folder import read_state, resume_point
from cnn_studio.training import schedule
from cnn_studio.training.config import TrainConfig


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def set_state(layout: RunLayout, **changes) -> None:
    try:
        state = read_state(layout)
    except RunError:  # damaged: what we write now replaces it
        state = {}
    state.update(changes)
    write_json(layout.state, state)


def record_schedule(layout: RunLayout, *, phase: str | None = None, left_out: list[str] | None = None,
                     **facts) -> None:
    """Merge facts into state.json's ``schedule`` record (per phase, or the run's ``left_out``)."""
    state = read_state(layout)
    sched = dict(state.get("schedule") or {})
    if phase is not None:
        sched = schedule.record_phase(sched, phase, **facts)
    if left_out is not None:
        sched["left_out"] = list(dict.fromkeys([*sched.get("left_out", []), *left_out]))
    set_state(layout, schedule=sched)


def failed_start(layout: RunLayout) -> bool:
    """True for a folder whose training never finished an epoch: no model, no history, not running.

    Such a folder (a start that failed on offline weights, a full disk, an unreadable file) is
    reused by the next ``train`` with the same folder instead of blocking it.
    """
    if any(m.exists() for m in layout.models) or layout.history.exists():
        return False
    try:
        state = read_state(layout)
    except RunError:
        return False
    if int(state.get("epochs_done", 0) or 0) or int(state.get("checkpoint_epoch", 0) or 0):
        return False
    known = {p.name for p in layout.files} | {layout.tensorboard.name, layout.feature_cache.name}
    return all(p.name in known for p in layout.root.iterdir())


def clear_failed_start(layout: RunLayout) -> None:
    for p in layout.files:
        if p != layout.lock and p.exists():
            p.unlink()
    for d in (layout.tensorboard, layout.feature_cache):
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)


def resumable(layout: RunLayout) -> bool:
    try:
        return resume_point(layout.root) is not None
    except RunError:
        return False


def claim_folder(layout: RunLayout, sink: ev.EventSink) -> None:
    """Make ``layout.root`` this run's: empty, or left by a failed start (cleared); else RunError."""
    others = [p for p in layout.root.iterdir() if p != layout.lock]
    if others and failed_start(layout):
        clear_failed_start(layout)
        sink(ev.LogMessage("info", f"Reusing {layout.root}: the earlier start there failed before its "
                                   "first epoch and left no model."))
    elif others:
        hint = ("Choose a new folder for this run"
                + (f", or continue the interrupted run with `cnn-studio resume {layout.root}`."
                   if resumable(layout) else "."))
        raise RunError(f"The folder {layout.root} is not empty.", hint)


def extend_completed(layout: RunLayout, config: TrainConfig, more: int, sink: ev.EventSink) -> TrainConfig:
    """A completed run's config with its last phase ``more`` epochs longer, as fixed epochs (written to config.json)."""
    state = read_state(layout)
    done = int(state.get("epochs_done", 0) or 0)
    sched = dict(state.get("schedule") or {})
    names = [p.name for p in schedule.plan(config)]
    ran = [n for n in names if (sched.get(n) or {}).get("finished") or not schedule.is_automatic(config)]
    last = ran[-1] if ran else names[-1]
    if last == "fine_tune":
        head_end = int((sched.get("head") or {}).get("end", config.epochs or 0))
        epochs, fine = head_end, done - head_end + more
    else:
        epochs, fine = done + more, 0
    rate = config.learning_rate or (sched.get(last) or {}).get("learning_rate") if last != "fine_tune" else None
    extended = [*config.extra.get("extended", []), {"more_epochs": more, "after_epoch": done, "when": now()}]
    config = config.replace(epochs=epochs, fine_tune_epochs=fine,
                            learning_rate=rate if rate else config.learning_rate,
                            extra={**config.extra, "extended": extended})
    write_json(layout.config, config.to_dict())
    if last in sched:
        sched[last] = {**sched[last], "finished": False}
    set_state(layout, status="extending", total_epochs=config.total_epochs, schedule=sched, still_improving=False)
    sink(ev.LogMessage("info", f"Continuing the completed run: {more} more epoch(s) of phase '{last}' "
                               f"(epochs {done + 1}–{done + more})."))
    return config
