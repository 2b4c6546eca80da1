"""A trained model + image paths → :class:`Prediction` per image (top-k labels); a batch → CSV.

The drag-and-drop classifier of the GUI and ``cnn-studio predict`` both go through
:class:`Classifier`. Images are decoded and resized exactly as in training
(:func:`cnn_studio.data.pipeline.load_image`, the run's image size and resize policy); a file that
cannot be read gives a :class:`Prediction` whose ``error`` says why, and never ends the batch.

Paths may be record keys (:attr:`cnn_studio.data.records.ImageRecord.key`): ``path#slice=AXIS:INDEX``
names one slice of a volume file. A multi-band file (GeoTIFF with N bands, ``.npy``) gives its N raw
bands, which a multi-band run's model takes (its input has N channels); a file whose channel count
is not the model's gets an error that says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.backbones.classifier import input_size_of
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.csv_text import csv_text
from cnn_studio.core.errors import ConfigError, DatasetError, RunError
from cnn_studio.core.fsutil import write_text
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.bands import BandInfo, read_run_bands
from cnn_studio.data.formats import reader_for
from cnn_studio.data.records import parse_key
from cnn_studio.evaluation.calibration import uncertain
from cnn_studio.predict.batches import (
    check_model_input,
    input_mismatch,
    iter_image_batches,
    predict_probabilities,
)
from cnn_studio.runs.run_folder import check_labels, load_model, open_run, read_labels

__all__ = ["TASK", "Classifier", "ClassifyOptions", "Prediction", "TopAnswer", "check_model_input", "classify",
           "expand_paths", "input_mismatch", "iter_image_batches", "predict_probabilities", "skip_reason",
           "skipped_predictions", "write_csv"]

TASK = "Classifying"


class TopAnswer:
    """``label``, ``confidence`` and ``answer`` of anything with ``top`` (label, probability) pairs and ``uncertain``."""

    top: list[tuple[str, float]]
    uncertain: bool

    @property
    def label(self) -> str | None:
        """The most likely class, or None when nothing could be read."""
        return self.top[0][0] if self.top else None

    @property
    def confidence(self) -> float:
        """Probability of the most likely class (0 when nothing could be read)."""
        return self.top[0][1] if self.top else 0.0

    @property
    def answer(self) -> str | None:
        """The label, or "uncertain" when the top probability is below the "not sure" threshold."""
        return "uncertain" if self.uncertain else self.label


@dataclass(frozen=True)
class Prediction(TopAnswer):
    """The model's answer for one image: ``top`` (label, probability) pairs, best first.

    ``probabilities`` holds every class in output order. ``error`` is set (and the rest empty) when
    the file could not be read, or, with ``skipped``, when it is not an image CNN Studio reads. ``uncertain`` is True when a "not sure" threshold was given and the
    top probability is below it: the answer is then "uncertain", and ``top`` holds the best guesses.
    """

    path: str
    top: list[tuple[str, float]] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    error: str | None = None
    uncertain: bool = False
    skipped: bool = False  # a file a folder held that is not an image CNN Studio reads (``error`` says so)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "top": [[name, p] for name, p in self.top],
                "probabilities": list(self.probabilities), "error": self.error, "uncertain": self.uncertain,
                "skipped": self.skipped}


# ---------------------------------------------------------------------------- paths


def expand_paths(paths: Iterable[str | os.PathLike[str]], skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Files and folders → image files: folders are walked recursively (hidden entries skipped).

    Inside folders only files CNN Studio can read are kept (by suffix, or DICOM magic for files
    without one); the others go to ``skipped`` (when given) as ``(path, reason)``, so a caller can
    list them. A link that cannot be followed (a loop, a link to nothing) is kept: its row says
    why. Files named explicitly are always kept, so an unreadable one is reported rather than
    silently dropped. Folder contents are sorted; duplicates are removed, first one kept.

    Raises
    ------
    DatasetError
        A path does not exist.
    """

    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.absolute()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found, left_out = _walk_folder(p)
            for f in found:
                add(f)
            if skipped is not None:
                skipped += left_out
        elif p.exists() or p.is_symlink():  # a broken link is named: its row says why it cannot be read
            add(p)
        elif parse_key(str(raw))[2] is not None and Path(parse_key(str(raw))[0]).expanduser().exists():
            add(p)  # a record key: one slice of a volume file (path#slice=AXIS:INDEX)
        else:
            raise DatasetError(f"{p} does not exist.", "Check the path of the image or folder to classify.")
    return out


def _walk_folder(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """(the files to classify, sorted; the other files as (path, why they are skipped)) below ``folder``."""
    found: list[Path] = []
    left_out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            f = Path(dirpath) / name
            if name.startswith("."):
                continue
            try:
                readable = reader_for(f) is not None or (f.is_symlink() and not f.exists())
            except OSError:  # a file removed meanwhile: its row says why
                readable = True
            if readable:
                found.append(f)
            else:
                left_out.append((str(f), skip_reason(f)))
    return sorted(found), sorted(left_out)


def skip_reason(path: str | os.PathLike[str]) -> str:
    """Why a file found in a folder is not classified: its type is not one CNN Studio reads."""
    suffix = Path(path).suffix.lower()
    return f"skipped: not an image type CNN Studio reads ({suffix or 'no suffix, no DICOM header'})"


def skipped_predictions(skipped: Iterable[tuple[str, str]]) -> list[Prediction]:
    """One :class:`Prediction` row (``skipped`` True, ``error`` the reason) per file a folder held but
    CNN Studio does not read, so every file found is accounted for."""
    return [Prediction(path, error=reason, skipped=True) for path, reason in skipped]


# ---------------------------------------------------------------------------- classifier


def _labels_beside(model_path: Path, n_classes: int) -> tuple[str, ...]:
    labels = RunLayout(model_path.parent).labels
    if labels.exists():
        names = read_labels(labels)
        if len(names) != n_classes:
            raise RunError(f"{labels} lists {len(names)} classes but the model has {n_classes} outputs.",
                           "Put the labels.txt that was exported with this model next to it.")
        return names
    return tuple(f"class_{i}" for i in range(n_classes))


def _model_input_size(model) -> int | None:
    try:
        return input_size_of(model)
    except (ValueError, KeyError, AttributeError):
        shape = model.inputs[0].shape
        return int(shape[1]) if shape[1] is not None else None


class Classifier:
    """A loaded model with its class names, image size and resize policy, for repeated calls.

    Examples
    --------
    >>> clf = Classifier.load("runs/leaves")  # doctest: +SKIP
    >>> clf.classify(["new/leaf.jpg"])[0].top  # doctest: +SKIP
    [('rust', 0.93), ('healthy', 0.07)]
    """

    def __init__(self, model, class_names: Sequence[str], image_size: int, resize: str = "stretch",
                 bands: BandInfo | None = None, pictures_only: bool = False) -> None:
        self.model = model
        self.class_names = tuple(class_names)
        self.image_size = int(image_size)
        self.resize = resize
        self.bands = bands  # a multi-band run's bands.json (RGB bands for overlays), else None
        self.pictures_only = pictures_only  # a run known to take RGB pictures: multi-band files are refused

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Classifier:
        """From a run folder (its config sets size and resize) or a bare ``.keras`` file (size from
        the model's Resizing layer, class names from a ``labels.txt`` beside it)."""

        p = Path(path).expanduser()
        if p.is_dir() or (p.suffix == ".keras" and RunLayout(p.parent).is_run()):
            run = open_run(p)
            model = load_model(p if p.is_file() else run.model_path)
            n_outputs = int(model.outputs[0].shape[-1])
            names = run.class_names or _labels_beside(run.model_path, n_outputs)
            check_labels(run.layout, names, n_outputs)  # a short labels.txt must not answer silently
            bands = read_run_bands(run.root)
            return cls(model, names, run.image_size, run.config.resize, bands, pictures_only=bands is None)
        if not p.exists():
            raise RunError(f"No model at {p}.", "Give a run folder or a .keras file.")
        model = load_model(p)
        size = _model_input_size(model)
        if size is None:
            raise RunError(f"Cannot tell which image size {p} expects.", "Use a model trained by CNN Studio.")
        return cls(model, _labels_beside(p, int(model.outputs[0].shape[-1])), size, bands=read_run_bands(p.parent))

    def classify(self, paths: Sequence[str | os.PathLike[str]], *, top_k: int = 3, batch_size: int = 32,
                 uncertain_below: float | None = None, sink: ev.EventSink = ev.null_sink,
                 cancel: CancelToken | None = None) -> list[Prediction]:
        """Classify image files and folders (see :func:`classify`)."""

        _check_threshold(uncertain_below)
        top_k = max(1, min(int(top_k), len(self.class_names)))
        left_out: list[tuple[str, str]] = []
        paths = expand_paths(paths, left_out)
        results: list[Prediction | None] = [None] * len(paths)
        sink(ev.TaskProgress(TASK, 0, len(paths)))
        done = 0
        channels = int(self.model.inputs[0].shape[-1])
        if int(batch_size) < 1:
            raise ConfigError(f"Batch size: expected a whole number >= 1, received {batch_size}.",
                              "32 suits most computers; lower it when memory runs out.")
        for ok, images, errors in iter_image_batches(paths, self.image_size, self.resize, batch_size, channels,
                                                     pictures_only=self.pictures_only):
            raise_if_cancelled(cancel)
            probs = predict_probabilities(self.model, images)
            for i, row in zip(ok, probs, strict=True):
                order = np.argsort(-row, kind="stable")[:top_k]
                results[i] = Prediction(str(paths[i]), [(self.class_names[j], float(row[j])) for j in order],
                                        [float(v) for v in row],
                                        uncertain=uncertain(float(row[order[0]]), uncertain_below))
            for i, reason in errors.items():
                results[i] = Prediction(str(paths[i]), error=reason)
            done += len(ok) + len(errors)
            sink(ev.TaskProgress(TASK, done, len(paths)))
        return [r for r in results if r is not None] + skipped_predictions(left_out)


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 < float(threshold) <= 1.0:
        raise ConfigError(f"Uncertain-below threshold: expected a probability above 0 and at most 1, "
                          f"received {threshold}.", "For example 0.6: answers less sure than 60% become 'uncertain'.")


@dataclass(frozen=True)
class ClassifyOptions:
    """How :func:`classify` answers.

    top_k : how many (label, probability) pairs each prediction keeps.
    batch_size : images per forward pass.
    uncertain_below : a "not sure" threshold: a top probability below it marks the prediction
        ``uncertain`` (the run's probabilities are temperature-calibrated when it had enough validation images).
    """

    top_k: int = 3
    batch_size: int = 32
    uncertain_below: float | None = None


def classify(model_or_run: Classifier | str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]],
             options: ClassifyOptions = ClassifyOptions(), *, sink: ev.EventSink = ev.null_sink,
             cancel: CancelToken | None = None) -> list[Prediction]:
    """Classify image files with a trained model.

    Parameters
    ----------
    model_or_run : a :class:`Classifier`, a run folder or a ``.keras`` file.
    paths : image files and/or folders (expanded with :func:`expand_paths`).
    options : top-k, batch size and the "not sure" threshold (:class:`ClassifyOptions`).
    sink, cancel : progress and cooperative cancellation (checked per batch).

    Returns
    -------
    list[Prediction]
        One per image, in the order of :func:`expand_paths`; unreadable files have ``error`` set; then
        one ``skipped`` row per file the folders held that is not an image CNN Studio reads.

    Raises
    ------
    RunError, DatasetError
        The model cannot be loaded, or a path does not exist.
    Cancelled
        ``cancel`` was set.

    Events emitted
    --------------
    ``TaskProgress("Classifying", done, total)`` after every batch.
    """
    clf = model_or_run if isinstance(model_or_run, Classifier) else Classifier.load(model_or_run)
    return clf.classify(paths, top_k=options.top_k, batch_size=options.batch_size,
                        uncertain_below=options.uncertain_below, sink=sink, cancel=cancel)


def write_csv(predictions: Sequence[Prediction], path: str | os.PathLike[str], *, answer_column: bool = False) -> Path:
    """Write predictions as CSV atomically: ``path,top1,p1,top2,p2,...,error`` (with ``answer_column``, an
    ``answer`` column after ``path``: the label or "uncertain")."""
    k = max((len(p.top) for p in predictions), default=1)
    header = ["path"] + (["answer"] if answer_column else [])
    for i in range(1, k + 1):
        header += [f"top{i}", f"p{i}"]
    rows: list[list[Any]] = [header + ["error"]]
    for p in predictions:
        row: list[Any] = [p.path] + ([p.answer or ""] if answer_column else [])
        for i in range(k):
            row += [p.top[i][0], f"{p.top[i][1]:.6f}"] if i < len(p.top) else ["", ""]
        rows.append(row + [p.error or ""])
    return write_text(path, csv_text(rows))
