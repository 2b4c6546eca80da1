"""MetricsTableModel: per-class precision / recall / F1 / ROC AUC / support as a sortable Qt model.

Numbers are kept as numbers under ``Qt.UserRole`` (``SORT_ROLE``) so a
``QSortFilterProxyModel`` sorts 0.95 above 0.9, and shown as text with a plain-words tooltip.
With the evaluation's ``intervals`` each figure reads "0.75 (95% CI 0.41–0.93, 8 images)", or
"too few images to tell (4 images)" (:func:`cnn_studio.evaluation.intervals.describe`).
"""

from __future__ import annotations

from typing import Any

from cnn_studio.ui.qmodels.rows import SORT_ROLE, Index, RowsTableModel
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from cnn_studio.evaluation.intervals import describe

COLUMNS = ("Class", "Precision", "Recall", "F1", "ROC AUC", "Images")
HELP = {
    "Class": "The class (folder name) this row is about.",
    "Precision": "When the model says this class, how often it is right.",
    "Recall": "Of the images that really are this class, how many the model found.",
    "F1": "The balance of precision and recall (1.0 = perfect).",
    "ROC AUC": "How well the model ranks this class above the others: 1.0 = perfect, 0.5 = guessing.",
    "Images": "How many evaluation images belong to this class.",
}
INTERVAL_HELP = ("\nIn brackets: the 95% interval (the true value lies in it 19 times out of 20) and the number of "
                 "images behind the figure; with too few images the figure is not shown.")
FIGURES = ("precision", "recall", "f1")

class MetricsTableModel(RowsTableModel):
    """One row per class from ``Metrics.per_class`` (+ its ROC AUC when known)."""

    columns = COLUMNS
    column_help = HELP

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._estimates: list[tuple] = []

    def set_metrics(self, per_class: list[dict], roc_auc: dict | None = None, intervals: dict | None = None) -> None:
        """Replace the rows with ``per_class`` entries ``{name, precision, recall, f1, support}``;
        ``intervals`` is ``metrics.intervals`` (its ``per_class`` and ``roc_auc`` estimates)."""
        roc_auc = roc_auc if isinstance(roc_auc, dict) else {}
        intervals = intervals or {}
        self.beginResetModel()
        self._rows = [(str(r["name"]), float(r["precision"]), float(r["recall"]), float(r["f1"]),
                       None if roc_auc.get(r["name"]) is None else float(roc_auc[r["name"]]), int(r["support"]))
                      for r in per_class]
        self._estimates = []
        for r in per_class:
            est = (intervals.get("per_class") or {}).get(r["name"]) or {}
            self._estimates.append((None, *(est.get(k) for k in FIGURES),
                                    (intervals.get("roc_auc") or {}).get(r["name"]), None))
        self.endResetModel()

    def _after_clear(self) -> None:
        self._estimates = []

    def estimate(self, row: int, column: int) -> dict | None:
        """The interval estimate behind a cell (None without intervals, or for Class/Images)."""
        return self._estimates[row][column] if row < len(self._estimates) else None

    def row_values(self, row: int) -> tuple:
        """The raw values of ``row`` (name, precision, recall, f1, auc or None, support)."""
        return self._rows[row]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._rows[index.row()][index.column()]
        col = COLUMNS[index.column()]
        est = self.estimate(index.row(), index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            if est:
                return describe(est, 2)
            if value is None:
                return "–"
            return f"{value:.3f}" if isinstance(value, float) else str(value)
        if role == SORT_ROLE:
            return -1.0 if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and est and est.get("verdict"):
            return QColor("#6b7280")  # no figure: greyed
        if role == Qt.ItemDataRole.ToolTipRole:
            return HELP[col] + (INTERVAL_HELP if est else "")
        return None
