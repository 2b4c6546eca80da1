"""Confidence that means what it says: reliability bins, expected calibration error (ECE) and
temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).

Everything here is numpy on predicted probabilities. The temperature ``T`` is fitted on the
validation images by minimising their negative log-likelihood of ``softmax(log p / T)``; since
``log p`` differs from the logits only by a constant per image, that is exactly temperature
scaling of the logits. It is stored *inside* the model (:func:`apply_temperature_to_model` divides
the final Dense layer's kernel and bias by ``T``, so ``softmax(z / T)`` comes out with no new
layer): best.keras, every export and every consumer get calibrated probabilities, and
``safe_mode`` loading is unchanged. The class with the highest probability never changes.

Rules:

* ``T`` is searched in [:data:`T_MIN`, :data:`T_MAX`] = [0.25, 10]; outside that range the
  validation set is telling us more about its own size than about the model.
* It is fitted only with at least :data:`MIN_CALIBRATION_IMAGES` = 20 validation images, and
  applied only when it lowers the validation ECE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

N_BINS = 10
T_MIN, T_MAX = 0.25, 10.0
MIN_CALIBRATION_IMAGES = 20
_EPS = 1e-12


def with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: probabilities as the model gives them after dividing its logits by ``T``."""
    logp = np.log(np.clip(np.asarray(probabilities, np.float64), _EPS, 1.0)) / float(temperature)
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def nll(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(y, np.int64)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1.0)))) if len(y) else 0.0


def reliability(probabilities: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> list[dict[str, Any]]:
    """Reliability-diagram data: equal-width confidence bins with their count, mean confidence and accuracy.

    Each row: ``{low, high, count, confidence, accuracy}`` (confidence/accuracy None for an empty bin).
    """
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(y, np.int64)
    conf = p.max(axis=1) if len(y) else np.zeros(0)
    correct = (p.argmax(axis=1) == y) if len(y) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = which == b
        k = int(m.sum())
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": k,
                     "confidence": float(conf[m].mean()) if k else None,
                     "accuracy": float(correct[m].mean()) if k else None})
    return rows


def ece(probabilities: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error: the count-weighted mean |accuracy − confidence| over the bins."""
    rows = reliability(probabilities, y, n_bins)
    n = sum(r["count"] for r in rows)
    if not n:
        return 0.0
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]) / n)


def fit_temperature(probabilities: np.ndarray, y: np.ndarray) -> float:
    """The ``T`` in [T_MIN, T_MAX] minimising the NLL of ``softmax(log p / T)`` (a grid over log T, then
    golden-section refinement; the NLL is convex in 1/T)."""
    p = np.asarray(probabilities, np.float64)
    grid = np.exp(np.linspace(math.log(T_MIN), math.log(T_MAX), 61))
    losses = [nll(with_temperature(p, t), y) for t in grid]
    i = int(np.argmin(losses))
    lo, hi = math.log(grid[max(0, i - 1)]), math.log(grid[min(len(grid) - 1, i + 1)])
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    for _ in range(40):
        c, d = b - g * (b - a), a + g * (b - a)
        if nll(with_temperature(p, math.exp(c)), y) < nll(with_temperature(p, math.exp(d)), y):
            b = d
        else:
            a = c
    return float(min(T_MAX, max(T_MIN, math.exp((a + b) / 2))))


def calibrate(probabilities: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Fit temperature scaling on validation predictions and describe the result.

    Returns ``{temperature, applied, reason, n_images, ece_before, ece_after, nll_before, nll_after,
    bins_before, bins_after}``; ``applied`` is False (temperature 1) when there are fewer than
    ``MIN_CALIBRATION_IMAGES`` images or the fitted ``T`` does not lower the ECE.
    """
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(y, np.int64)
    n = len(y)
    before = {"ece_before": ece(p, y), "nll_before": nll(p, y), "bins_before": reliability(p, y)}
    if n < MIN_CALIBRATION_IMAGES:
        return {"temperature": 1.0, "applied": False, "n_images": n,
                "reason": f"too few validation images to calibrate ({n}; needs {MIN_CALIBRATION_IMAGES})",
                **before, "ece_after": before["ece_before"], "nll_after": before["nll_before"],
                "bins_after": before["bins_before"]}
    t = fit_temperature(p, y)
    q = with_temperature(p, t)
    after = {"ece_after": ece(q, y), "nll_after": nll(q, y), "bins_after": reliability(q, y)}
    applied = after["ece_after"] < before["ece_before"] and abs(t - 1.0) > 1e-3
    if not applied:
        return {"temperature": 1.0, "applied": False, "n_images": n, "fitted_temperature": t,
                "reason": "temperature scaling would not lower the calibration error", **before,
                "ece_after": before["ece_before"], "nll_after": before["nll_before"],
                "bins_after": before["bins_before"]}
    return {"temperature": t, "applied": True, "n_images": n, "reason": "", **before, **after}


def apply_temperature_to_model(model, temperature: float, layer: str = "predictions") -> None:
    """Divide the final softmax Dense layer's kernel and bias by ``temperature`` (in place).

    ``softmax((x·W + b) / T) == softmax(x·(W/T) + b/T)``: the saved model then outputs calibrated
    probabilities with no extra layer, so .keras safe-mode loading and every export keep working.
    """
    dense = model.get_layer(layer)
    dense.set_weights([w / float(temperature) for w in dense.get_weights()])


def uncertain(confidence: float, threshold: float | None) -> bool:
    """True when a prediction's top probability is below the "not sure" ``threshold`` (None: never)."""
    return threshold is not None and confidence < threshold
