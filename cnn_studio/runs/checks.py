"""What each file of a run folder must hold, and how the files must agree: typed checks, no defaults.

:mod:`cnn_studio.runs.run_folder`'s readers call these, so every command that opens a run
(evaluate, predict, export, explain, resume, the runs list) is stopped by the same damage with the
same words: a :class:`~cnn_studio.core.errors.RunError` naming the file, what is wrong in it, and (hint)
what still works and what to do. Nothing here writes or deletes anything.

* config.json must hold the run's settings (:data:`CONFIG_REQUIRED`), each of its type
  (:func:`check_config`): a config that lost them is never read as TrainConfig's defaults.
* state.json must hold a status and the epochs done (:func:`check_state`).
* labels.txt must list split.json's classes (written at training time, the source of truth) in the
  same order, and the model one output per class (:func:`agreeing_class_names`, :func:`check_model`).
* history.csv must hold numbers, one row per finished epoch from the first (:func:`check_history`).

No TensorFlow, no Qt.
"""

from __future__ import annotations

import csv
import io
import json
import types
import typing
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_studio.backbones import registry
from cnn_studio.backbones.classifier import BACKBONE_LAYER
from cnn_studio.core.errors import RunError, StudioError
from cnn_studio.training.config import TrainConfig

WHAT_STILL_WORKS = {
    "config": "Nothing that needs the run's settings works (evaluate, classify, export, continue); put back "
              "the run's config.json, or start a new run with the same data.",
    "split": "Classifying, exporting and explaining still work; to evaluate, give other labeled images "
             "with `cnn-studio evaluate RUN --data FOLDER`; continuing the training needs it.",
    "labels": "Delete labels.txt: the class names are then taken from split.json.",
    "state": "Evaluating, classifying and exporting still work with the saved model; continuing the "
             "training needs it (put back the run's state.json, or start a new run).",
    "history": "history.csv only holds the training curves: the model is unaffected (evaluating, classifying "
               "and exporting still work). To continue the training, put back the run's history.csv, or move "
               "it out of the folder to continue without the curves of the epochs done so far.",
    "metrics": "The model is unaffected: evaluate the run again (`cnn-studio evaluate RUN`) to write it anew.",
    "robustness": "The model is unaffected: run the robustness check again to write it anew.",
    "reproducibility": "The model is unaffected; only the record of versions and dataset fingerprint is lost.",
    "review": "The model is unaffected; only the review's notes (chance level, calibration, shortcuts) are lost.",
}

CONFIG_REQUIRED = ("backbone", "weights", "epochs", "fine_tune_epochs")  # in every config.json ever written
STATE_REQUIRED = ("status", "epochs_done")  # train writes both before its first epoch
STATE_STATUSES = ("running", "completed", "cancelled", "failed", "extending")  # extending: resume --more-epochs
STATE_TYPES: dict[str, Any] = {"status": str, "epochs_done": int, "checkpoint_epoch": int, "total_epochs": int,
                               "best_value": float | None, "message": str}


def damaged(path: Path, what: str, key: str) -> RunError:
    """``"<path> is damaged: <what>."`` with what still works (``key``: "config", "state"...) as the hint."""
    return RunError(f"{path} is damaged: {what}.", WHAT_STILL_WORKS[key])


def _fits(value: Any, hint: Any) -> bool:
    """True when a JSON value can be a field typed ``hint`` (int, float, str, bool, X | None, tuple[..], dict)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, (list, tuple)) and all(_fits(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is list or hint is list:
        return isinstance(value, list)
    return isinstance(value, hint)


def type_problem(data: dict[str, Any], hints: dict[str, Any]) -> str:
    """The first key of ``data`` whose value does not fit ``hints`` (key → type), in words; "" when all fit."""
    for name, hint in hints.items():
        if name in data and not _fits(data[name], hint):
            shown = repr(data[name])
            return f"'{name}' is {shown if len(shown) <= 80 else shown[:77] + '...'}, not {_words(hint)}"
    return ""


def _words(hint: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false", dict: "a JSON object",
             list: "a list", type(None): "null"}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_words(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "a list of " + {int: "whole numbers", str: "texts"}.get(typing.get_args(hint)[0], "values")
    return names.get(hint, names.get(typing.get_origin(hint), getattr(hint, "__name__", str(hint))))


def check_config(path: Path, data: dict[str, Any]) -> TrainConfig:
    """The object in config.json as a validated :class:`TrainConfig`; RunError naming what is missing or wrong."""
    missing = [k for k in CONFIG_REQUIRED if k not in data]
    if missing:
        raise damaged(path, f"it does not hold the run's {', '.join(missing)} (CNN Studio will not guess them)",
                      "config")
    problem = type_problem(data, typing.get_type_hints(TrainConfig))
    if problem:
        raise damaged(path, problem, "config")
    try:
        config = TrainConfig.from_dict(data).validate()
        registry.get(config.backbone)
    except StudioError as exc:  # ConfigError: a value out of range, an unknown backbone
        raise damaged(path, exc.message.rstrip("."), "config") from exc
    return config


def check_state(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """The object in state.json, its numbers as ints; RunError when it has no status or epochs, or wrong types."""
    missing = [k for k in STATE_REQUIRED if k not in state]
    if missing:
        raise damaged(path, f"it does not say the run's {' or '.join(missing)}", "state")
    for key in ("epochs_done", "checkpoint_epoch", "total_epochs"):
        if isinstance(state.get(key), float) and state[key].is_integer():
            state[key] = int(state[key])
    problem = type_problem(state, STATE_TYPES)
    if problem:
        raise damaged(path, problem, "state")
    if state["status"] not in STATE_STATUSES:
        raise damaged(path, f"its status {state['status']!r} is none of {', '.join(STATE_STATUSES)}", "state")
    negative = next((k for k in ("epochs_done", "checkpoint_epoch", "total_epochs") if state.get(k, 0) < 0), None)
    if negative:
        raise damaged(path, f"'{negative}' is {state[negative]}, below 0", "state")
    return state


def _names(names: tuple[str, ...] | list[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return f"{shown}, … ({len(names)} in all)" if len(names) > most else shown


def agreeing_class_names(labels_path: Path, labels: tuple[str, ...], split_path: Path,
                         split_names: tuple[str, ...] | None) -> tuple[str, ...]:
    """The run's class names: labels.txt's when split.json (the list training used) agrees, else RunError.

    ``labels`` empty: labels.txt is missing, split.json's names are used. ``split_names`` None:
    split.json is missing or damaged (its reader says so to the commands that need it).
    """
    if labels and split_names is not None and tuple(labels) != tuple(split_names):
        raise RunError(f"{labels_path} lists the classes {_names(labels)}, but {split_path}, written when the model "
                       f"was trained, lists {_names(split_names)}: the model's answers would get the wrong names.",
                       "labels.txt was changed after training. Put back the labels.txt saved with this run, or "
                       "delete labels.txt: the names are then taken from split.json.")
    return tuple(labels) or tuple(split_names or ())


def check_labels(source: Path, class_names: tuple[str, ...], n_outputs: int) -> None:
    """RunError when ``source`` (labels.txt, else split.json) does not name one class per model output."""
    if len(class_names) != n_outputs:
        raise RunError(f"{source} lists {len(class_names)} class(es) but the model has {n_outputs} outputs.",
                       "The file does not belong to this model: delete labels.txt (the names then come from "
                       "split.json) or put back the labels.txt that was saved with it.")


@dataclass(frozen=True)
class ModelFacts:
    """What a ``.keras`` file says about its model, read from its config without TensorFlow."""

    layers: tuple[str, ...]  # the top-level layer names
    outputs: int | None  # the predictions layer's units (None: no such layer)
    image_size: int | None  # the resize layer's height (None: no such layer)


_KERAS_ARCHIVE_CONFIG = ".".join(("config", "json"))  # Keras' own member of a .keras zip, not a run folder file


def model_facts(path: Path) -> ModelFacts:
    """A ``.keras`` file's :class:`ModelFacts` (its zip's config.json). Raises OSError, ValueError,
    KeyError or zipfile.BadZipFile for a file that is not a Keras model."""
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read(_KERAS_ARCHIVE_CONFIG).decode("utf-8"))
    layers = config["config"]["layers"]  # a Functional model's layers name themselves; a Sequential's, in "config"
    by_name = {str(layer.get("name") or layer["config"]["name"]): layer.get("config") or {} for layer in layers}
    units = by_name.get("predictions", {}).get("units")
    height = by_name.get("resize", {}).get("height")
    return ModelFacts(tuple(by_name), int(units) if units is not None else None,
                      int(height) if height is not None else None)


def check_model(path: Path, facts: ModelFacts, hint: str) -> None:
    """RunError when the model in ``path`` is not a CNN Studio classifier (a model made elsewhere)."""
    if BACKBONE_LAYER not in facts.layers or facts.outputs is None:
        raise RunError(f"{path} is not a model made by CNN Studio (its layers are {_names(facts.layers, 8)}; a CNN "
                       f"Studio model has a '{BACKBONE_LAYER}' and a 'predictions' layer).", hint)


def _history_rows(path: Path) -> list[dict[str, str | None]]:
    if not path.exists():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
        reader = csv.DictReader(io.StringIO(text))
        rows = list(reader)
    except OSError as exc:
        raise damaged(path, f"it cannot be read ({exc.strerror or exc})", "history") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise damaged(path, "it is not a table of numbers (not UTF-8 CSV text)", "history") from exc
    if rows and "epoch" not in (reader.fieldnames or ()):
        raise damaged(path, "it has no 'epoch' column", "history")
    return rows


def check_history(path: Path, epochs_done: int) -> str:
    """Check history.csv against the ``epochs_done`` that state.json and last.keras hold.

    Returns "" when it has a row of numbers for every finished epoch, from the first, in order. When
    only the rows of the last epochs are missing (the process was killed while it saved them, or the
    file is gone) it returns a sentence saying which epochs' curves are lost: the caller says it and
    goes on. Raises RunError for a file that is not numbers or whose rows skip or repeat an epoch.
    """
    rows = _history_rows(path)
    for i, row in enumerate(rows):
        if None in row or None in row.values():
            raise damaged(path, f"row {i + 1} does not have one value per column", "history")
        try:
            values = {k: float(v) for k, v in row.items() if v != ""}
            epoch = values["epoch"]
        except (ValueError, KeyError):
            bad = next((f"{k} = {v!r}" for k, v in row.items() if not _number(v) and (v or k == "epoch")), "")
            raise damaged(path, f"row {i + 1} holds {bad}, not a number", "history") from None
        if epoch != i:
            which = f"its rows start at epoch {int(epoch) + 1}" if i == 0 else f"row {i + 1} is epoch {epoch + 1:g}"
            raise damaged(path, f"{which}: the row of epoch {i + 1} is missing", "history")
    if len(rows) >= epochs_done:
        return ""
    lost = f"epoch {len(rows) + 1}" if len(rows) + 1 == epochs_done else f"epochs {len(rows) + 1}–{epochs_done}"
    where = "is missing" if not path.exists() else f"has no rows for {lost}"
    return (f"{path} {where}: the training curves of {lost} are lost (the process was stopped while saving them, "
            "or the file was moved); the model is unaffected.")


def _number(value: str | None) -> bool:
    try:
        float(value or "")
    except ValueError:
        return False
    return True
