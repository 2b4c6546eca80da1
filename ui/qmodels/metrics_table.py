"""MetricsTableModel: per-class precision / recall / F1 / ROC AUC / support as a sortable Qt model.

Numbers are kept as numbers under ``Qt.UserRole`` (``SORT_ROLE``) so a
``QSortFilterProxyModel`` sorts 0.95 above 0.9, and shown as text with a plain-words tooltip.
"""

from __future__ import annotations

from typing import Any

from cnn_studio.ui.qmodels.rows import SORT_ROLE, Index, RowsTableModel
from PySide6.QtCore import Qt

COLUMNS = ("Class", "Precision", "Recall", "F1", "ROC AUC", "Images")
HELP = {
    "Class": "The class (folder name) this row is about.",
    "Precision": "When the model says this class, how often it is right.",
    "Recall": "Of the images that really are this class, how many the model found.",
    "F1": "The balance of precision and recall (1.0 = perfect).",
    "ROC AUC": "How well the model ranks this class above the others: 1.0 = perfect, 0.5 = guessing.",
    "Images": "How many evaluation images belong to this class.",
}

class MetricsTableModel(RowsTableModel):
    """One row per class from ``Metrics.per_class`` (+ its ROC AUC when known)."""

    columns = COLUMNS
    column_help = HELP

    def set_metrics(self, per_class: list[dict], roc_auc: dict | None = None) -> None:
        """Replace the rows with ``per_class`` entries ``{name, precision, recall, f1, support}``."""
        roc_auc = roc_auc if isinstance(roc_auc, dict) else {}
        self.beginResetModel()
        self._rows = [(str(r["name"]), float(r["precision"]), float(r["recall"]), float(r["f1"]),
                       None if roc_auc.get(r["name"]) is None else float(roc_auc[r["name"]]), int(r["support"]))
                      for r in per_class]
        self.endResetModel()

    def row_values(self, row: int) -> tuple:
        """The raw values of ``row`` (name, precision, recall, f1, auc or None, support)."""
        return self._rows[row]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._rows[index.row()][index.column()]
        col = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if value is None:
                return "–"
            return f"{value:.3f}" if isinstance(value, float) else str(value)
        if role == SORT_ROLE:
            return -1.0 if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return HELP[col]
        return None
