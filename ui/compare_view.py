"""CompareView: two or more runs side by side (File → Runs…, select several, Compare…).

Their validation curves overlaid (accuracy and loss per epoch, one colour per run, training dashed),
their settings in one table with the rows that differ highlighted (or only those, with
"Only differences"), and their metrics in one table. The reading and diffing is the engine's
:func:`cnn_studio.runs.compare.compare_runs` (Qt-free, no TensorFlow); this view only shows it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pyqtgraph as pg
from cnn_studio.ui.widgets.screen_fit import resize_to_fit
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.runs.compare import RunComparison, compare_runs

RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
DIFF_BACKGROUND = "#ffe9b3"  # amber: this setting is not the same in every run


def _text(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "–"
    return str(value)


class CompareView(QDialog):
    """The comparison of ``run_dirs`` (two or more run folders)."""

    def __init__(self, run_dirs: Sequence[str | os.PathLike[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.comparison: RunComparison = compare_runs(*run_dirs)
        names = [r.name for r in self.comparison.runs]
        self.setWindowTitle("Compare runs — " + ", ".join(names))
        resize_to_fit(self, 1180, 800)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self._make_plots())
        split.addWidget(self._make_tables(names))
        split.setSizes([330, 470])
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"<b>Comparing {len(names)} runs</b>: " + ", ".join(names)))
        lay.addWidget(split, 1)
        lay.addLayout(self._make_bottom())

    # ---------------------------------------------------------------- layout
    def _make_plots(self) -> QWidget:
        """The accuracy and loss plots side by side, one colour per run."""
        self.accuracy_plot = pg.PlotWidget(title="Accuracy (solid: validation, dashed: training)")
        self.loss_plot = pg.PlotWidget(title="Loss (solid: validation, dashed: training)")
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}  # (run name, metric) -> item
        for plot, corner in ((self.accuracy_plot, (-10, -10)), (self.loss_plot, (-10, 10))):
            plot.setBackground("w")
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.setLabel("bottom", "epoch")
            legend = plot.addLegend(offset=corner)  # one entry per run (its validation curve)
            legend.setBrush(pg.mkBrush(255, 255, 255, 220))
        self._plot_curves()
        plots = QWidget()
        plots_row = QHBoxLayout(plots)
        plots_row.setContentsMargins(0, 0, 0, 0)
        plots_row.addWidget(self.accuracy_plot)
        plots_row.addWidget(self.loss_plot)
        return plots

    def _make_tables(self, names: list[str]) -> QSplitter:
        """The settings table (differences highlighted, optionally only those) beside the metrics table."""
        self.settings_table = self._table(names)
        self.metrics_table = self._table(names)
        self.only_differences = QCheckBox("Only differences")
        self.only_differences.toggled.connect(self._on_only_differences_toggled)
        n_diff = len(self.comparison.differing)
        self.settings_label = QLabel(f"<b>Settings</b> — {n_diff} differ (highlighted)" if n_diff
                                     else "<b>Settings</b> — all the same")
        self._fill_settings()
        self._fill(self.metrics_table, self.comparison.metrics, set())

        settings_box = QWidget()
        sl = QVBoxLayout(settings_box)
        sl.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.settings_label)
        head.addStretch(1)
        head.addWidget(self.only_differences)
        sl.addLayout(head)
        sl.addWidget(self.settings_table)
        metrics_box = QWidget()
        ml = QVBoxLayout(metrics_box)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(QLabel("<b>Metrics</b> — best validation values from training; the rest from the "
                            "last evaluation (metrics.json)"))
        ml.addWidget(self.metrics_table)
        tables = QSplitter(Qt.Orientation.Horizontal)
        tables.addWidget(settings_box)
        tables.addWidget(metrics_box)
        tables.setSizes([600, 580])
        return tables

    def _make_bottom(self) -> QHBoxLayout:
        """The comparison's notes (e.g. runs on different data) and the Close button."""
        self.notes_label = QLabel("\n".join(self.comparison.notes))
        self.notes_label.setWordWrap(True)
        self.notes_label.setStyleSheet("color: #8d6e00")
        self.notes_label.setVisible(bool(self.comparison.notes))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.notes_label, 1)
        if not self.comparison.notes:
            bottom.addStretch(1)
        bottom.addWidget(close)
        return bottom

    # ---------------------------------------------------------------- content
    def _plot_curves(self) -> None:
        for i, (run, history) in enumerate(zip(self.comparison.runs, self.comparison.histories, strict=True)):
            colour = RUN_COLOURS[i % len(RUN_COLOURS)]
            epochs = [row.get("epoch", n) + 1 for n, row in enumerate(history)]
            for plot, key in ((self.accuracy_plot, "accuracy"), (self.loss_plot, "loss")):
                for prefix, style in (("val_", Qt.PenStyle.SolidLine), ("", Qt.PenStyle.DashLine)):
                    points = [(x, row[prefix + key]) for x, row in zip(epochs, history, strict=True)
                              if prefix + key in row]
                    if not points:
                        continue
                    item = plot.plot([p[0] for p in points], [p[1] for p in points],
                                     name=run.name if prefix else None,
                                     pen=pg.mkPen(colour, width=2.5 if prefix else 1.2, style=style),
                                     symbol="o" if prefix else None, symbolSize=5, symbolBrush=colour)
                    self.curves[(run.name, prefix + key)] = item

    def _table(self, names: list[str]) -> QTableWidget:
        t = QTableWidget(0, len(names))
        t.setHorizontalHeaderLabels(names)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        t.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        return t

    def _fill(self, table: QTableWidget, rows, highlight: set[str]) -> None:
        table.setRowCount(len(rows))
        table.setVerticalHeaderLabels([name for name, _ in rows])
        bold = QFont()
        bold.setBold(True)
        for r, (name, values) in enumerate(rows):
            header = table.verticalHeaderItem(r)
            if name in highlight:
                header.setFont(bold)
            for c, value in enumerate(values):
                item = QTableWidgetItem(_text(value))
                item.setToolTip(f"{name}: {_text(value)}")
                if name in highlight:
                    item.setBackground(QBrush(QColor(DIFF_BACKGROUND)))
                    item.setFont(bold)
                table.setItem(r, c, item)

    def _fill_settings(self) -> None:
        rows = self.comparison.settings
        if self.only_differences.isChecked():
            rows = tuple(row for row in rows if row[0] in self.comparison.differing)
        self._fill(self.settings_table, rows, set(self.comparison.differing))

    def _on_only_differences_toggled(self, _checked: bool) -> None:
        self._fill_settings()

    def highlighted_settings(self) -> list[str]:
        """Names of the settings rows shown highlighted (the ones that differ)."""
        out = []
        for r in range(self.settings_table.rowCount()):
            item = self.settings_table.item(r, 0)
            if item is not None and item.background().color() == QColor(DIFF_BACKGROUND):
                out.append(self.settings_table.verticalHeaderItem(r).text())
        return out
