"""TrainingCurves: live loss and accuracy plots (train + val per epoch, smoothed per-batch loss).

The live curve: Keras reports the *running mean* of the loss over the epoch so far, which
flattens out late in an epoch and hides what the last batches did. From two running means
(m_j after j batches, m_k after k) the mean loss of just batches j+1..k is (k·m_k − j·m_j)/(k − j);
those interval losses are smoothed with an exponential moving average, bias-corrected as in
TensorBoard/Adam (divided by 1 − ema^n) so the curve does not start from zero or lag its first points.

Plot items are created once; events only append to our own numpy-backed lists and mark what
changed, and a 10 Hz timer pushes the arrays with ``setData`` (pyqtgraph's scrolling-plot pattern; no
redraw per event). Only what changed is pushed — a batch touches the loss plot alone — and the axes
are ranged here, not by pyqtgraph's auto-range, which moved them on every push: each move re-laid out
both plots' ticks and labels, the longest stall of the window while training (``bench/ui_latency.py``).
The x axis ends at the current epoch's end (it moves once an epoch); the loss axis moves only when
the curves leave it or fill less than half of it (:func:`loss_range`).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QWidget

from cnn_studio.core import events as ev

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"
BATCH_COLOUR = "#9ecae1"


def interval_loss(prev_step: int, prev_mean: float, step: int, mean: float) -> float | None:
    """Mean loss of batches ``prev_step+1 .. step`` from the running means after each (None if no new batch)."""
    if step <= prev_step:
        return None
    return (step * mean - prev_step * prev_mean) / (step - prev_step)


def loss_range(current: tuple[float, float] | None, lo: float, hi: float) -> tuple[float, float] | None:
    """The loss axis for data from ``lo`` to ``hi``: None keeps ``current`` (the data fits and fills at
    least half of it), else a range with 10 % room above and below.

    Examples
    --------
    >>> loss_range(None, 0.5, 1.5)
    (0.4, 1.6)
    >>> loss_range((0.4, 1.6), 0.6, 1.5) is None
    True
    >>> loss_range((0.4, 1.6), 0.2, 0.5)
    (0.17, 0.53)
    """
    if current is not None and current[0] <= lo and hi <= current[1] and hi - lo >= (current[1] - current[0]) / 2:
        return None
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 0.05)
    return round(lo - pad, 6), round(hi + pad, 6)


class TrainingCurves(QWidget):
    """Two plots side by side: loss (with per-batch EMA) and accuracy, x = epoch (1-based).

    Feed it engine events with :meth:`add_event`; :meth:`clear` before a new run.
    """

    def __init__(self, parent: QWidget | None = None, ema: float = 0.6, refresh_hz: float = 10.0) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.ema = ema
        self.loss_plot = pg.PlotWidget(title="Loss (lower is better)")
        self.acc_plot = pg.PlotWidget(title="Accuracy (higher is better)")
        for plot, ylabel in ((self.loss_plot, "loss"), (self.acc_plot, "accuracy")):
            plot.setLabel("bottom", "epoch")
            plot.setLabel("left", ylabel)
            plot.showGrid(x=True, y=True, alpha=0.25)
            for side in ("left", "bottom"):  # major and minor grid lines: the faint third level cost ~30 %
                plot.getAxis(side).setStyle(maxTickLevel=1)  # of every relayout and ~45 % of every repaint
            plot.addLegend(offset=(-10, 10))
            plot.setMinimumHeight(180)
        for plot in (self.loss_plot, self.acc_plot):
            plot.disableAutoRange()
        self.acc_plot.setYRange(0, 1)
        pen = lambda c, w=2, **k: pg.mkPen(c, width=w, **k)  # noqa: E731
        self.batch_loss_curve = self.loss_plot.plot(name="training (live)", pen=pen(BATCH_COLOUR, 1))
        self.train_loss_curve = self.loss_plot.plot(name="training", pen=pen(TRAIN_COLOUR), symbol="o", symbolSize=6,
                                                    symbolBrush=TRAIN_COLOUR)
        self.val_loss_curve = self.loss_plot.plot(name="validation", pen=pen(VAL_COLOUR), symbol="s", symbolSize=6,
                                                  symbolBrush=VAL_COLOUR)
        self.train_acc_curve = self.acc_plot.plot(name="training", pen=pen(TRAIN_COLOUR), symbol="o", symbolSize=6,
                                                  symbolBrush=TRAIN_COLOUR)
        self.val_acc_curve = self.acc_plot.plot(name="validation", pen=pen(VAL_COLOUR), symbol="s", symbolSize=6,
                                                symbolBrush=VAL_COLOUR)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.loss_plot)
        lay.addWidget(self.acc_plot)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / refresh_hz))
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.clear()

    def clear(self) -> None:
        """Forget all points (a new run starts)."""
        self._epochs: list[float] = []
        self._series: dict[str, list[float]] = {k: [] for k in ("loss", "val_loss", "accuracy", "val_accuracy")}
        self._batch_x: list[float] = []
        self._batch_y: list[float] = []
        self._ema_raw = 0.0
        self._ema_n = 0
        self._last_mean: tuple = ((None, None), 0, 0.0)  # ((phase, epoch), batches done, running mean)
        self._x_end = 0  # the x axis' end (whole epochs) and the loss axis, as last set here
        self._loss_range: tuple[float, float] | None = None
        self._dirty = {"batch", "epochs"}
        self.refresh()

    def add_event(self, event: object) -> None:
        """Take one engine event; only BatchEnded and EpochEnded change the plots."""
        if isinstance(event, ev.BatchEnded):
            mean = event.logs.get("loss")
            if mean is None or not math.isfinite(mean) or event.step <= 0:
                return
            key = (event.phase, event.epoch)
            prev_step, prev_mean = (self._last_mean[1], self._last_mean[2]) if self._last_mean[0] == key else (0, 0.0)
            loss = interval_loss(prev_step, prev_mean, event.step, mean)
            if loss is None:
                return
            self._last_mean = (key, event.step, mean)
            self._ema_n += 1
            self._ema_raw = self.ema * self._ema_raw + (1 - self.ema) * loss
            steps = max(event.steps, event.step, 1)
            self._batch_x.append(event.epoch + event.step / steps)
            self._batch_y.append(self._ema_raw / (1 - self.ema ** self._ema_n))
            self._dirty.add("batch")
        elif isinstance(event, ev.EpochEnded):
            self._epochs.append(event.epoch + 1)
            for key, values in self._series.items():
                v = event.logs.get(key, event.logs.get(key.replace("accuracy", "acc"), float("nan")))
                values.append(float(v))
            self._dirty.add("epochs")

    def add_history(self, history: list[dict[str, float]]) -> None:
        """Fill the epoch curves from a finished run's ``history.csv`` rows."""
        for row in history:
            epoch = int(row.get("epoch", len(self._epochs)))
            self.add_event(ev.EpochEnded(phase="", epoch=epoch, epochs=len(history), logs=row))
        self.refresh()

    def refresh(self, everything: bool = False) -> None:
        """Push the arrays that changed (``everything``: all of them) to their plot items and move the axes
        if needed (the 10 Hz timer)."""
        if everything:
            self._dirty |= {"batch", "epochs"}
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        self._fit_axes()
        if "epochs" in dirty:
            x = np.asarray(self._epochs, dtype=float)
            for curve, key in ((self.train_loss_curve, "loss"), (self.val_loss_curve, "val_loss"),
                               (self.train_acc_curve, "accuracy"), (self.val_acc_curve, "val_accuracy")):
                y = np.asarray(self._series[key], dtype=float)
                ok = np.isfinite(y)
                curve.setData(x[ok], y[ok])
        if "batch" in dirty:
            self.batch_loss_curve.setData(np.asarray(self._batch_x, dtype=float),
                                          np.asarray(self._batch_y, dtype=float))

    def _fit_axes(self) -> None:
        """x: 0 to the end of the current epoch (at least 1); loss: see :func:`loss_range`."""
        x_end = max(1, math.ceil(max(max(self._epochs, default=0.0), max(self._batch_x, default=0.0))))
        if x_end != self._x_end:
            self._x_end = x_end
            for plot in (self.loss_plot, self.acc_plot):
                plot.setXRange(0, x_end, padding=0.02)
        losses = np.asarray(self._batch_y + self._series["loss"] + self._series["val_loss"], dtype=float)
        losses = losses[np.isfinite(losses)]
        if len(losses):
            fitted = loss_range(self._loss_range, float(losses.min()), float(losses.max()))
            if fitted is not None:
                self._loss_range = fitted
                self.loss_plot.setYRange(*fitted, padding=0)

    @property
    def n_epochs(self) -> int:
        return len(self._epochs)
