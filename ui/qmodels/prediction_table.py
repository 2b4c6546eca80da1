"""PredictionTableModel: the Classify step's results as a table (file, best label, runners-up, problem).

Rows follow the order images were dropped; classifying the same file again updates its row.
Sort through :func:`cnn_studio.ui.qmodels.rows.sortable` (confidence sorts as a number).
"""

from __future__ import annotations

from typing import Any

from cnn_studio.ui.qmodels.rows import SORT_ROLE, Index, RowsTableModel
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from cnn_studio.data.records import display_name

COLUMNS = ("Image", "Label", "Probability", "Second guess", "Third guess", "Problem")
PATH_ROLE = Qt.ItemDataRole.UserRole + 1


def _guess(top: list, i: int) -> str:
    return f"{top[i][0]} ({top[i][1]:.0%})" if len(top) > i else ""


class PredictionTableModel(RowsTableModel):
    """Rows of :class:`cnn_studio.predict.predictor.Prediction` (anything with path, top, error)."""

    columns = COLUMNS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._row_of: dict[str, int] = {}

    def add_predictions(self, predictions) -> None:
        """Append new images; a path already shown gets its row replaced."""
        for pred in predictions:
            row = self._row_of.get(pred.path)
            if row is None:
                self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
                self._row_of[pred.path] = len(self._rows)
                self._rows.append(pred)
                self.endInsertRows()
            else:
                self._rows[row] = pred
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def _after_clear(self) -> None:
        self._row_of = {}

    def prediction(self, row: int):
        return self._rows[row]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        pred = self._rows[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            if col == 0:
                return display_name(pred.path)
            if col == 1:
                if getattr(pred, "uncertain", False):
                    return "uncertain"
                return pred.top[0][0] if pred.top else "—"
            if col == 2:
                if role == SORT_ROLE:
                    return pred.top[0][1] if pred.top else -1.0
                return f"{pred.top[0][1]:.1%}" if pred.top else ""
            if col in (3, 4):
                return _guess(pred.top, col - 2)
            return pred.error or ""
        if role == PATH_ROLE:
            return pred.path
        if role == Qt.ItemDataRole.ToolTipRole:
            if getattr(pred, "uncertain", False):
                return f"{pred.path}\nNot sure: the best guess, {pred.top[0][0]} ({pred.top[0][1]:.0%}), is below the threshold."
            return f"{pred.path}\nCould not read this file: {pred.error}" if pred.error else pred.path
        if role == Qt.ItemDataRole.ForegroundRole and pred.error:
            return QColor("#b91c1c")
        if role == Qt.ItemDataRole.ForegroundRole and getattr(pred, "uncertain", False):
            return QColor("#b26a00")
        return None
