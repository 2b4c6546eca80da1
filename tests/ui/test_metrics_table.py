"""The per-class metrics table sorts numbers as numbers."""

from __future__ import annotations

from PySide6.QtCore import Qt

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


def test_classes_of_eight_images_read_too_few_in_every_column_and_no_point_interval(qtbot):
    import numpy as np
    from cnn_studio.ui.qmodels.metrics_table import MetricsTableModel

    from cnn_studio.evaluation.evaluate import compute_metrics
    from cnn_studio.evaluation.intervals import TOO_FEW

    m = compute_metrics([0] * 8 + [1] * 8, np.array([[0.9, 0.1]] * 8 + [[0.1, 0.9]] * 8), ["a", "b"])
    model = MetricsTableModel()
    model.set_metrics(m.per_class, m.roc_auc, m.intervals)
    cells = [model.index(0, c).data() for c in range(1, 5)]  # precision, recall, F1, ROC AUC of "a"
    assert all(cell.startswith(TOO_FEW) for cell in cells), cells
    m = compute_metrics([0] * 12 + [1] * 12, np.array([[0.9, 0.1]] * 12 + [[0.1, 0.9]] * 12), ["a", "b"])
    model.set_metrics(m.per_class, m.roc_auc, m.intervals)
    cells = [model.index(0, c).data() for c in range(1, 5)]
    assert all(cell.startswith("1.00 (95% CI 0.76–1.00") for cell in cells), cells  # never "1.00–1.00"
