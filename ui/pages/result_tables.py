"""Read-only, sortable tables of results (the Evaluate step's robustness and architecture tabs)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


def results_table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSortingEnabled(True)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def fill_table(table: QTableWidget, rows: list[list]) -> None:
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem()
            if isinstance(value, (int, float, np.floating, np.integer)):
                item.setData(Qt.ItemDataRole.DisplayRole, float(value) if isinstance(value, float) else int(value))
                if isinstance(value, float):
                    item.setText(f"{value:.3f}")
            else:
                item.setText(str(value))
                if len(str(value)) > 24:
                    item.setToolTip(str(value))  # a narrow column elides it
            table.setItem(r, c, item)
    table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # keep the given order
    table.setSortingEnabled(True)  # until the user clicks a column

