"""RowsTableModel: the shared part of the read-only, sortable tables over a Python list of rows.

Subclasses set ``columns`` (and optionally ``column_help`` tooltips) and implement ``data``;
``SORT_ROLE`` carries numbers as numbers so :func:`sortable`'s proxy sorts 0.95 above 0.9.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

SORT_ROLE = Qt.ItemDataRole.UserRole

Index = QModelIndex | QPersistentModelIndex


class RowsTableModel(QAbstractTableModel):
    """A table of ``self._rows`` (one Python object per row) with fixed ``columns``."""

    columns: tuple[str, ...] = ()
    column_help: dict[str, str] = {}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list = []

    def clear(self) -> None:
        """No rows."""
        self.beginResetModel()
        self._rows = []
        self._after_clear()
        self.endResetModel()

    def _after_clear(self) -> None:
        """Subclasses reset their own bookkeeping here (inside the model reset)."""

    # ------------------------------------------------------------------ Qt model interface
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt signature
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt signature
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.columns):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.columns[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.column_help.get(self.columns[section])
        return None


def sortable(model: QAbstractTableModel, parent=None) -> QSortFilterProxyModel:
    """A proxy that sorts ``model`` by its ``SORT_ROLE`` values (numbers as numbers)."""
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    return proxy
