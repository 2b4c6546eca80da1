"""Heartbeat: how long the Qt event loop is kept from running, measured with a 10 ms QTimer.

Shared by bench/ui_latency.py and bench/classify_latency.py. Each gap between two beats is
recorded (in ms) under the current ``phase``; a gap much longer than the interval is a freeze the
user sees. ``busy`` records, per gap, the CPU time the GUI thread itself used in it: on a shared
machine a long gap with little of it was the thread waiting for a core, not the app's own work.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QTimer


class Heartbeat:
    """A QTimer firing every ``interval_ms``; ``gaps[phase]`` holds the measured gaps in ms."""

    def __init__(self, interval_ms: int = 10, phase: str = "all") -> None:
        self.interval_ms = interval_ms
        self.phase = phase
        self.gaps: dict[str, list[float]] = {}
        self.busy: dict[str, list[float]] = {}
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)

    def _beat(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.setdefault(self.phase, []).append((now - self._last) * 1000)
        self.busy.setdefault(self.phase, []).append((cpu - self._last_cpu) * 1000)
        self._last, self._last_cpu = now, cpu

    def start(self) -> None:
        self._last, self._last_cpu = time.perf_counter(), time.thread_time()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def every_gap(self) -> np.ndarray:
        return np.asarray([g for values in self.gaps.values() for g in values])

    def every_busy(self) -> np.ndarray:
        return np.asarray([g for values in self.busy.values() for g in values])


def stats(gaps) -> str:
    """``beats median p99 max`` of ``gaps`` as table cells."""
    a = np.asarray(gaps)
    return f"{len(a):>6} {np.median(a):>10.1f} {np.percentile(a, 99):>8.1f} {a.max():>8.1f}"


HEADER = f"{'beats':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}"
