"""Study-level answers: a study's slices' probabilities → one answer per study, its metrics, the slices that drove it.

A *study* is a NIfTI volume or a DICOM series (:mod:`cnn_studio.data.volumes`); the model sees its
slices one by one, as pictures. Here the slices' class probabilities are aggregated per study
(:data:`AGGREGATES`):

``"mean"`` (default)
    the average of the slices' probability vectors. Every slice counts alike; a finding seen in a
    quarter of the slices moves the average by a quarter of its weight.
``"max"``
    for each class, its highest probability over the slices, the vector then rescaled to sum to 1:
    one slice that shows a class clearly is enough for that class to weigh heavily, whatever the
    other slices say.

The slices that drove a study's answer (``top_slices``) are its slices with the highest
probability of the class the study was given, highest first.

:func:`study_metrics` computes the study-level figures that :class:`cnn_studio.evaluation.evaluate.Metrics`
stores under ``study``; :func:`predict_studies` classifies NIfTI files and DICOM series folders per
study, on top of :mod:`cnn_studio.predict.predictor` (the same model loading, decoding and resizing).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import ConfigError, DatasetError, ImageReadError
from cnn_studio.core.paths import RunLayout
from cnn_studio.data import formats
from cnn_studio.data.decode import DEFAULT_MAX_PIXELS
from cnn_studio.data.records import ImageRecord, VolumeSlicing
from cnn_studio.data.volumes import dicom_series, nifti_slice_records
from cnn_studio.evaluation.calibration import uncertain
from cnn_studio.evaluation.intervals import (
    balanced_accuracy,
    compare_with_guessing,
    describe,
    metric_intervals,
)
from cnn_studio.predict.predictor import (
    Classifier,
    TopAnswer,
    expand_paths,
    iter_image_batches,
    predict_probabilities,
)
from cnn_studio.runs.run_folder import open_run
from cnn_studio.training.config import STUDY_AGGREGATES

AGGREGATES = STUDY_AGGREGATES
"""How slice probabilities become a study's: the option list ``TrainConfig.study_aggregate`` takes."""

TOP_SLICES = 3
"""How many of the slices that drove a study's answer are named."""

STUDY_UNIT = ("study", "studies")
"""What study-level figures count, for :func:`cnn_studio.evaluation.intervals.describe`."""

TASK = "Classifying studies"
_EPS = 1e-12


# ---------------------------------------------------------------------------- aggregation


def aggregate(probabilities: np.ndarray, how: str = "mean") -> np.ndarray:
    """The study's probability vector from its slices' ``[n, C]`` probabilities (see the module docstring).

    Examples
    --------
    >>> aggregate(np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])).round(3).tolist()
    [0.533, 0.467]
    >>> aggregate(np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]), "max").round(3).tolist()
    [0.529, 0.471]
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"aggregate: expected [n >= 1, C] probabilities, received shape {p.shape}")
    if how == "mean":
        return p.mean(axis=0)
    if how == "max":
        m = p.max(axis=0)
        return m / max(float(m.sum()), _EPS)
    raise ConfigError(f"Study aggregate: expected one of {', '.join(AGGREGATES)}, received {how!r}.",
                      "Use 'mean' (the average of the slices) or 'max' (a class seen clearly in one slice counts).")


def top_slice_order(probabilities: np.ndarray, cls: int, k: int = TOP_SLICES) -> list[int]:
    """Row indices of the ``k`` slices with the highest probability of class ``cls``, highest first."""
    p = np.asarray(probabilities, dtype=np.float64)
    return [int(i) for i in np.argsort(-p[:, cls], kind="stable")[:k]]


@dataclass(frozen=True)
class StudyResult:
    """One study's aggregated answer: true label (-1 unknown), predicted class, probabilities, slices."""

    study: str
    label: int
    predicted: int
    probabilities: list[float]
    slices: int
    top_slices: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "label": self.label, "predicted": self.predicted,
                "probabilities": list(self.probabilities), "slices": self.slices, "top_slices": list(self.top_slices)}


def study_results(keys: Sequence[str], studies: Sequence[str | None], probabilities: np.ndarray,
                  labels: Sequence[int] | None = None, *, how: str = "mean",
                  top: int = TOP_SLICES) -> list[StudyResult]:
    """Group slices by study and aggregate them (slices without a study are left out).

    Parameters
    ----------
    keys : the slices' record keys (:attr:`ImageRecord.key`), row ``i`` of ``probabilities``.
    studies : each slice's study id (None: not a slice of a study).
    probabilities : ``[N, C]``.
    labels : the slices' true classes (a study takes its slices' most common one); None: unknown (-1).
    how : "mean" or "max" (:func:`aggregate`).
    top : how many driving slices to name.

    Returns
    -------
    list[StudyResult]
        In first-seen study order.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    rows: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(studies):
        if s:
            rows[s].append(i)
    out = []
    for study, idx in rows.items():
        sp = p[idx]
        agg = aggregate(sp, how)
        pred = int(np.argmax(agg))
        label = -1
        if labels is not None:
            counts = Counter(int(labels[i]) for i in idx)
            label = min(counts, key=lambda c: (-counts[c], c))
        out.append(StudyResult(study, label, pred, [float(v) for v in agg], len(idx),
                               [keys[idx[j]] for j in top_slice_order(sp, pred, top)]))
    return out


def per_class_rows(confusion: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """``{name, precision, recall, f1, support}`` per class from a confusion matrix (rows: true)."""
    conf = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(conf).astype(np.float64)
    support, predicted = conf.sum(axis=1), conf.sum(axis=0)
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, _EPS), 0.0)
    return [{"name": names[i], "precision": float(precision[i]), "recall": float(recall[i]),
             "f1": float(f1[i]), "support": int(support[i])} for i in range(len(names))]


def study_metrics(keys: Sequence[str], studies: Sequence[str | None], labels: Sequence[int],
                  probabilities: np.ndarray, class_names: Sequence[str], *, how: str = "mean",
                  top: int = TOP_SLICES) -> dict[str, Any]:
    """Study-level metrics, the ``Metrics.study`` dict; ``{}`` when no slice belongs to a study.

    Returns
    -------
    dict
        ``{"aggregate", "count", "accuracy", "balanced_accuracy", "per_class", "confusion",
        "studies": [{"study", "label", "predicted", "probabilities", "slices", "top_slices"}],
        "intervals", "chance"}``; ``balanced_accuracy`` is the mean recall over the classes that have
        studies. ``intervals`` holds the same estimates as the image-level ``Metrics.intervals``
        (95% interval, the number of studies behind the figure, "too few images to tell" under
        :data:`cnn_studio.evaluation.intervals.MIN_IMAGES` studies) plus ``balanced_accuracy``; ``chance``
        whether the study answers beat guessing (:func:`cnn_studio.evaluation.intervals.compare_with_guessing`).
    """
    results = study_results(keys, studies, probabilities, labels, how=how, top=top)
    if not results:
        return {}
    c = len(class_names)
    conf = np.zeros((c, c), np.int64)
    for r in results:
        conf[r.label, r.predicted] += 1
    rows = per_class_rows(conf, class_names)
    present = [row["recall"] for row in rows if row["support"] > 0]
    y = np.array([r.label for r in results], np.int64)
    pred = np.array([r.predicted for r in results], np.int64)
    intervals = metric_intervals(y, np.array([r.probabilities for r in results], np.float64), list(class_names))
    intervals["balanced_accuracy"] = balanced_accuracy(y, pred, c)
    return {"aggregate": how, "count": len(results),
            "accuracy": float(np.trace(conf) / len(results)),
            "balanced_accuracy": float(np.mean(present)) if present else 0.0,
            "per_class": rows, "confusion": conf.astype(int).tolist(),
            "studies": [r.to_dict() for r in results], "intervals": intervals,
            "chance": compare_with_guessing(y, pred, list(class_names), unit="studies")}


def _count(n: int) -> str:
    return f"{n} {STUDY_UNIT[0] if n == 1 else STUDY_UNIT[1]}"


def study_figures(study: dict[str, Any], digits: int = 3, sep: str = ", ") -> str:
    """"accuracy 0.917 (95% CI 0.646–0.985, 12 studies), balanced accuracy …": each study figure with its
    interval and the studies behind it, or "too few studies to tell" (bare numbers for a metrics.json
    from before study intervals)."""
    iv = study.get("intervals") or {}
    if not iv:
        return (f"accuracy {study.get('accuracy', 0):.{digits}f}{sep}"
                f"balanced accuracy {study.get('balanced_accuracy', 0):.{digits}f}")
    return (f"accuracy {describe(iv.get('accuracy'), digits, STUDY_UNIT)}{sep}"
            f"balanced accuracy {describe(iv.get('balanced_accuracy'), digits, STUDY_UNIT)}")


def study_text(study: dict[str, Any], class_names: Sequence[str]) -> list[str]:
    """The lines of a plain-text report for a ``Metrics.study`` dict (none when it is empty)."""
    if not study:
        return []
    how = {"mean": "the mean of its slices' probabilities", "max": "each class's highest slice probability"}
    lines = ["", f"study level: {study['count']} studies, each answered by "
                 f"{how.get(study['aggregate'], study['aggregate'])}"]
    lines.append("  study " + study_figures(study, 4, "\n  study "))
    chance = study.get("chance") or {}
    if chance and chance.get("verdict") != "better":
        lines.append(f"  WARNING: {chance['message']}")
        if chance.get("hint"):
            lines.append(f"    {chance['hint']}")
    w = max([len(n) for n in class_names] + [9])
    per_class = (study.get("intervals") or {}).get("per_class")
    if per_class:  # as the image-level report: each figure with its interval, or too few studies
        for row in study["per_class"]:
            est = per_class.get(row["name"], {})
            lines.append(f"  {row['name']} ({_count(row['support'])})")
            lines += [f"    {key:<9} {describe(est.get(key), 4, STUDY_UNIT)}" for key in ("precision", "recall", "f1")]
    else:
        lines.append(f"  {'class':<{w}}  precision  recall  f1      studies")
        for row in study["per_class"]:
            lines.append(f"  {row['name']:<{w}}  {row['precision']:.4f}     {row['recall']:.4f}  {row['f1']:.4f}  "
                         f"{row['support']:>7}")
    cw = max([len(n) for n in class_names] + [5])
    lines.append("  study confusion matrix (rows: true class, columns: predicted)")
    lines.append("  " + " " * w + "  " + " ".join(f"{n[:cw]:>{cw}}" for n in class_names))
    for name, row in zip(class_names, study["confusion"], strict=True):
        lines.append(f"  {name:<{w}}  " + " ".join(f"{v:>{cw}}" for v in row))
    wrong = [s for s in study["studies"] if s["label"] >= 0 and s["label"] != s["predicted"]]
    if wrong:
        lines.append("  wrong studies:")
        for s in wrong[:10]:
            lines.append(f"    {s['study']}: is {class_names[s['label']]}, predicted {class_names[s['predicted']]} "
                         f"({s['probabilities'][s['predicted']]:.2f}, {s['slices']} slices)")
    return lines


# ---------------------------------------------------------------------------- predict per study


@dataclass(frozen=True)
class StudyPrediction(TopAnswer):
    """The model's answer for one study (a NIfTI file or a DICOM series folder).

    ``top`` holds (class, probability) pairs of the aggregated probabilities, best first;
    ``top_slices`` the slices that drove it as (record key, probability of the answer) pairs,
    highest first; ``error`` says why the study could not be classified (the rest is then empty).
    """

    study: str
    top: list[tuple[str, float]] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    slices: int = 0
    top_slices: list[tuple[str, float]] = field(default_factory=list)
    aggregate: str = "mean"
    error: str | None = None
    uncertain: bool = False
    unreadable_slices: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "top": [[n, p] for n, p in self.top], "probabilities": list(self.probabilities),
                "slices": self.slices, "top_slices": [[k, p] for k, p in self.top_slices],
                "aggregate": self.aggregate, "error": self.error, "uncertain": self.uncertain,
                "unreadable_slices": self.unreadable_slices}


@dataclass(frozen=True)
class FoundStudies:
    """What :func:`find_studies` found: studies (id → slice records, or an error) and other image files."""

    studies: dict[str, list[ImageRecord] | str]
    images: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of files that are not images


def find_studies(paths: Sequence[str | os.PathLike[str]], slicing: VolumeSlicing | None = None) -> FoundStudies:
    """Sort files and folders into studies (NIfTI files, DICOM series of 2+ files) and plain images.

    NIfTI files (named, or found in folders) are studies of their own; the single-frame DICOM files
    of one folder that share a SeriesInstanceUID (two or more) form one study; every other
    readable file stays an image. ``slicing`` selects the slices (default: axis 2, content).

    Raises
    ------
    DatasetError
        A path does not exist.
    """
    from cnn_studio.data.medical import dicom_slice_info

    slicing = slicing or VolumeSlicing()
    skipped: list[tuple[str, str]] = []
    files = expand_paths(paths, skipped)
    studies: dict[str, list[ImageRecord] | str] = {}
    dicom_records: list[ImageRecord] = []
    infos: dict[str, Any] = {}
    others: list[Path] = []
    for f in files:
        reader = formats.reader_for(f) if f.is_file() else None
        if reader == formats.NIBABEL:
            try:
                recs, _ = nifti_slice_records(str(f), 0, slicing, max_pixels=DEFAULT_MAX_PIXELS)
                studies[str(f)] = recs
            except ImageReadError as exc:
                studies[str(f)] = exc.message
            except OSError as exc:
                studies[str(f)] = f"could not read {f.name}: {exc}"
            continue
        if reader == formats.PYDICOM:
            try:
                infos[str(f)] = dicom_slice_info(f)
                dicom_records.append(ImageRecord(path=str(f), label=0, fmt="DICOM"))
                continue
            except (ImageReadError, OSError):
                pass
        others.append(f)
    if dicom_records:
        grouped, skipped, _ = dicom_series(dicom_records, infos, slicing)
        for r in grouped:
            if r.study:
                entry = studies.setdefault(r.study, [])
                if isinstance(entry, list):
                    entry.append(r)
            else:
                others.append(Path(r.path))
        for s in skipped:
            studies[s.path] = s.detail
        others.sort(key=lambda p: files.index(p) if p in files else len(files))
    return FoundStudies(studies, others, skipped)


def run_settings(model_or_run: Any) -> tuple[VolumeSlicing, str]:
    """The run's slicing and study aggregate (defaults for a Classifier or a bare .keras file)."""
    if isinstance(model_or_run, (str, os.PathLike)):
        p = Path(model_or_run).expanduser()
        if p.is_dir() or (p.suffix == ".keras" and RunLayout(p.parent).is_run()):
            config = open_run(p if p.is_dir() else p.parent).config
            return config.slicing, config.study_aggregate
    return VolumeSlicing(), "mean"


def predict_studies(model_or_run: Any, paths: Sequence[str | os.PathLike[str]], *,
                    slicing: VolumeSlicing | None = None, aggregate_by: str | None = None, top_k: int = 3,
                    top_slices: int = TOP_SLICES, batch_size: int = 32, uncertain_below: float | None = None,
                    sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> list[StudyPrediction]:
    """Classify NIfTI files and DICOM series folders, one answer per study.

    Parameters
    ----------
    model_or_run : a :class:`cnn_studio.predict.predictor.Classifier`, a run folder or a ``.keras`` file.
    paths : NIfTI files, DICOM series folders, or folders holding them (searched recursively).
    slicing, aggregate_by : default the run's ``slice_axis``/``slices`` and ``study_aggregate``
        (for a Classifier or a bare model: axis 2, "content", "mean").
    top_k : classes kept in ``top``; top_slices : driving slices named per study.
    uncertain_below : a "not sure" threshold on the study's top probability.

    Returns
    -------
    list[StudyPrediction]
        One per study found, in the order found; a study none of whose slices could be read has
        ``error`` set. Plain images among ``paths`` are not answered here (use ``classify``).

    Raises
    ------
    DatasetError
        A path does not exist, or no study was found.
    Cancelled
        ``cancel`` was set (checked per batch).

    Events emitted
    --------------
    ``TaskProgress("Classifying studies", done, total)`` per batch of slices.

    Examples
    --------
    >>> [s.label for s in predict_studies("runs/mri", ["new/sub-09.nii.gz"])]  # doctest: +SKIP
    ['lesion']
    """
    if uncertain_below is not None and not 0.0 < float(uncertain_below) <= 1.0:
        raise ConfigError(f"Uncertain-below threshold: expected a probability above 0 and at most 1, "
                          f"received {uncertain_below}.", "For example 0.6.")
    run_slicing, run_how = run_settings(model_or_run)
    slicing = slicing or run_slicing
    how = aggregate_by or run_how
    aggregate(np.ones((1, 1)), how)  # an unknown aggregate is a ConfigError before any work
    clf = model_or_run if isinstance(model_or_run, Classifier) else Classifier.load(model_or_run)
    found = find_studies(paths, slicing)
    if not found.studies:
        raise DatasetError(f"No NIfTI volume or DICOM series was found in {', '.join(map(str, paths))}.",
                           "Give .nii/.nii.gz files, or folders holding the DICOM files of a series "
                           "(two or more files with the same SeriesInstanceUID).")
    return classify_studies(clf, found, aggregate_by=how, top_k=top_k, top_slices=top_slices,
                            batch_size=batch_size, uncertain_below=uncertain_below, sink=sink, cancel=cancel)


def classify_studies(clf: Classifier, found: FoundStudies, *, aggregate_by: str = "mean", top_k: int = 3,
                     top_slices: int = TOP_SLICES, batch_size: int = 32, uncertain_below: float | None = None,
                     sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> list[StudyPrediction]:
    """Classify the studies :func:`find_studies` found with a loaded classifier (see :func:`predict_studies`)."""
    how = aggregate_by
    names = clf.class_names
    keys = [r.key for recs in found.studies.values() if isinstance(recs, list) for r in recs]
    study_of = [r.study for recs in found.studies.values() if isinstance(recs, list) for r in recs]
    probs = np.zeros((len(keys), len(names)))
    ok = np.zeros(len(keys), bool)
    sink(ev.TaskProgress(TASK, 0, len(keys)))
    done = 0
    for idx, images, errors in iter_image_batches(keys, clf.image_size, clf.resize, batch_size):
        raise_if_cancelled(cancel)
        if idx:
            probs[idx] = predict_probabilities(clf.model, images)
            ok[idx] = True
        done += len(idx) + len(errors)
        sink(ev.TaskProgress(TASK, done, len(keys)))
    top_k = max(1, min(int(top_k), len(names)))
    out: list[StudyPrediction] = []
    for study, recs in found.studies.items():
        if isinstance(recs, str):
            out.append(StudyPrediction(study, aggregate=how, error=recs))
            continue
        rows = [i for i, s in enumerate(study_of) if s == study]
        good = [i for i in rows if ok[i]]
        if not good:
            out.append(StudyPrediction(study, aggregate=how, slices=0, unreadable_slices=len(rows),
                                       error=f"none of its {len(rows)} slices could be read"))
            continue
        agg = aggregate(probs[good], how)
        order = np.argsort(-agg, kind="stable")[:top_k]
        pred = int(order[0])
        drove = [(keys[good[j]], float(probs[good[j], pred])) for j in top_slice_order(probs[good], pred, top_slices)]
        out.append(StudyPrediction(study, [(names[j], float(agg[j])) for j in order], [float(v) for v in agg],
                                   len(good), drove, how, None, uncertain(float(agg[pred]), uncertain_below),
                                   len(rows) - len(good)))
    return out
