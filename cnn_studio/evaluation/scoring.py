"""True labels + predicted probabilities → :class:`~cnn_studio.evaluation.metrics.Metrics` (numpy only).

Accuracy, per-class precision/recall/F1, confusion matrix, one-vs-rest ROC AUC, top-k accuracy, the
most confidently wrong images, how sure each figure is (:mod:`cnn_studio.evaluation.intervals`), the
calibration error and, for slices of studies, the study-level figures
(:mod:`cnn_studio.evaluation.studies`). Everything here can be checked on hand-made predictions.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_studio.evaluation.calibration import ece, reliability, with_temperature
from cnn_studio.evaluation.intervals import compare_with_guessing, metric_intervals
from cnn_studio.evaluation.metrics import Metrics
from cnn_studio.evaluation.studies import per_class_rows, study_metrics

_EPS = 1e-12


@dataclass(frozen=True)
class MetricsOptions:
    """What :func:`compute_metrics` records beside the numbers, and its choices.

    subset : a name stored with the metrics ("test", "val", a folder ...).
    top_losses : how many of the most confidently wrong images to keep.
    skipped : the unreadable files (``{path, reason}``), stored as they are.
    source : where the images came from ("split", a folder), stored as it is.
    calibration_fit : the run's temperature-scaling record (``review.json["calibration"]``); when it was
        applied, the probabilities are already scaled and the ECE without scaling is shown beside.
    study_aggregate : how slices of a study make its answer ("mean" or "max").
    """

    subset: str = ""
    top_losses: int = 16
    skipped: Sequence[dict[str, str]] = ()
    source: str = ""
    calibration_fit: dict[str, Any] | None = None
    study_aggregate: str = "mean"


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (like scipy.stats.rankdata)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # rank of the last element of each tie group
    return (last - (counts - 1) / 2.0)[inverse].astype(np.float64)


def roc_auc_ovr(y_true: np.ndarray, scores: np.ndarray) -> list[float | None]:
    """One-vs-rest ROC AUC per class (Mann–Whitney U with tie-averaged ranks); None when undefined.

    Parameters
    ----------
    y_true : int array ``[N]`` of true class indices.
    scores : float array ``[N, C]`` of probabilities.
    """
    out: list[float | None] = []
    for c in range(scores.shape[1]):
        pos = y_true == c
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            out.append(None)
            continue
        r = _ranks(scores[:, c])
        u = r[pos].sum() - n_pos * (n_pos + 1) / 2.0
        out.append(float(u / (n_pos * n_neg)))
    return out


def compute_metrics(y_true: Sequence[int], probabilities: np.ndarray, class_names: Sequence[str],
                    paths: Sequence[str] | None = None, *, studies: Sequence[str | None] | None = None,
                    options: MetricsOptions = MetricsOptions()) -> Metrics:
    """All metrics from true labels and predicted probabilities (numpy only).

    Parameters
    ----------
    y_true : true class index per image.
    probabilities : ``[N, C]`` predicted probabilities (rows sum to 1).
    class_names : the ``C`` names in output order.
    paths : image keys (paths, or ``path#slice=AXIS:INDEX``) for top losses and per-image predictions;
        "#i" when omitted.
    studies : each image's study (None: not a slice of a study); with any, ``Metrics.study`` holds the
        study-level results, slices aggregated by ``options.study_aggregate`` ("mean" or "max").
    options : what is stored beside the numbers, how many top losses are kept, the calibration fit
        (:class:`MetricsOptions`).
    """
    names = list(class_names)
    c = len(names)
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64).reshape(len(y), c)
    paths = list(paths) if paths is not None else [f"#{i}" for i in range(len(y))]
    n = len(y)
    pred = p.argmax(axis=1) if n else np.zeros(0, np.int64)
    conf = np.bincount(y * c + pred, minlength=c * c).reshape(c, c) if n else np.zeros((c, c), np.int64)
    losses = -np.log(np.clip(p[np.arange(n), y] if n else np.zeros(0), _EPS, 1.0))
    preds = [{"path": paths[i], "true": int(y[i]), "pred": int(pred[i]), "confidence": float(p[i, pred[i]])}
             for i in range(n)]
    study: dict[str, Any] = {}
    if studies is not None and n and any(studies):
        studies = list(studies)
        for i, s in enumerate(studies):
            if s:
                preds[i]["study"] = s
        study = study_metrics(paths, studies, y, p, names, how=options.study_aggregate)
    fit = options.calibration_fit
    return Metrics(subset=options.subset, class_names=names, n_images=n,
                   accuracy=float(np.mean(pred == y)) if n else 0.0,
                   loss=float(losses.mean()) if n else 0.0, per_class=per_class_rows(conf, names),
                   confusion=conf.astype(int).tolist(), roc_auc=_roc_by_class(y, p, names),
                   top_k_accuracy=_top_k(y, p), top_losses=_worst(y, p, losses, paths, names, options.top_losses),
                   predictions=preds, skipped=list(options.skipped), source=options.source,
                   created=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                   intervals=metric_intervals(y, p, names), chance=compare_with_guessing(y, pred, names),
                   calibration=calibration_summary(y, p, _temperature(fit), fit) if n else {}, study=study)


def _roc_by_class(y: np.ndarray, p: np.ndarray, names: list[str]) -> dict[str, float | None]:
    """One-vs-rest AUC by class name, and their mean over the defined ones as ``"macro"``."""
    aucs = roc_auc_ovr(y, p) if len(y) else [None] * len(names)
    defined = [a for a in aucs if a is not None]
    roc = {names[i]: aucs[i] for i in range(len(names))}
    roc["macro"] = float(np.mean(defined)) if defined else None
    return roc


def _top_k(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Top-k accuracy for k = 2 .. min(5, classes - 1), keyed ``"2"``.. ``"5"``."""
    top_k: dict[str, float] = {}
    if len(y):
        ranked = np.argsort(-p, axis=1, kind="stable")
        for k in range(2, min(5, p.shape[1] - 1) + 1):
            top_k[str(k)] = float(np.mean((ranked[:, :k] == y[:, None]).any(axis=1)))
    return top_k


def _worst(y: np.ndarray, p: np.ndarray, losses: np.ndarray, paths: list[str], names: list[str],
           keep: int) -> list[dict[str, Any]]:
    """The ``keep`` most confidently wrong images (``losses``: each image's), highest loss first."""
    pred = p.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    worst = wrong[np.argsort(-losses[wrong], kind="stable")][:keep]
    return [{"path": paths[i], "true": names[y[i]], "predicted": names[pred[i]],
             "confidence": float(p[i, pred[i]]), "loss": float(losses[i])} for i in worst]


def _temperature(fit: dict[str, Any] | None) -> float:
    return float(fit.get("temperature", 1.0)) if fit and fit.get("applied") else 1.0


def calibration_summary(y: Sequence[int], probabilities: np.ndarray, temperature: float = 1.0,
                        fitted: dict[str, Any] | None = None) -> dict[str, Any]:
    """ECE and reliability bins of ``probabilities`` (the model's, already temperature-scaled by
    ``temperature``), and the same without the scaling (``softmax(T · log p)``), plus the validation
    fit it came from (``fitted``: the run's review record)."""

    y = np.asarray(y, np.int64)
    p = np.asarray(probabilities, np.float64)
    raw = with_temperature(p, 1.0 / temperature) if temperature != 1.0 else p
    out = {"temperature": float(temperature), "ece": ece(p, y), "ece_uncalibrated": ece(raw, y),
           "bins": reliability(p, y), "bins_uncalibrated": reliability(raw, y), "n_images": int(len(y))}
    if fitted:
        out["fitted_on_validation"] = {k: fitted[k] for k in ("n_images", "ece_before", "ece_after", "applied",
                                                              "reason") if k in fitted}
    return out
