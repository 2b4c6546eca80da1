"""The heat map view blends the overlay and checks sizes."""

from __future__ import annotations

import numpy as np
import pytest
from studio_testkit import make_class_image


def test_heatmap_view_blends_and_checks_sizes(qtbot):
    from cnn_studio.ui.widgets.heatmap_view import HeatmapView, legend_strip

    view = HeatmapView(128)
    qtbot.addWidget(view)
    original = np.asarray(make_class_image(0, 40))
    heat = np.zeros((40, 40), np.float32)
    heat[:20, :20] = 1.0
    view.set_images(original, heat)
    view.opacity.setValue(0)
    assert (view.blended() == original).all()
    view.opacity.setValue(100)
    shown = view.blended()
    assert (shown[5, 5] != original[5, 5]).any() and shown[5, 5, 0] > shown[5, 5, 2]  # hot = red
    assert shown[35, 35, 2] > shown[35, 35, 0]  # cold = blue
    assert not view.pixmap().isNull()
    with pytest.raises(ValueError):
        view.set_images(original, np.zeros((10, 10), np.float32))
    ramp = legend_strip(64, 4)
    assert ramp.shape == (4, 64, 3) and ramp[0, 0, 2] > ramp[0, 0, 0] and ramp[0, -1, 0] > ramp[0, -1, 2]
