"""A trained model + labeled images → :class:`Metrics`, and a run folder → ``metrics.json``.

The numbers come from :func:`~cnn_studio.evaluation.scoring.compute_metrics` (numpy only, so they can
be checked on hand-made predictions); the record and its text report are
:class:`~cnn_studio.evaluation.metrics.Metrics`. Here: running a model over labeled images
(:func:`evaluate`) and the run-folder wrapper (:func:`evaluate_run`: the run's test, else validation,
images or another labeled folder; ``metrics.json`` stored in the run folder). Images are named by their
record key (:attr:`ImageRecord.key`: the path, or ``path#slice=AXIS:INDEX`` for a slice of a volume).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import DatasetError, RunError
from cnn_studio.core.fsutil import write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.data.records import ImageRecord, VolumeSlicing
from cnn_studio.evaluation.metrics import Metrics
from cnn_studio.evaluation.review import read_review
from cnn_studio.evaluation.scoring import MetricsOptions, calibration_summary, compute_metrics, roc_auc_ovr
from cnn_studio.labels.corrections import AUTO, apply_corrections
from cnn_studio.labels.corrections import resolve as resolve_corrections
from cnn_studio.predict.predictor import iter_image_batches, predict_probabilities
from cnn_studio.runs.lock import RunLock
from cnn_studio.runs.run_folder import load_model, open_run, read_metrics

__all__ = ["TASK", "EvaluateOptions", "Metrics", "MetricsOptions", "RunEvaluationOptions", "calibration_summary",
           "compute_metrics", "evaluate", "evaluate_run", "load_metrics", "roc_auc_ovr"]

TASK = "Evaluating"


@dataclass(frozen=True)
class EvaluateOptions:
    """How :func:`evaluate` reads the images and what it records with the metrics.

    image_size, resize : as in training (the run's config).
    batch_size : images per model call.
    metrics : passed on to :func:`compute_metrics` (subset name, top losses, calibration fit, how
        slices of a study make its answer); its ``skipped`` is filled with the unreadable files.
    """

    image_size: int
    resize: str = "stretch"
    batch_size: int = 32
    metrics: MetricsOptions = field(default_factory=MetricsOptions)


@dataclass(frozen=True)
class RunEvaluationOptions:
    """Which images :func:`evaluate_run` evaluates a run on.

    data_dir : another labeled folder (class names must be among the run's); default the run's split.
    subset : "test", "val" or "auto" (test when the split has one, else val). Ignored with ``data_dir``.
    batch_size : images per model call.
    corrections : with ``data_dir``, the label review's decisions for that folder: "auto" (its own
        corrections file when the review queue wrote one), a corrections.csv path, or "none". The
        run's own split already carries the corrections it was trained with.
    """

    data_dir: str | os.PathLike[str] | None = None
    subset: str = "auto"
    batch_size: int = 32
    corrections: str | os.PathLike[str] | None = AUTO


# ---------------------------------------------------------------------------- model → metrics


def evaluate(model, records: Sequence[ImageRecord], class_names: Sequence[str], options: EvaluateOptions, *,
             sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> Metrics:
    """Run ``model`` over labeled images and compute :class:`Metrics`.

    Parameters
    ----------
    model : a Keras classifier taking raw 0–255 RGB and returning probabilities.
    records : the images and their true labels (indices into ``class_names``).
    options : image size and resize as in training (the run's config), batch size, and the
        :class:`MetricsOptions` (subset name, top losses, calibration fit, ``study_aggregate``: how
        slices of a study make its answer, "mean" or "max", :mod:`cnn_studio.evaluation.studies`).

    Returns
    -------
    Metrics
        Unreadable files are left out and listed in ``skipped``.

    Raises
    ------
    DatasetError
        No image could be read.
    Cancelled
        ``cancel`` was set (checked per batch).

    Events emitted
    --------------
    ``TaskProgress("Evaluating", done, total)`` after every batch.
    """

    records = list(records)
    paths = [r.key for r in records]  # a slice of a volume is named (and decoded) by its key
    kept: list[int] = []
    probs: list[np.ndarray] = []
    skipped: list[dict[str, str]] = []
    sink(ev.TaskProgress(TASK, 0, len(records)))
    for ok, images, errors in iter_image_batches(paths, options.image_size, options.resize, options.batch_size):
        raise_if_cancelled(cancel)
        probs.append(predict_probabilities(model, images))
        kept += ok
        skipped += [{"path": paths[i], "reason": reason} for i, reason in errors.items()]
        sink(ev.TaskProgress(TASK, len(kept) + len(skipped), len(records)))
    if not kept:
        raise DatasetError(f"None of the {len(records)} images to evaluate could be read.",
                           "Check the image files (run `cnn-studio scan` on the folder).")
    return compute_metrics([records[i].label for i in kept], np.concatenate(probs), class_names,
                           [paths[i] for i in kept], studies=[records[i].study for i in kept],
                           options=replace(options.metrics, skipped=skipped))


def _records_from_folder(data_dir: str | os.PathLike[str], class_names: Sequence[str], *,
                         sink: ev.EventSink, cancel: CancelToken | None,
                         slicing: VolumeSlicing | None = None, corrections=AUTO) -> list[ImageRecord]:
    index = scan(data_dir, sink=sink, cancel=cancel, slicing=slicing)
    fixes = resolve_corrections(corrections, index.root)  # the folder's reviewed labels, as training reads them
    if fixes is not None and len(fixes):
        index, applied = apply_corrections(index, fixes)
        sink(ev.LogMessage("info", f"Label corrections applied to {data_dir}: {applied.summary()}"))
    unknown = [n for n in index.class_names if n not in class_names]
    if unknown:
        raise DatasetError(f"{data_dir} has classes the model does not know: {', '.join(unknown)}.",
                           f"The model knows {', '.join(class_names)}; remove or rename the other folders.")
    position = {name: class_names.index(name) for name in index.class_names}
    return [replace(r, label=position[index.class_names[r.label]]) for r in index.records]


def evaluate_run(run_dir: str | os.PathLike[str], options: RunEvaluationOptions = RunEvaluationOptions(), *,
                 sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> Metrics:
    """Evaluate a run's model and save ``metrics.json`` (atomically) in the run folder.

    Parameters
    ----------
    run_dir : a run folder written by training.
    options : which images (:class:`RunEvaluationOptions`): the run's test or validation images
        (``subset``), or another labeled folder (``data_dir``) with its label corrections.

    Returns
    -------
    Metrics

    Raises
    ------
    RunError
        Not a run folder, no model, or no stored split (then pass ``data_dir``).
    DatasetError
        The chosen subset is empty, or ``data_dir`` has classes the model does not know.
    Cancelled
        ``cancel`` was set.

    Events emitted
    --------------
    ``StageChanged`` (loading), scan events with ``data_dir``, ``TaskProgress`` per batch.
    """

    run = open_run(run_dir)
    if options.subset not in ("auto", "test", "val"):
        raise DatasetError(f"Subset: expected test, val or auto, received {options.subset!r}.")
    with RunLock(run.root, "evaluate"):  # the one writer of the folder while metrics.json is made
        return _evaluate_locked(run, options, sink, cancel)


def _images_of_run(run, options: RunEvaluationOptions, sink: ev.EventSink,
                   cancel: CancelToken | None) -> tuple[list[ImageRecord], str, str]:
    """The images to evaluate the run on, the subset's name and where they came from."""
    names = list(run.class_names)
    if options.data_dir is not None:
        records = _records_from_folder(options.data_dir, names, sink=sink, cancel=cancel,
                                       slicing=run.config.slicing, corrections=options.corrections)
        return records, "folder", str(Path(options.data_dir).expanduser().absolute())
    if run.split is None:
        raise RunError(f"The run in {run.root} has no split.json, so its test images are unknown.",
                       "Evaluate on a labeled folder instead (--data FOLDER).")
    name = ("test" if run.split.test else "val") if options.subset == "auto" else options.subset
    records = list(run.split.subset(name))
    if not records:
        raise DatasetError(f"The run's {name} set is empty.",
                           "Use --subset val, or evaluate on a labeled folder (--data FOLDER).")
    return records, name, "split"


def _evaluate_locked(run, options: RunEvaluationOptions, sink: ev.EventSink, cancel: CancelToken | None) -> Metrics:
    records, name, source = _images_of_run(run, options, sink, cancel)
    sink(ev.StageChanged(TASK, "Loading model", str(run.model_path)))

    model = load_model(run.model_path)
    review = read_review(run.root)
    scoring = MetricsOptions(subset=name, calibration_fit=review.get("calibration"),
                             study_aggregate=str(getattr(run.config, "study_aggregate", "mean")))
    metrics = evaluate(model, records, list(run.class_names),
                       EvaluateOptions(image_size=run.image_size, resize=run.config.resize,
                                       batch_size=options.batch_size, metrics=scoring),
                       sink=sink, cancel=cancel)
    metrics.source = source
    metrics.shortcuts = review.get("shortcuts") or {}
    write_json(run.layout.metrics, metrics.to_dict())
    return metrics


def load_metrics(run_dir: str | os.PathLike[str]) -> Metrics | None:
    """The metrics.json of a run folder, or None if it was never evaluated.

    Raises RunError naming metrics.json when it is damaged (not JSON, or not metrics).
    """
    layout = RunLayout(Path(run_dir))
    data = read_metrics(layout)
    if data is None:
        return None
    try:
        metrics = Metrics.from_dict(data)
        metrics.macro_f1  # noqa: B018 - per_class rows must hold numbers
        [[int(c) for c in row] for row in metrics.confusion]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RunError(f"{layout.metrics} is damaged: it does not hold evaluation results ({exc}).",
                       "The model is unaffected: evaluate the run again (`cnn-studio evaluate RUN`) "
                       "to write it anew.") from exc
    return metrics
