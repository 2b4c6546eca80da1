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

:func:`study_metrics` computes the study-level figures that :class:`cnn_studio.evaluation.metrics.Metrics`
stores under ``study``; :mod:`cnn_studio.predict.studies` classifies NIfTI files and DICOM series
folders per study with the same aggregation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_studio.core.errors import ConfigError
from cnn_studio.evaluation.intervals import (
    balanced_accuracy,
    compare_with_guessing,
    describe,
    metric_intervals,
)
from cnn_studio.training.config import STUDY_AGGREGATES

AGGREGATES = STUDY_AGGREGATES
"""How slice probabilities become a study's: the option list ``TrainConfig.study_aggregate`` takes."""

TOP_SLICES = 3
"""How many of the slices that drove a study's answer are named."""

STUDY_UNIT = ("study", "studies")
"""What study-level figures count, for :func:`cnn_studio.evaluation.intervals.describe`."""

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
                  probabilities: np.ndarray, class_names: Sequence[str], *, how: str = "mean") -> dict[str, Any]:
    """Study-level metrics, the ``Metrics.study`` dict; ``{}`` when no slice belongs to a study
    (each study names its :data:`TOP_SLICES` driving slices).

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
    results = study_results(keys, studies, probabilities, labels, how=how)
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
