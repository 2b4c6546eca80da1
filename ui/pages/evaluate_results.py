"""The Evaluate step's engine calls, run in tasks (each loads what the run folder already holds, else runs the
job in a child process), and the headline of an evaluation in words."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout, job_log
from cnn_studio.evaluation.evaluate import load_metrics
from cnn_studio.evaluation.intervals import describe


def evaluate_or_load(run_dir, *, force: bool = False, sink, cancel):
    """metrics.json if present (and not ``force``), else a fresh evaluation (in a child process)."""

    if not force:
        metrics = load_metrics(run_dir)
        if metrics is not None:
            return metrics
    run_job("cnn_studio.evaluation.evaluate:evaluate_run", str(run_dir), sink=sink, cancel=cancel,
            log_path=job_log("evaluate", run_dir), label="evaluation")
    metrics = load_metrics(run_dir)
    if metrics is None:
        raise RunError(f"The evaluation finished but wrote no metrics.json in {run_dir}.",
                       "Check that the folder is writable, then press Evaluate again.")
    return metrics


def robustness_or_load(run_dir, *, force: bool = False, sink, cancel):
    """robustness.json if present (and not ``force``), else a fresh robustness check (as a dict)."""

    path = RunLayout(Path(run_dir)).robustness
    if not force and path.exists():
        report = read_json(path)
    else:
        report = run_job("cnn_studio.explain.robustness:run_robustness", str(run_dir), sink=sink, cancel=cancel,
                         log_path=job_log("robustness", run_dir), label="robustness check").to_dict()
    for ex in report.get("examples", []):  # pictures are stored relative to the run folder
        if ex.get("image") and not Path(ex["image"]).is_absolute():
            ex["image"] = str(Path(run_dir) / ex["image"])
    return report


def architecture_of(run_dir, *, sink, cancel):
    """(ArchitectureTable, first-layer filters tiled as a uint8 image or None), read in a child process.

    The model is loaded by :func:`cnn_studio.explain.views.architecture` in a one-shot child, so
    TensorFlow never loads in the app's process.
    """

    table, filters = run_job("cnn_studio.explain.views:architecture", str(run_dir), sink=sink, cancel=cancel,
                             log_path=job_log("architecture", run_dir), label="architecture")
    return table, tile_filters(filters) if filters is not None else None


def tile_filters(filters: np.ndarray, scale: int = 14, cols: int = 8) -> np.ndarray:
    """(N, k, k, 3) filters in [0, 1] → one uint8 image, each filter enlarged ``scale`` times."""
    n, k = filters.shape[0], filters.shape[1]
    cell = k * scale + 2
    rows = -(-n // cols)
    out = np.full((rows * cell, min(n, cols) * cell, 3), 255, np.uint8)
    for i, f in enumerate(filters):
        big = np.repeat(np.repeat(np.clip(f, 0, 1), scale, 0), scale, 1)
        r, c = divmod(i, cols)
        out[r * cell + 1 : r * cell + 1 + k * scale, c * cell + 1 : c * cell + 1 + k * scale] = (big * 255).astype(np.uint8)
    return out



def summary_html(metrics) -> str:
    """The headline figures, each as "value (95% CI lo–hi, n images)" or "too few images to tell"."""

    n, names = metrics.n_images, list(metrics.class_names)
    words = {"test": "test", "val": "validation"}.get(metrics.subset, metrics.subset)
    iv = metrics.intervals or {}
    if not iv:  # metrics from before intervals existed
        return (f"<b>The model is right {metrics.accuracy:.0%} of the time</b> on {n} {words} images it never "
                f"trained on ({len(names)} classes). Evaluate again to see how sure these numbers are.")
    acc = iv.get("accuracy") or {}
    head = (f"<b>The model is right {metrics.accuracy:.0%} of the time</b> on {n} {words} images it never trained "
            f"on ({len(names)} classes): ")
    if acc.get("verdict"):
        head += (f"<b>{acc['verdict']}</b> how good it really is ({n} images; a figure needs "
                 f"{iv.get('min_images', 10)}).")
    else:
        head += f"accuracy {describe(acc)}."
    parts = [head]
    top2 = (iv.get("top_k_accuracy") or {}).get("2")
    if top2 and len(names) > 2:
        parts.append(f"Right class among its top two guesses: {describe(top2)}.")
    auc = (iv.get("roc_auc") or {}).get("macro")
    if auc and auc.get("value") is not None:
        parts.append(f"Macro ROC AUC: {describe(auc)} (1.0 = perfect, 0.5 = guessing).")
    if metrics.skipped:
        parts.append(f"{len(metrics.skipped)} unreadable images were skipped.")
    parts.append(f"<span style='color:#6b7280'>In brackets: the 95% interval and the images behind the figure; "
                 f"{iv.get('rule', 'a figure needs 10 images')}.</span>")
    return " ".join(parts)
