"""The Train step's progress row: the bar (epochs, or a long task's own), images/s, the elapsed clock and the
estimate of the time left."""

from __future__ import annotations

import time
from collections.abc import Callable

from cnn_studio.ui.pages.train_jobs import _fmt_duration
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


class TrainProgress(QWidget):
    """``progress`` and ``speed`` side by side; the clock ticks every second while ``running()`` says so."""

    def __init__(self, running: Callable[[], bool], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._running = running
        self._total_steps = 0
        self.steps_per_epoch = 0
        self._t0 = 0.0
        self._speed_text = ""  # "N images/s · " of the last batch
        self._left_text = ""  # "left ≈ m:ss" of the last estimate
        self._task_bar = False  # the bar shows a TaskProgress (feature computation, the check), not epochs
        self.clock = QTimer(self)  # the elapsed clock moves every second, whatever phase is running
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self._show_clock)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.speed = QLabel("")
        self.speed.setMinimumWidth(260)
        prog = QHBoxLayout(self)
        prog.setContentsMargins(0, 0, 0, 0)
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.speed)

    def start(self) -> None:
        """A run starts: a busy bar, no estimate yet, the clock from now."""
        self.progress.setRange(0, 0)
        self.speed.setText("")
        self._speed_text = self._left_text = ""
        self._t0, self._task_bar = time.monotonic(), False
        self.clock.start()

    def begin_epochs(self, epochs: int, steps: int) -> None:
        """Training proper starts: ``epochs`` of ``steps`` batches each."""
        self.steps_per_epoch = max(steps, 1)
        self._total_steps = max(epochs, 1) * self.steps_per_epoch
        self.progress.setRange(0, self._total_steps)
        self.progress.setValue(0)

    def show_task(self, e) -> None:
        """A long phase (features, the check after training): its own bar, images done / total and its estimate."""
        self._task_bar = True
        self.progress.setRange(0, max(e.total, 1))
        self.progress.setValue(min(e.done, max(e.total, 1)))
        self._speed_text = ""
        self._left_text = f"left ≈ {_fmt_duration(e.seconds_left)}" if e.seconds_left is not None else ""
        self._show_clock()

    def epoch_bar(self) -> None:
        """Back to the epochs' bar after a task's own (the head's epochs after the features)."""
        if self._task_bar and self._total_steps > 0:
            self._task_bar = False
            self.progress.setRange(0, self._total_steps)

    def _show_clock(self) -> None:
        if not self._running():
            self.clock.stop()
            return
        elapsed = time.monotonic() - self._t0
        self.speed.setText(f"{self._speed_text}elapsed {_fmt_duration(elapsed)}"
                           + (f" · {self._left_text}" if self._left_text else ""))

    def show_progress(self, done: int, images_per_s: float, fixed: bool) -> None:
        """``done`` batches of all; ``fixed``: the schedule runs every epoch (else it may stop sooner)."""
        if self._total_steps <= 0:
            return
        self.epoch_bar()
        done = min(done, self._total_steps)
        self.progress.setValue(done)
        elapsed = time.monotonic() - self._t0
        eta = elapsed / done * (self._total_steps - done) if done > 0 else float("nan")
        self._speed_text = f"{images_per_s:,.0f} images/s · " if images_per_s > 0 else ""
        self._left_text = f"left ≈ {_fmt_duration(eta)}" if fixed else \
            f"at most {_fmt_duration(eta)} left (stops sooner when it stops improving)"
        self._show_clock()
