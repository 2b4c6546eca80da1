"""The Classify step's prediction table: rows added, updated, errors flagged."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor


def test_prediction_table_adds_updates_and_flags_errors(qtbot):
    from cnn_studio.ui.qmodels.prediction_table import PATH_ROLE, PredictionTableModel
    from cnn_studio.ui.qmodels.rows import sortable

    from cnn_studio.predict.predictor import Prediction

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
