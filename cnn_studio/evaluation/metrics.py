"""The results of one evaluation (:class:`Metrics`) and their plain-text report.

Computed by :func:`cnn_studio.evaluation.scoring.compute_metrics` (the numbers) and
:func:`cnn_studio.evaluation.evaluate.evaluate_run` (a run folder → ``metrics.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cnn_studio.evaluation.intervals import TOO_FEW, describe
from cnn_studio.evaluation.studies import study_text


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
