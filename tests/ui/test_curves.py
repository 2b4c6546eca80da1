"""TrainingCurves: epoch points and the smoothed per-batch loss reach the plot items, only when refreshed."""

from __future__ import annotations

import math

from cnn_studio.ui.widgets.curves import TrainingCurves

from cnn_studio.core import events as ev


def test_epoch_and_batch_events_become_curve_data(qtbot):
    w = TrainingCurves(refresh_hz=1)
    qtbot.addWidget(w)
    # running means as Keras reports them: batch 1 loss 2.0, batch 2 loss 1.0 → means 2.0, 1.5
    for step, mean in ((1, 2.0), (2, 1.5)):
        w.add_event(ev.BatchEnded("scratch", 0, step, 2, {"loss": mean}))
    w.add_event(ev.EpochEnded("scratch", 0, 2, {"loss": 1.5, "accuracy": 0.5, "val_loss": 1.7, "val_accuracy": 0.4}))
    w.add_event(ev.EpochEnded("scratch", 1, 2, {"loss": 1.0, "accuracy": 0.8}))  # no val this epoch
    assert len(w.train_loss_curve.getData()[0] or []) == 0  # nothing drawn before the timer's refresh
    w.refresh()
    x, y = w.train_loss_curve.getData()
    assert list(x) == [1.0, 2.0] and list(y) == [1.5, 1.0]
    vx, vy = w.val_acc_curve.getData()
    assert list(vx) == [1.0] and list(vy) == [0.4]  # missing values are left out, not plotted as 0
    bx, by = w.batch_loss_curve.getData()
    assert list(bx) == [0.5, 1.0]
    # each point smooths the *batch* losses (2.0 then 1.0), bias-corrected: the first point is the
    # first batch's loss, not 0.4 × 2.0 and not the flat running mean
    a = w.ema
    assert math.isclose(by[0], 2.0)
    assert math.isclose(by[1], (a * (1 - a) * 2.0 + (1 - a) * 1.0) / (1 - a**2))
    assert by[1] < 1.5  # below the running mean: the second batch's improvement shows


def test_live_curve_restarts_each_epoch_and_skips_repeats(qtbot):
    w = TrainingCurves(refresh_hz=1)
    qtbot.addWidget(w)
    w.add_event(ev.BatchEnded("head", 0, 4, 4, {"loss": 1.0}))
    w.add_event(ev.BatchEnded("head", 0, 4, 4, {"loss": 1.0}))  # same step again: no new point
    w.add_event(ev.BatchEnded("head", 1, 2, 4, {"loss": 0.5}))  # new epoch: the mean starts over
    w.refresh()
    bx, by = w.batch_loss_curve.getData()
    assert list(bx) == [1.0, 1.5]
    assert math.isclose(by[1], (w.ema * (1 - w.ema) * 1.0 + (1 - w.ema) * 0.5) / (1 - w.ema**2))


def test_clear_and_timer_refresh(qtbot):
    w = TrainingCurves(refresh_hz=50)
    qtbot.addWidget(w)
    w.add_event(ev.EpochEnded("head", 0, 1, {"loss": 0.3}))
    qtbot.waitUntil(lambda: len(w.train_loss_curve.getData()[0] or []) == 1, timeout=2000)
    w.add_event(ev.BatchEnded("head", 0, 0, 1, {"loss": float("nan")}))  # ignored, not a crash
    w.clear()
    assert w.n_epochs == 0 and len(w.train_loss_curve.getData()[0] or []) == 0


def _shown_curves(qtbot) -> TrainingCurves:
    w = TrainingCurves(refresh_hz=1)
    qtbot.addWidget(w)
    w.resize(900, 400)
    w.show()
    qtbot.waitExposed(w)
    return w


def _push(w, event) -> None:
    from PySide6.QtWidgets import QApplication

    w.add_event(event)
    w.refresh()
    QApplication.processEvents()  # pyqtgraph's auto-range moved the axes when it painted


def test_batches_within_an_epoch_move_no_axis_and_leave_the_accuracy_plot_alone(qtbot):
    """Issue 20, item 8: every pushed batch re-ranged both plots, re-laying out their ticks (the longest
    stall while training); now the x axis moves once an epoch and the loss axis when the curve leaves it."""
    w = _shown_curves(qtbot)
    _push(w, ev.EpochEnded("head", 0, 3, {"loss": 1.0, "val_loss": 1.1, "accuracy": 0.5, "val_accuracy": 0.4}))
    _push(w, ev.BatchEnded("head", 1, 1, 8, {"loss": 0.9}))
    ranges = (w.loss_plot.viewRange(), w.acc_plot.viewRange())
    pushed = []
    for curve in (w.train_loss_curve, w.val_loss_curve, w.train_acc_curve, w.val_acc_curve):
        curve.setData = lambda *a, _pushed=pushed, **k: _pushed.append(a)
    for step, mean in ((2, 0.95), (4, 0.95), (6, 0.95), (8, 0.95)):  # inside the loss axis
        _push(w, ev.BatchEnded("head", 1, step, 8, {"loss": mean}))
    assert (w.loss_plot.viewRange(), w.acc_plot.viewRange()) == ranges
    assert pushed == [], "a batch changes only the live loss curve"
    assert list(w.batch_loss_curve.getData()[0]) == [1.125, 1.25, 1.5, 1.75, 2.0]
    x_end = ranges[0][0][1]
    assert 2 <= x_end < 2.1, "the x axis ends at the current epoch's end"
    _push(w, ev.BatchEnded("head", 2, 1, 8, {"loss": 0.8}))
    assert 3 <= w.loss_plot.viewRange()[0][1] < 3.1 and w.acc_plot.viewRange()[0] == w.loss_plot.viewRange()[0]


def test_the_loss_axis_moves_when_the_curves_leave_it_or_fill_less_than_half_of_it():
    from cnn_studio.ui.widgets.curves import loss_range

    assert loss_range(None, 0.5, 1.5) == (0.4, 1.6)
    assert loss_range((0.4, 1.6), 0.6, 1.5) is None  # inside, more than half used: kept
    assert loss_range((0.4, 1.6), 0.3, 1.5) == (0.18, 1.62)  # below it
    assert loss_range((0.4, 1.6), 0.2, 0.5) == (0.17, 0.53)  # a quarter of it used: closer
    assert loss_range(None, 0.7, 0.7) == (0.63, 0.77)  # a single value still gets a range
