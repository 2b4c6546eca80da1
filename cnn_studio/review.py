"""The review of a trained model on its validation images, run when training completes.

Three questions, answered with the best model on the validation images and stored in the run
folder as ``review.json``:

1. **Is it better than guessing?** (:func:`cnn_studio.intervals.compare_with_guessing`): when not,
   or when too few images can tell, a :class:`~cnn_studio.events.ChanceLevel` event and a warning
   log line say so and what to try, and the run's result carries the warning.
2. **Does its confidence mean what it says?** (:mod:`cnn_studio.calibration`): temperature scaling
   is fitted on the validation probabilities and, when it lowers the calibration error, stored
   inside best.keras (the final layer's weights divided by ``T``), so evaluation, prediction and
   every export use it. Event :class:`~cnn_studio.events.Calibrated`.
3. **Does it look at the object?** (:mod:`cnn_studio.explain.shortcuts`): Grad-CAM on a sample of
   validation images; a border or one fixed spot gives :class:`~cnn_studio.events.ShortcutSuspected`.

:func:`read_review` gives the stored record (empty for runs trained before this existed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio import events as ev
from cnn_studio.calibration import apply_temperature_to_model, calibrate
from cnn_studio.cancel import CancelToken, raise_if_cancelled
from cnn_studio.errors import StudioError
from cnn_studio.explain.shortcuts import check_shortcuts
from cnn_studio.fsutil import atomic_path, read_json, write_json
from cnn_studio.intervals import compare_with_guessing
from cnn_studio.predict import iter_image_batches, predict_probabilities
from cnn_studio.training.eta import EtaProgress
from cnn_studio.training.run_folder import load_model, open_run
from cnn_studio.training.run_lock import RunLock

REVIEW_FILE = "review.json"
TASK = "Reviewing the model"


def review_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / REVIEW_FILE


def read_review(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's review.json, or ``{}``."""
    path = review_path(run_dir)
    try:
        return read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        return {}


def warnings_of(review: dict[str, Any]) -> list[str]:
    """The review's warnings as lines for people (empty when nothing is wrong)."""
    out = []
    chance = review.get("chance") or {}
    if chance.get("verdict") in ("not_better", "unproven"):
        out.append(chance["message"] + (f" {chance['hint']}" if chance.get("hint") else ""))
    shortcuts = review.get("shortcuts") or {}
    if shortcuts.get("suspected"):
        out.append(shortcuts["message"] + (f" {shortcuts['hint']}" if shortcuts.get("hint") else ""))
    return out


def review_model(run_dir: str | os.PathLike[str], *, shortcut_check: bool = True, calibrate_model: bool = True,
                 sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Review a run's best model on its validation images; write review.json (and a calibrated best.keras).

    Returns the review: ``{"n_images", "chance", "calibration", "shortcuts", "warnings"}``.

    Events emitted
    --------------
    ``StageChanged``, ``TaskProgress``, ``Calibrated``, ``ChanceLevel`` and ``ShortcutSuspected``
    (only when there is something to say), ``LogMessage("warning", ...)`` for each warning.
    """

    run = open_run(run_dir)
    with RunLock(run.root, "review"):  # inside training this shares train's lock (re-entrant)
        return _review_locked(run, shortcut_check, calibrate_model, sink, cancel)


def _review_locked(run, shortcut_check: bool, calibrate_model: bool, sink: ev.EventSink,
                   cancel: CancelToken | None) -> dict[str, Any]:
    names = list(run.class_names)
    records = list(run.split.val) if run.split is not None else []
    review: dict[str, Any] = {"n_images": 0, "chance": {}, "calibration": {}, "shortcuts": {}, "warnings": []}
    if not records:
        write_json(review_path(run.root), review)
        return review
    sink(ev.StageChanged(TASK, "Checking the model on the validation images", f"{len(records)} images"))
    model = load_model(run.model_path)
    paths = [r.key for r in records]  # a slice of a volume is named (and decoded) by its record key
    probs, y, kept = [], [], []
    progress = EtaProgress(sink, "Checking the model on the validation images", len(paths))
    seen = 0
    for ok, images, errors in iter_image_batches(paths, run.image_size, run.config.resize, 32):
        raise_if_cancelled(cancel)
        probs.append(predict_probabilities(model, images))
        y += [records[i].label for i in ok]
        kept += [paths[i] for i in ok]
        seen += len(ok) + len(errors)
        progress.update(seen)
    p = np.concatenate(probs) if probs else np.zeros((0, len(names)))
    y_arr = np.asarray(y, np.int64)
    review["n_images"] = len(y)
    chance = compare_with_guessing(y_arr, p.argmax(axis=1) if len(y) else y_arr, names)
    review["chance"] = chance
    if chance["verdict"] != "better":
        sink(ev.ChanceLevel(accuracy=chance["accuracy"], baseline=max(chance["chance"], chance["majority"]),
                            n_images=chance["n"], verdict=chance["verdict"], message=chance["message"],
                            hint=chance["hint"]))
        sink(ev.LogMessage("warning", chance["message"] + (f" {chance['hint']}" if chance["hint"] else "")))

    if calibrate_model and len(y):
        sink(ev.StageChanged(TASK, "Calibrating the confidence", f"on {len(y)} validation images"))
        cal = calibrate(p, y_arr)
        if cal["applied"]:
            apply_temperature_to_model(model, cal["temperature"])
            with atomic_path(run.model_path) as tmp:
                model.save(tmp)
        review["calibration"] = cal
        sink(ev.Calibrated(temperature=cal["temperature"], applied=cal["applied"], ece_before=cal["ece_before"],
                           ece_after=cal["ece_after"], n_images=cal["n_images"], reason=cal.get("reason", "")))

    if shortcut_check and len(y):
        try:
            sink(ev.StageChanged(TASK, "Looking for shortcuts", "Grad-CAM on a sample of the validation images"))
            sc = check_shortcuts(model, kept, y, names, run.image_size, run.config.resize, cancel=cancel,
                                 sink=_with_eta(sink, "Looking for shortcuts (Grad-CAM)"))
        except StudioError as exc:  # a model Grad-CAM cannot explain: say so, do not fail the run
            sc = {"suspected": False, "message": f"Shortcut check skipped: {exc.message}"}
        review["shortcuts"] = sc
        if sc.get("suspected"):
            sink(ev.ShortcutSuspected(kind=sc["kind"], region=sc["region"], message=sc["message"], hint=sc["hint"],
                                      examples=tuple(sc["examples"])))
            sink(ev.LogMessage("warning", sc["message"] + " " + sc["hint"]))
    review["warnings"] = warnings_of(review)
    write_json(review_path(run.root), review)
    return review


def _with_eta(sink: ev.EventSink, task: str) -> ev.EventSink:
    """A sink that turns a step's plain ``TaskProgress`` into images done / total with a time estimate."""
    progress: list[EtaProgress] = []

    def relay(event: object) -> None:
        if not isinstance(event, ev.TaskProgress):
            sink(event)
            return
        if not progress:
            progress.append(EtaProgress(sink, task, event.total))
        progress[0].update(event.done)

    return relay
