"""A trained model + labeled images → :class:`Metrics`: accuracy, per-class precision/recall/F1,
confusion matrix, one-vs-rest ROC AUC, top-k accuracy and the most confidently wrong images.

The numbers are computed with numpy only (:func:`compute_metrics`), so they can be checked on
hand-made predictions. Images are named by their record key (:attr:`ImageRecord.key`: the path, or
``path#slice=AXIS:INDEX`` for a slice of a volume). When the images are slices of studies (NIfTI
volumes, DICOM series), study-level figures are computed too (:mod:`cnn_studio.evaluation.studies`) and
stored in ``Metrics.study``. :func:`evaluate_run` evaluates a run folder on its own test (else
validation) images or on another labeled folder, and stores ``metrics.json`` in the run folder.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import DatasetError, RunError
from cnn_studio.core.fsutil import write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.data.records import ImageRecord, VolumeSlicing
from cnn_studio.evaluation.calibration import ece, reliability, with_temperature
from cnn_studio.evaluation.intervals import TOO_FEW, compare_with_guessing, describe, metric_intervals
from cnn_studio.evaluation.review import read_review
from cnn_studio.evaluation.studies import per_class_rows, study_metrics, study_text
from cnn_studio.labels.corrections import AUTO, apply_corrections
from cnn_studio.labels.corrections import resolve as resolve_corrections
from cnn_studio.predict.predictor import iter_image_batches, predict_probabilities
from cnn_studio.runs.lock import RunLock
from cnn_studio.runs.run_folder import load_model, open_run, read_metrics

TASK = "Evaluating"
_EPS = 1e-12


@dataclass
class Metrics:
    """Evaluation results of one model on one set of images.

    ``per_class`` rows are ``{name, precision, recall, f1, support}``; ``confusion[i][j]`` counts
    images of true class ``i`` predicted as ``j``; ``roc_auc`` maps class name (and ``"macro"``) to
    the one-vs-rest AUC (None where a class has no positives or no negatives); ``top_k_accuracy``
    maps ``"2"``.. ``"5"`` to accuracies; ``top_losses`` are the most confidently wrong images
    (highest loss first); ``predictions`` hold ``{path, true, pred, confidence}`` for every image
    (the GUI opens a confusion cell with them); ``skipped`` the unreadable files.

    How sure the numbers are (see :mod:`cnn_studio.evaluation.intervals`): ``intervals`` holds a 95% interval
    and the number of images behind every figure above, and "too few images to tell" as its
    ``verdict`` where the images are too few; ``chance`` says whether the model beats guessing and
    always answering the largest class (``verdict`` "better", "unproven" or "not_better");
    ``calibration`` the expected calibration error of these probabilities, before and after the
    run's temperature scaling, with reliability bins; ``shortcuts`` the run's Grad-CAM shortcut
    check (from training; empty for older runs).

    ``study``: study-level results when the images are slices of studies (else ``{}``):
    ``{"aggregate", "count", "accuracy", "balanced_accuracy", "per_class", "confusion",
    "studies": [{"study", "label", "predicted", "probabilities", "slices", "top_slices"}]}``
    (:func:`cnn_studio.evaluation.studies.study_metrics`). Image names in ``predictions`` and ``top_losses``
    (their ``path``) are record keys; a slice's prediction also names its ``study``.
    """

    subset: str
    class_names: list[str]
    n_images: int
    accuracy: float
    loss: float
    per_class: list[dict[str, Any]]
    confusion: list[list[int]]
    roc_auc: dict[str, float | None]
    top_k_accuracy: dict[str, float]
    top_losses: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    source: str = ""
    created: str = ""
    intervals: dict[str, Any] = field(default_factory=dict)
    chance: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    shortcuts: dict[str, Any] = field(default_factory=dict)
    study: dict[str, Any] = field(default_factory=dict)

    @property
    def macro_f1(self) -> float:
        return float(np.mean([row["f1"] for row in self.per_class])) if self.per_class else 0.0

    def images_in_cell(self, true: int, pred: int) -> list[str]:
        """Keys (paths, or ``path#slice=AXIS:INDEX``) of the images of true class ``true`` predicted as ``pred`` (a confusion-matrix cell)."""
        return [p["path"] for p in self.predictions if p["true"] == true and p["pred"] == pred]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metrics:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_text(self) -> str:
        """A plain-text report: summary, per-class table, confusion matrix, worst mistakes."""
        if self.intervals:
            return self._text_with_intervals()
        names = self.class_names
        w = max([len(n) for n in names] + [9])
        lines = [f"Evaluated on {self._what()} ({self.subset}"
                 + (f", {len(self.skipped)} unreadable skipped" if self.skipped else "") + ")",
                 f"accuracy {self.accuracy:.4f}   loss {self.loss:.4f}   macro F1 {self.macro_f1:.4f}"
                 + (f"   macro ROC AUC {self.roc_auc['macro']:.4f}" if self.roc_auc.get("macro") is not None else "")]
        if self.top_k_accuracy:
            lines.append("   ".join(f"top-{k} accuracy {v:.4f}" for k, v in self.top_k_accuracy.items()))
        lines += study_text(self.study, names)
        lines += ["", f"{'class':<{w}}  precision  recall  f1      support  auc"]
        for row in self.per_class:
            auc = self.roc_auc.get(row["name"])
            lines.append(f"{row['name']:<{w}}  {row['precision']:.4f}     {row['recall']:.4f}  {row['f1']:.4f}  "
                         f"{row['support']:>7}  {'-' if auc is None else f'{auc:.4f}'}")
        return "\n".join(lines + self._text_tail())

    def _what(self) -> str:
        if self.study:
            return f"{self.n_images} slices of {self.study['count']} studies"
        return f"{self.n_images} images"

    def _text_with_intervals(self) -> str:
        """The report with a 95% interval and the image count behind every figure (or "too few images to tell")."""

        iv = self.intervals
        lines = [f"Evaluated on {self._what()} ({self.subset}"
                 + (f", {len(self.skipped)} unreadable skipped" if self.skipped else "") + ")",
                 f"accuracy {describe(iv.get('accuracy'), 4)}",
                 f"loss {self.loss:.4f}   macro F1 "
                 + (f"{self.macro_f1:.4f}" if all(not c.get("f1", {}).get("verdict")
                                                  for c in iv.get("per_class", {}).values())
                    else f"{TOO_FEW} (some class has too few images)"),
                 f"macro ROC AUC {describe(iv.get('roc_auc', {}).get('macro'), 4)}"]
        for k, est in iv.get("top_k_accuracy", {}).items():
            lines.append(f"top-{k} accuracy {describe(est, 4)}")
        if self.chance and self.chance.get("verdict") != "better":
            lines.append(f"WARNING: {self.chance['message']}")
            if self.chance.get("hint"):
                lines.append(f"  {self.chance['hint']}")
        cal = self.calibration
        if cal:
            lines.append(f"calibration error (ECE) {cal['ece']:.4f}"
                         + (f" (without temperature scaling {cal['ece_uncalibrated']:.4f}, T = {cal['temperature']:.3g})"
                            if cal.get("temperature", 1.0) != 1.0 else " (no temperature scaling)"))
        sc = self.shortcuts
        if sc and sc.get("suspected"):
            lines.append(f"WARNING: {sc['message']}")
            for ex in sc.get("examples", [])[:3]:
                lines.append(f"  e.g. {ex}")
        lines += study_text(self.study, self.class_names)
        lines += ["", f"95% intervals; {_rule(iv)}"]
        for row in self.per_class:
            est = iv.get("per_class", {}).get(row["name"], {})
            lines += ["", f"{row['name']} ({row['support']} images)"]
            for key in ("precision", "recall", "f1"):
                lines.append(f"  {key:<9} {describe(est.get(key), 4)}")
            lines.append(f"  {'ROC AUC':<9} {describe(iv.get('roc_auc', {}).get(row['name']), 4)}")
        return "\n".join(lines + self._text_tail())

    def _text_tail(self) -> list[str]:
        names = self.class_names
        w = max([len(n) for n in names] + [9])
        lines: list[str] = []
        cw = max([len(n) for n in names] + [5])
        lines += ["", "confusion matrix (rows: true class, columns: predicted)",
                  " " * w + "  " + " ".join(f"{n[:cw]:>{cw}}" for n in names)]
        for name, row in zip(names, self.confusion, strict=True):
            lines.append(f"{name:<{w}}  " + " ".join(f"{v:>{cw}}" for v in row))
        if self.top_losses:
            lines += ["", "most confidently wrong:"]
            for t in self.top_losses[:10]:
                lines.append(f"  {t['path']}: is {t['true']}, predicted {t['predicted']} "
                             f"({t['confidence']:.2f}, loss {t['loss']:.2f})")
        return lines


def _rule(iv: dict[str, Any]) -> str:
    """The "too few images" rule an evaluation was made with (older metrics.json: their own words)."""
    return iv.get("rule") or (f"a figure needs {iv.get('min_images')} images "
                              f"(an AUC {iv.get('min_auc_per_side')} of the class and of the rest)")


# ---------------------------------------------------------------------------- numbers


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
                    paths: Sequence[str] | None = None, *, subset: str = "", top_losses: int = 16,
                    skipped: Sequence[dict[str, str]] = (), source: str = "",
                    calibration_fit: dict[str, Any] | None = None, studies: Sequence[str | None] | None = None,
                    study_aggregate: str = "mean") -> Metrics:
    """All metrics from true labels and predicted probabilities (numpy only).

    Parameters
    ----------
    y_true : true class index per image.
    probabilities : ``[N, C]`` predicted probabilities (rows sum to 1).
    class_names : the ``C`` names in output order.
    paths : image keys (paths, or ``path#slice=AXIS:INDEX``) for top losses and per-image predictions;
        "#i" when omitted.
    top_losses : how many of the most confidently wrong images to keep.
    calibration_fit : the run's temperature-scaling record (``review.json["calibration"]``); when it was
        applied, ``probabilities`` are already scaled and the ECE without scaling is shown beside.
    studies : each image's study (None: not a slice of a study); with any, ``Metrics.study`` holds the
        study-level results, slices aggregated by ``study_aggregate`` ("mean" or "max").
    """
    names = list(class_names)
    c = len(names)
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64).reshape(len(y), c)
    paths = list(paths) if paths is not None else [f"#{i}" for i in range(len(y))]
    n = len(y)
    pred = p.argmax(axis=1) if n else np.zeros(0, np.int64)
    conf = np.bincount(y * c + pred, minlength=c * c).reshape(c, c) if n else np.zeros((c, c), np.int64)
    per_class = per_class_rows(conf, names)
    true_p = p[np.arange(n), y] if n else np.zeros(0)
    losses = -np.log(np.clip(true_p, _EPS, 1.0))
    aucs = roc_auc_ovr(y, p) if n else [None] * c
    defined = [a for a in aucs if a is not None]
    roc = {names[i]: aucs[i] for i in range(c)}
    roc["macro"] = float(np.mean(defined)) if defined else None
    top_k: dict[str, float] = {}
    if n:
        ranked = np.argsort(-p, axis=1, kind="stable")
        for k in range(2, min(5, c - 1) + 1):
            top_k[str(k)] = float(np.mean((ranked[:, :k] == y[:, None]).any(axis=1)))
    wrong = np.flatnonzero(pred != y)
    worst = wrong[np.argsort(-losses[wrong], kind="stable")][:top_losses]
    top = [{"path": paths[i], "true": names[y[i]], "predicted": names[pred[i]],
            "confidence": float(p[i, pred[i]]), "loss": float(losses[i])} for i in worst]
    preds = [{"path": paths[i], "true": int(y[i]), "pred": int(pred[i]), "confidence": float(p[i, pred[i]])}
             for i in range(n)]
    study: dict[str, Any] = {}
    if studies is not None and n and any(studies):
        studies = list(studies)
        for i, s in enumerate(studies):
            if s:
                preds[i]["study"] = s
        study = study_metrics(paths, studies, y, p, names, how=study_aggregate)

    return Metrics(subset=subset, class_names=names, n_images=n,
                   accuracy=float(np.mean(pred == y)) if n else 0.0,
                   loss=float(losses.mean()) if n else 0.0, per_class=per_class,
                   confusion=conf.astype(int).tolist(), roc_auc=roc, top_k_accuracy=top_k, top_losses=top,
                   predictions=preds, skipped=list(skipped), source=source,
                   created=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                   intervals=metric_intervals(y, p, names), chance=compare_with_guessing(y, pred, names),
                   calibration=calibration_summary(y, p, _temperature(calibration_fit), calibration_fit)
                   if n else {}, study=study)


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


# ---------------------------------------------------------------------------- model → metrics


def evaluate(model, records: Sequence[ImageRecord], class_names: Sequence[str], *, image_size: int,
             resize: str = "stretch", batch_size: int = 32, subset: str = "", top_losses: int = 16,
             calibration_fit: dict[str, Any] | None = None, study_aggregate: str = "mean",
             sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> Metrics:
    """Run ``model`` over labeled images and compute :class:`Metrics`.

    Parameters
    ----------
    model : a Keras classifier taking raw 0–255 RGB and returning probabilities.
    records : the images and their true labels (indices into ``class_names``).
    image_size, resize : as in training (the run's config).
    subset : a name stored with the metrics ("test", "val", a folder ...).
    study_aggregate : how slices of a study make its answer ("mean" or "max", :mod:`cnn_studio.evaluation.studies`).

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
    y: list[int] = []
    kept: list[str] = []
    kept_studies: list[str | None] = []
    probs: list[np.ndarray] = []
    skipped: list[dict[str, str]] = []
    sink(ev.TaskProgress(TASK, 0, len(records)))
    done = 0
    for ok, images, errors in iter_image_batches(paths, image_size, resize, batch_size):
        raise_if_cancelled(cancel)
        probs.append(predict_probabilities(model, images))
        y += [records[i].label for i in ok]
        kept += [paths[i] for i in ok]
        kept_studies += [records[i].study for i in ok]
        skipped += [{"path": paths[i], "reason": reason} for i, reason in errors.items()]
        done += len(ok) + len(errors)
        sink(ev.TaskProgress(TASK, done, len(records)))
    if not kept:
        raise DatasetError(f"None of the {len(records)} images to evaluate could be read.",
                           "Check the image files (run `cnn-studio scan` on the folder).")
    return compute_metrics(y, np.concatenate(probs), class_names, kept, subset=subset, top_losses=top_losses,
                           skipped=skipped, calibration_fit=calibration_fit, studies=kept_studies,
                           study_aggregate=study_aggregate)


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


def evaluate_run(run_dir: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None,
                 subset: str = "auto", batch_size: int = 32, sink: ev.EventSink = ev.null_sink,
                 cancel: CancelToken | None = None, corrections=AUTO) -> Metrics:
    """Evaluate a run's model and save ``metrics.json`` (atomically) in the run folder.

    Parameters
    ----------
    run_dir : a run folder written by training.
    data_dir : another labeled folder (class names must be among the run's); default the run's split.
    subset : "test", "val" or "auto" (test when the split has one, else val). Ignored with ``data_dir``.
    corrections : with ``data_dir``, the label review's decisions for that folder: "auto" (its own
        corrections file when the review queue wrote one), a corrections.csv path, or "none". The
        run's own split already carries the corrections it was trained with.

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
    if subset not in ("auto", "test", "val"):
        raise DatasetError(f"Subset: expected test, val or auto, received {subset!r}.")
    with RunLock(run.root, "evaluate"):  # the one writer of the folder while metrics.json is made
        return _evaluate_locked(run, data_dir, subset, batch_size, sink, cancel, corrections)


def _evaluate_locked(run, data_dir, subset: str, batch_size: int, sink: ev.EventSink,
                     cancel: CancelToken | None, corrections=AUTO) -> Metrics:
    names = list(run.class_names)
    if data_dir is not None:
        slicing = run.config.slicing
        records = _records_from_folder(data_dir, names, sink=sink, cancel=cancel, slicing=slicing,
                                       corrections=corrections)
        name, source = "folder", str(Path(data_dir).expanduser().absolute())
    else:
        if run.split is None:
            raise RunError(f"The run in {run.root} has no split.json, so its test images are unknown.",
                           "Evaluate on a labeled folder instead (--data FOLDER).")
        name = ("test" if run.split.test else "val") if subset == "auto" else subset
        records, source = list(run.split.subset(name)), "split"
        if not records:
            raise DatasetError(f"The run's {name} set is empty.",
                               "Use --subset val, or evaluate on a labeled folder (--data FOLDER).")
    sink(ev.StageChanged(TASK, "Loading model", str(run.model_path)))

    model = load_model(run.model_path)
    review = read_review(run.root)
    metrics = evaluate(model, records, names, image_size=run.image_size, resize=run.config.resize, batch_size=batch_size,
                       subset=name, calibration_fit=review.get("calibration"),
                       study_aggregate=str(getattr(run.config, "study_aggregate", "mean")), sink=sink, cancel=cancel)
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
