"""Progress of a long phase as ``TaskProgress`` events with images done / total and a time estimate.

Used by the frozen-phase feature computation (``feature_cache.compute_features``) and the check
after training (``review.py``), so no long phase holds a frozen bar: the first event goes out
before the first batch (0 of N, "starting"), then at most ``per_s`` events a second, and always
the last one.
"""

from __future__ import annotations

import time

from cnn_studio.core import events as ev


def _left(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"about {max(seconds, 1)} s left"
    m, s = divmod(seconds, 60)
    return f"about {m} min {s:02d} s left" if m < 10 else f"about {m} min left"


class EtaProgress:
    """Send ``TaskProgress(task, done, total, detail, seconds_left)`` for one phase.

    Examples
    --------
    >>> p = EtaProgress(print, "Computing features", 800, unit="images")  # doctest: +SKIP
    >>> p.update(32)  # doctest: +SKIP
    """

    def __init__(self, sink: ev.EventSink, task: str, total: int, *, unit: str = "images", per_s: float = 4.0,
                 clock=time.monotonic) -> None:
        self.sink, self.task, self.total, self.unit = sink, task, max(int(total), 0), unit
        self._clock = clock
        self._t0 = clock()
        self._last = -1e9
        self.done = 0
        self._gap = 1.0 / per_s
        self.sink(ev.TaskProgress(task=task, done=0, total=self.total,
                                  detail=f"0 of {self.total:,} {unit}, starting…"))

    def update(self, done: int) -> None:
        now = self._clock()
        done = min(int(done), self.total) if self.total else int(done)
        self.done = done
        final = self.total > 0 and done >= self.total
        if not final and now - self._last < self._gap:
            return
        self._last = now
        elapsed = now - self._t0
        left = elapsed / done * (self.total - done) if done > 0 else None
        detail = f"{done:,} of {self.total:,} {self.unit}"
        if left is not None and not final:
            detail += f", {_left(left)}"
        self.sink(ev.TaskProgress(task=self.task, done=done, total=self.total, detail=detail, seconds_left=left))
