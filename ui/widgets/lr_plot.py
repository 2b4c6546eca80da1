"""The learning-rate finder's curve: loss against learning rate (log scale), the suggestion marked."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QSizePolicy


class LrFinderPlot(pg.PlotWidget):
    """Shows one :class:`~cnn_studio.core.events.LearningRateFound` (``show_finding``); hidden until then."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, title="Learning-rate finder")
        self.setObjectName("lr_finder_plot")
        self.setLogMode(x=True, y=False)
        self.setLabel("bottom", "learning rate")
        self.setLabel("left", "loss")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setMinimumHeight(140)
        self.setMaximumHeight(200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.curve = self.plot([], [], pen=pg.mkPen("#3b7dd8", width=2))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d8873b", width=2, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.addItem(self.marker)
        self.suggestion: float | None = None
        self.setVisible(False)

    def show_finding(self, rates, losses, suggestion: float, reason: str = "") -> None:
        self.curve.setData(list(rates), list(losses))
        self.marker.setValue(math.log10(suggestion))
        self.suggestion = suggestion
        self.setTitle(f"Learning-rate finder: {suggestion:.2g} for the new layer")
        self.setToolTip(f"Loss while the learning rate rose over about 100 batches. The dashed line is the rate "
                        f"training uses: {reason}.")
        self.setVisible(True)

    def clear_finding(self) -> None:
        self.curve.setData([], [])
        self.suggestion = None
        self.setVisible(False)
