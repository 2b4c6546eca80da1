"""TrainingCurves: epoch points and the smoothed per-batch loss reach the plot items, only when refreshed."""

from __future__ import annotations

import math

from cnn_studio.ui.widgets.curves import TrainingCurves

from cnn_studio import events as ev


def test_epoch_and_batch_events_become_curve_data(qtbot):
    w = TrainingCurves(refresh_hz=1)
    qtbot.addWidget(w)
    for step, loss in enumerate((2.0, 1.0)):
        w.add_event(ev.BatchEnded("scratch", 0, step, 2, {"loss": loss}))
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
    assert by[0] == 2.0 and math.isclose(by[1], 0.9 * 2.0 + 0.1 * 1.0)  # EMA


def test_clear_and_timer_refresh(qtbot):
    w = TrainingCurves(refresh_hz=50)
    qtbot.addWidget(w)
    w.add_event(ev.EpochEnded("head", 0, 1, {"loss": 0.3}))
    qtbot.waitUntil(lambda: len(w.train_loss_curve.getData()[0] or []) == 1, timeout=2000)
    w.add_event(ev.BatchEnded("head", 0, 0, 1, {"loss": float("nan")}))  # ignored, not a crash
    w.clear()
    assert w.n_epochs == 0 and len(w.train_loss_curve.getData()[0] or []) == 0
