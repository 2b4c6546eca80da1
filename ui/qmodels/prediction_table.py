"""PredictionTableModel: the Classify step's results as a table (file, best label, runners-up, problem).

Rows follow the order images were dropped; classifying the same file again updates its row.
Sort through :func:`cnn_studio.ui.qmodels.metrics_table.sortable` (confidence sorts as a number).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnn_studio.ui.qmodels.metrics_table import SORT_ROLE
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

COLUMNS = ("Image", "Label", "Probability", "Second guess", "Third guess", "Problem")
PATH_ROLE = Qt.ItemDataRole.UserRole + 1

Index = QModelIndex | QPersistentModelIndex


def _guess(top: list, i: int) -> str:
    return f"{top[i][0]} ({top[i][1]:.0%})" if len(top) > i else ""


class PredictionTableModel(QAbstractTableModel):
    """Rows of :class:`cnn_studio.predict.Prediction` (anything with path, top, error)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list = []
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

    def clear(self) -> None:
        self.beginResetModel()
        self._rows, self._row_of = [], {}
        self.endResetModel()

    def prediction(self, row: int):
        return self._rows[row]

    # ------------------------------------------------------------------ Qt model interface
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt signature
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        pred = self._rows[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            if col == 0:
                return Path(pred.path).name
            if col == 1:
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
            return f"{pred.path}\nCould not read this file: {pred.error}" if pred.error else pred.path
        if role == Qt.ItemDataRole.ForegroundRole and pred.error:
            return QColor("#b91c1c")
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt signature
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None
