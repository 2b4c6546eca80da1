"""Widgets and Qt models of the Evaluate/Classify steps, with real data and no network."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from studio_testkit import make_class_image

PER_CLASS = [
    {"name": "cat", "precision": 0.9, "recall": 0.5, "f1": 0.64, "support": 10},
    {"name": "dog", "precision": 0.95, "recall": 1.0, "f1": 0.97, "support": 12},
    {"name": "fox", "precision": 0.1, "recall": 0.2, "f1": 0.13, "support": 3},
]


def test_metrics_table_sorts_numbers_as_numbers(qtbot):
    from cnn_studio.ui.qmodels.metrics_table import MetricsTableModel
    from cnn_studio.ui.qmodels.rows import sortable

    model = MetricsTableModel()
    model.set_metrics(PER_CLASS, {"cat": 0.8, "dog": 0.99})
    assert model.rowCount() == 3 and model.columnCount() == 6
    assert model.index(0, 1).data() == "0.900" and model.index(2, 4).data() == "–"  # no AUC for fox
    assert "how often it is right" in model.headerData(1, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    proxy = sortable(model)
    proxy.sort(1, Qt.SortOrder.DescendingOrder)  # precision: 0.95, 0.9, 0.1
    assert [proxy.index(r, 0).data() for r in range(3)] == ["dog", "cat", "fox"]
    proxy.sort(5, Qt.SortOrder.AscendingOrder)  # images: 3 < 10 < 12 (text would put "10" first)
    assert [proxy.index(r, 0).data() for r in range(3)] == ["fox", "cat", "dog"]
    model.clear()
    assert model.rowCount() == 0


def test_prediction_table_adds_updates_and_flags_errors(qtbot):
    from cnn_studio.ui.qmodels.prediction_table import PATH_ROLE, PredictionTableModel
    from cnn_studio.ui.qmodels.rows import sortable

    from cnn_studio.predict import Prediction

    model = PredictionTableModel()
    model.add_predictions([Prediction("/x/a.png", [("cat", 0.7), ("dog", 0.2), ("fox", 0.1)], [0.7, 0.2, 0.1]),
                           Prediction("/x/bad.jpg", error="not an image")])
    assert model.rowCount() == 2
    assert [model.index(0, c).data() for c in range(5)] == ["a.png", "cat", "70.0%", "dog (20%)", "fox (10%)"]
    assert model.index(1, 5).data() == "not an image" and model.index(1, 1).data() == "—"
    assert model.index(1, 0).data(Qt.ItemDataRole.ForegroundRole) == QColor("#b91c1c")
    assert model.index(0, 0).data(PATH_ROLE) == "/x/a.png"
    model.add_predictions([Prediction("/x/a.png", [("dog", 0.6), ("cat", 0.4)], [0.4, 0.6]),
                           Prediction("/x/c.png", [("fox", 0.9)], [0, 0, 0.9])])
    assert model.rowCount() == 3 and model.index(0, 1).data() == "dog"  # same file: row replaced
    proxy = sortable(model)
    proxy.sort(2, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(r, 0).data() for r in range(3)] == ["c.png", "a.png", "bad.jpg"]


def test_probability_bars_paint_the_answer_longest(qtbot):
    from cnn_studio.ui.widgets.probability_bars import ProbabilityBars

    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    bars.set_probabilities([("cat", 0.8), ("dog", 0.15), ("fox", 1.7)])
    assert bars.items()[2] == ("fox", 1.0)  # clipped
    bars.set_probabilities([("cat", 0.8), ("dog", 0.15)])
    bars.resize(300, bars.sizeHint().height())
    image = bars.grab().toImage()
    row = 6 + 10  # middle of the first bar
    blue = [x for x in range(image.width()) if image.pixelColor(x, row).name() == "#2563eb"]
    assert blue and 0.7 < len(blue) / (300 - 100 - 48 - 12) < 0.85
    bars.set_message("cannot be read")
    assert bars.items() == [] and bars.message() == "cannot be read"


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


def test_confusion_matrix_cells_colours_and_clicks(qtbot):
    from cnn_studio.ui.widgets.confusion_matrix import ConfusionMatrix, legend_html

    matrix = ConfusionMatrix()
    qtbot.addWidget(matrix)
    matrix.set_matrix([[8, 2], [0, 5]], ["cat", "dog"])
    assert matrix.item(0, 1).text() == "2\n20%"
    assert matrix.verticalHeaderItem(1).text() == "is dog" and matrix.horizontalHeaderItem(0).text() == "said cat"
    diagonal, mistake = matrix.item(0, 0).background().color(), matrix.item(0, 1).background().color()
    assert diagonal.blue() > diagonal.red() and mistake.red() > mistake.blue()
    assert matrix.item(1, 0).background().color() == QColor(255, 255, 255)  # no images: white
    matrix.show()
    with qtbot.waitSignal(matrix.cell_chosen) as blocker:
        qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton,
                         pos=matrix.visualItemRect(matrix.item(1, 0)).center())
    assert blocker.args == [1, 0]
    assert "mistakes" in legend_html()


def test_image_grid_thumbnails_placeholders_and_replacement(qtbot, tmp_path):
    from cnn_studio.ui.widgets.image_grid import ImageGrid, array_to_pixmap, thumbnail

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    make_class_image(1, 200).save(good)
    bad.write_bytes(b"nope")
    assert max(thumbnail(good, 64).width(), thumbnail(good, 64).height()) == 64
    tiny = tmp_path / "tiny.png"
    make_class_image(0, 20).save(tiny)  # a 20 px image in a 64 px cell: enlarged 3x with whole pixels
    t = thumbnail(tiny, 64).toImage()
    assert (t.width(), t.height()) == (60, 60)
    assert t.pixelColor(0, 0) == t.pixelColor(2, 2)  # one source pixel became a 3x3 block
    assert thumbnail(bad, 64).toImage().pixelColor(3, 3) == QColor("#d0d4da")
    grid = ImageGrid(64)
    qtbot.addWidget(grid)
    grid.add_image(good, "good")
    grid.add_image(bad, "bad")
    assert grid.paths() == [str(good), str(bad)]
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    grid.set_pixmap(str(good), array_to_pixmap(red))
    assert grid.items_for(str(good))[0].icon().pixmap(8).toImage().pixelColor(4, 4) == QColor(255, 0, 0)
    with qtbot.waitSignal(grid.image_activated) as blocker:
        grid.itemClicked.emit(grid.item(1))
    assert blocker.args == [str(bad)]


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


def test_shape_text_drops_the_batch_axis():
    from cnn_studio.ui.pages.evaluate_page import shape_text

    assert shape_text((None, 32, 32, 16)) == "32 × 32 × 16"
    assert shape_text((None, 4)) == "4"
    assert shape_text([(None, None, 8), (None, 2)]) == "? × 8"
