"""The review of a trained model on its validation images, run when training completes.

Three questions, answered with the best model on the validation images and stored in the run
folder as ``review.json``:

1. **Is it better than guessing?** (:func:`cnn_studio.evaluation.intervals.compare_with_guessing`): when not,
   or when too few images can tell, a :class:`~cnn_studio.core.events.ChanceLevel` event and a warning
   log line say so and what to try, and the run's result carries the warning.
2. **Does its confidence mean what it says?** (:mod:`cnn_studio.evaluation.calibration`): temperature scaling
   is fitted on the validation probabilities and, when it lowers the calibration error, stored
   inside best.keras (the final layer's weights divided by ``T``), so evaluation, prediction and
   every export use it. Event :class:`~cnn_studio.core.events.Calibrated`.
3. **Does it look at the object?** (:mod:`cnn_studio.explain.shortcuts`): the corners and edges of a
   sample of validation images are masked and swapped (and Grad-CAM'd); a small place at the edge
   that changes the answers gives :class:`~cnn_studio.core.events.ShortcutSuspected` with its box and images.

:func:`read_review` gives the stored record (empty for runs trained before this existed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.backbones.activation_split import KeptActivations, split_at
from cnn_studio.backbones.low_precision import bfloat16_twin
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import StudioError
from cnn_studio.core.fsutil import atomic_path, read_json, write_json
from cnn_studio.evaluation.calibration import apply_temperature_to_model, calibrate
from cnn_studio.evaluation.intervals import compare_with_guessing
from cnn_studio.explain.shortcuts import ShortcutOptions, check_shortcuts, review_sample_size
from cnn_studio.predict.predictor import Classifier, iter_image_batches, predict_probabilities
from cnn_studio.runs.checks import type_problem
from cnn_studio.runs.lock import RunLock
from cnn_studio.runs.run_folder import load_model, open_run
from cnn_studio.training.devices import bfloat16_frozen_pass
from cnn_studio.training.eta import EtaProgress

REVIEW_FILE = "review.json"
TASK = "Reviewing the model"


def review_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / REVIEW_FILE


# what each part of review.json must be, where its readers (evaluation, the model card, warnings_of) use it
_REVIEW_TYPES: dict[str, Any] = {"n_images": int, "chance": dict, "calibration": dict, "shortcuts": dict,
                                 "warnings": list}
_PART_TYPES: dict[str, dict[str, Any]] = {
    "chance": {"verdict": str, "message": str, "hint": str},
    "calibration": {"applied": bool, "temperature": float, "n_images": int, "ece_before": float,
                    "ece_after": float, "reason": str},
    "shortcuts": {"suspected": bool, "message": str, "hint": str},
}
# when the first key is set, the others must be there (warnings_of, the model card read them)
_NEEDED = {"chance": ("verdict", ("message",)),
           "calibration": ("applied", ("temperature", "n_images", "ece_before", "ece_after")),
           "shortcuts": ("suspected", ("message",))}


def read_review(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's review.json; ``{}`` when there is none (runs trained before it existed).

    review.json only holds notes about the model, so a damaged one does not stop anything: it is
    read as ``{"damaged": "<what is wrong, and that its notes are left out>"}`` (no chance level,
    calibration or shortcut notes), which the commands that show a review say.
    """
    path = review_path(run_dir)
    if not path.exists():
        return {}
    try:
        review = read_json(path)
    except (OSError, ValueError) as exc:
        return _damaged_review(path, "it is not valid JSON" if isinstance(exc, ValueError) else str(exc))
    problem = _review_problem(review)
    return _damaged_review(path, problem) if problem else review


def _review_problem(review: Any) -> str:
    """What is wrong in review.json's object, in words ("" when its readers can use it)."""
    if not isinstance(review, dict):
        return "it is not a JSON object"
    missing = [k for k in _REVIEW_TYPES if k not in review]  # every review.json written has all of them
    if missing:
        return f"it lacks {', '.join(missing)}"
    problem = type_problem(review, _REVIEW_TYPES)
    for part, types in _PART_TYPES.items():
        if problem:
            return problem
        value = review.get(part) or {}
        switch, needed = _NEEDED[part]
        missing = [k for k in needed if value.get(switch) and k not in value]
        inner = type_problem(value, types)
        problem = f"{part}: {inner}" if inner else f"{part} lacks {', '.join(missing)}" if missing else ""
    return problem


def _damaged_review(path: Path, what: str) -> dict[str, Any]:
    return {"damaged": f"{path} is damaged ({what}): its notes (chance level, calibration, shortcuts) are left out; "
                       "the model is unaffected."}


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
                 sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None,
                 activations: KeptActivations | None = None) -> dict[str, Any]:
    """Review a run's best model on its validation images; write review.json (and a calibrated best.keras).

    Returns the review: ``{"n_images", "chance", "calibration", "shortcuts", "warnings"}``.

    Events emitted
    --------------
    ``StageChanged``, ``TaskProgress``, ``Calibrated``, ``ChanceLevel`` and ``ShortcutSuspected``
    (only when there is something to say), ``LogMessage("warning", ...)`` for each warning.

    ``activations``: the validation images' activations kept by training (:class:`KeptActivations`), which
    spare decoding them and running the layers below the cut.
    """

    run = open_run(run_dir)
    with RunLock(run.root, "review"):  # inside training this shares train's lock (re-entrant)
        return _review_locked(run, ReviewParts(shortcut_check, calibrate_model, activations), sink, cancel)


@dataclass(frozen=True)
class ReviewParts:
    """What the review does: the shortcut check, the calibration, and the kept activations it may start from."""

    shortcut_check: bool = True
    calibrate_model: bool = True
    activations: KeptActivations | None = None


def _review_locked(run, parts: ReviewParts, sink: ev.EventSink, cancel: CancelToken | None) -> dict[str, Any]:
    names = list(run.class_names)
    records = list(run.split.val) if run.split is not None else []
    review: dict[str, Any] = {"n_images": 0, "chance": {}, "calibration": {}, "shortcuts": {}, "warnings": []}
    if not records:
        write_json(review_path(run.root), review)
        return review
    sink(ev.StageChanged(TASK, "Checking the model on the validation images", f"{len(records)} images"))
    model = load_model(run.model_path)
    p, y_arr, kept = _validation_answers(model, records, run, parts.activations, sink, cancel)
    y = list(y_arr)
    review["n_images"] = len(y)
    chance = compare_with_guessing(y_arr, p.argmax(axis=1) if len(y) else y_arr, names)
    review["chance"] = chance
    if chance["verdict"] != "better":
        sink(ev.ChanceLevel(accuracy=chance["accuracy"], baseline=max(chance["chance"], chance["majority"]),
                            n_images=chance["n"], verdict=chance["verdict"], message=chance["message"],
                            hint=chance["hint"]))
        sink(ev.LogMessage("warning", chance["message"] + (f" {chance['hint']}" if chance["hint"] else "")))

    if parts.calibrate_model and len(y):
        sink(ev.StageChanged(TASK, "Calibrating the confidence", f"on {len(y)} validation images"))
        cal = calibrate(p, y_arr)
        if cal["applied"]:
            apply_temperature_to_model(model, cal["temperature"])
            with atomic_path(run.model_path) as tmp:
                model.save(tmp)
        review["calibration"] = cal
        sink(ev.Calibrated(temperature=cal["temperature"], applied=cal["applied"], ece_before=cal["ece_before"],
                           ece_after=cal["ece_after"], n_images=cal["n_images"], reason=cal.get("reason", "")))

    if parts.shortcut_check and len(y):
        try:
            sink(ev.StageChanged(TASK, "Looking for shortcuts",
                                 "corners and edges masked, and Grad-CAM, on a sample of the validation images"))
            options = ShortcutOptions(max_images=review_sample_size(len(run.split.train) + len(records)),
                                      screen=bfloat16_twin(model, "backbone") if bfloat16_frozen_pass(run.config) else None)
            sc = check_shortcuts(Classifier(model, names, run.image_size, run.config.resize), kept, y, options,
                                 cancel=cancel, sink=_with_eta(sink))
        except StudioError as exc:  # a model Grad-CAM cannot explain: say so, do not fail the run
            sc = {"suspected": False, "message": f"Shortcut check skipped: {exc.message}"}
        review["shortcuts"] = sc
        if sc.get("suspected"):
            sink(ev.ShortcutSuspected(kind=sc["kind"], region=sc["region"], message=sc["message"], hint=sc["hint"],
                                      examples=tuple(sc["examples"]), box=tuple(sc["box"]) if sc.get("box") else None,
                                      resize=run.config.resize, n_affected=len(sc.get("affected") or ())))
            sink(ev.LogMessage("warning", sc["message"] + " " + sc["hint"]))
    review["warnings"] = warnings_of(review)
    write_json(review_path(run.root), review)
    return review


def _validation_answers(model, records, run, activations: KeptActivations | None, sink: ev.EventSink,
                        cancel: CancelToken | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The model's probabilities for the validation images, their labels and keys (unreadable files left out).

    From ``activations`` when they are there and line up with the records (as many rows, the same labels,
    and the model cut there again), else from the images.
    """
    paths = [r.key for r in records]  # a slice of a volume is named (and decoded) by its record key
    labels = np.asarray([r.label for r in records], np.int64)
    upper = None
    if (activations is not None and len(activations.labels) == len(records)
            and np.array_equal(np.asarray(activations.labels, np.int64), labels)):
        split = split_at(_copy(model), activations.cut_layer)  # a copy: the cut adds uses of the model's layers,
        upper = split.upper if split is not None else None   # which Grad-CAM's reading of the model must not see
    progress = EtaProgress(sink, "Checking the model on the validation images", len(paths))
    if upper is not None:
        probs = []
        for start in range(0, len(paths), 32):
            raise_if_cancelled(cancel)
            probs.append(predict_probabilities(upper, np.asarray(activations.values[start:start + 32], np.float32)))
            progress.update(min(len(paths), start + 32))
        return np.concatenate(probs), labels, paths
    probs, y, kept = [], [], []
    seen = 0
    for ok, images, errors in iter_image_batches(paths, run.image_size, run.config.resize, 32):
        raise_if_cancelled(cancel)
        probs.append(predict_probabilities(model, images))
        y += [records[i].label for i in ok]
        kept += [paths[i] for i in ok]
        seen += len(ok) + len(errors)
        progress.update(seen)
    p = np.concatenate(probs) if probs else np.zeros((0, int(model.outputs[0].shape[-1])))
    return p, np.asarray(y, np.int64), kept


def _copy(model):
    """The model's layers and weights in a new model of their own."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _with_eta(sink: ev.EventSink) -> ev.EventSink:
    """A sink that turns a step's plain ``TaskProgress`` into images done / total with a time estimate
    (each event keeps its own task name; a new pass, as the shortcut check makes several, starts a new estimate)."""
    progress: list[EtaProgress] = []

    def relay(event: object) -> None:
        if not isinstance(event, ev.TaskProgress):
            sink(event)
            return
        last = progress[-1] if progress else None
        if last is None or (event.task, event.total) != (last.task, last.total) or event.done < last.done:
            progress.append(EtaProgress(sink, event.task, event.total))
        progress[-1].update(event.done)

    return relay
