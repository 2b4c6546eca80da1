"""Robustness curves and first-layer filter tiles."""

from __future__ import annotations

import numpy as np


def test_robustness_curves_and_filter_tiles():
    from cnn_studio.ui.pages.evaluate_page import robustness_curves, tile_filters

    report = {"clean_accuracy": 0.9, "rows": [
        {"perturbation": "noise", "level": 10, "accuracy": 0.8},
        {"perturbation": "noise", "level": 30, "accuracy": 0.5},
        {"perturbation": "blur", "level": 1.0, "accuracy": 0.85}]}
    curves = robustness_curves(report)
    assert curves["noise"] == ([0.0, 1.0, 2.0], [0.9, 0.8, 0.5]) and curves["blur"] == ([0.0, 1.0], [0.9, 0.85])
    filters = np.random.default_rng(0).random((10, 3, 3, 3))
    tiled = tile_filters(filters, scale=4, cols=8)
    assert tiled.dtype == np.uint8 and tiled.shape == (2 * 14, 8 * 14, 3)
