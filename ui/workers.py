"""Run engine functions ``fn(*args, sink, cancel, **kwargs)`` off the GUI thread.

Shaped like superqt's worker (``task.signals`` and the same signal names, reachable as
``task.returned`` …) without importing superqt, whose package loads every one of its widgets
(~0.2 s before the first window; ``bench/startup.py``). The signals live on a separate ``QObject``
(:class:`EngineSignals`) created on the GUI thread, so every emit from the worker thread is
delivered to slots on the GUI thread. Each task runs on its own Python thread (see
``EngineTask._launch`` for why not a ``QThreadPool``). :class:`EngineTask` adapts the engine contract:

* ``sink`` is the thread-safe ``event.emit`` of the task's signals;
* ``cancel`` is a :class:`~cnn_studio.core.cancel.CancelToken` that :meth:`EngineTask.cancel` sets;
* a normal return → ``returned(result)``; :class:`~cnn_studio.core.cancel.Cancelled` → ``cancelled()``
  (never ``returned``); any other exception → ``errored(exc)`` (traceback kept on the exception);
* ``finished()`` always comes last.

Live tasks are kept in a module-level set until their ``finished`` has been delivered;
:func:`cancel_all_and_wait` is what the app calls on quit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from cnn_studio.core.cancel import Cancelled, CancelToken


class EngineSignals(QObject):
    """The signals of one :class:`EngineTask`, on a ``QObject`` made on the GUI thread.

    superqt's worker signal names (``started``, ``returned``, ``errored``, ``warned``,
    ``finished``) plus the engine's ``event`` and ``cancelled``.
    """

    started = Signal()
    event = Signal(object)
    returned = Signal(object)
    cancelled = Signal()
    errored = Signal(object)
    warned = Signal(tuple)
    finished = Signal()


_LIVE: set[EngineTask] = set()
_LOCK = threading.Lock()


def _thread_name(fn: Callable[..., Any]) -> str:
    return f"engine:{getattr(fn, '__name__', 'task')}"


class EngineTask:
    """One engine call running on a worker thread.

    Signals (reach slots on the GUI thread): ``started``, ``event(object)``, ``returned(object)``,
    ``cancelled()``, ``errored(object)``, ``finished()``. Connect through the task
    (``task.event.connect(...)``) or its ``signals``, as with a superqt worker.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.signals = EngineSignals()
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.token = CancelToken()
        self.name = getattr(fn, "__qualname__", repr(fn))
        self._done = threading.Event()
        self.outcome: str | None = None  # "returned" | "cancelled" | "errored" once done
        self._launched = False
        self._in_run = False
        self.signals.finished.connect(self._forget)  # first slot: live_tasks() is current in on_finished

    def __getattr__(self, name: str) -> Any:
        """``task.returned`` is ``task.signals.returned`` (each of :class:`EngineSignals`' signals)."""
        if isinstance(getattr(EngineSignals, name, None), Signal):
            return getattr(self.signals, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---------------------------------------------------------------- control (GUI thread)
    def cancel(self) -> None:
        """Ask the engine to stop at its next check; the task then emits ``cancelled``."""
        self.token.cancel()

    @property
    def is_cancel_requested(self) -> bool:
        return self.token.cancelled

    @property
    def is_running(self) -> bool:
        """True while the worker thread is inside :meth:`run`."""
        return self._in_run

    @property
    def is_live(self) -> bool:
        """True from ``start_task`` until ``finished`` has been delivered (slots may still be pending after is_done)."""
        with _LOCK:
            return self in _LIVE

    @property
    def is_done(self) -> bool:
        """True once the worker thread has left ``run`` (signals may still be in the queue)."""
        return self._done.is_set()

    def wait(self, timeout_ms: int = 10000) -> bool:
        """Block until the thread is done (GUI-thread shutdown only); True if it finished in time."""
        return self._done.wait(timeout_ms / 1000)

    def start(self) -> None:
        """Queue the task to start on its own thread (called by :func:`start_task`).

        The thread is started from the event loop's next turn, so slots connected right after
        ``start_task`` returns still see every signal, ``started`` included.
        """
        with _LOCK:
            _LIVE.add(self)
        QTimer.singleShot(0, self._launch)

    def _launch(self) -> None:
        # A Python thread per task, not a QThreadPool thread: TensorFlow keeps per-thread state
        # tied to the Python thread state, which PySide tears down after each pooled run while
        # the OS thread lives on; a second training on a reused pool thread then crashes in
        # graph building. A fresh Python thread per task has no such reuse.
        if not self._launched:
            self._launched = True
            threading.Thread(target=self.run, name=_thread_name(self.fn), daemon=True).start()

    def _forget(self) -> None:
        with _LOCK:
            _LIVE.discard(self)

    # ---------------------------------------------------------------- worker thread
    def run(self) -> None:
        """Runs on the task's thread; see the module docstring for the signal order."""
        self._in_run = True
        self.signals.started.emit()
        try:
            result = self.work()
        except Cancelled:
            self.outcome = "cancelled"
            self.signals.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI, never kill the thread
            self.outcome = "errored"
            self.signals.errored.emit(exc)
        else:
            self.outcome = "returned"
            self.signals.returned.emit(result)
        finally:
            self._in_run = False
            self._done.set()
            self.signals.finished.emit()

    def work(self) -> Any:
        return self.fn(*self.args, sink=self.signals.event.emit, cancel=self.token, **self.kwargs)


def start_task(
    fn: Callable[..., Any],
    *args: Any,
    on_event: Callable[[object], Any] | None = None,
    on_returned: Callable[[object], Any] | None = None,
    on_errored: Callable[[BaseException], Any] | None = None,
    on_cancelled: Callable[[], Any] | None = None,
    on_finished: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> EngineTask:
    """Run ``fn(*args, sink=..., cancel=..., **kwargs)`` on a worker thread.

    Parameters
    ----------
    fn
        An engine function following the ``fn(inputs, *, sink, cancel) -> Result`` contract.
    *args, **kwargs
        Passed to ``fn``.
    on_event, on_returned, on_errored, on_cancelled, on_finished
        Optional slots, connected before the task starts; they run on the GUI thread.

    Returns
    -------
    EngineTask
        Already started; connect more slots or call ``cancel()`` on it.

    Examples
    --------
    >>> from cnn_studio.data.index import scan  # doctest: +SKIP
    >>> task = start_task(scan, "leaves", on_returned=show_index)  # doctest: +SKIP
    """
    task = EngineTask(fn, *args, **kwargs)
    for signal, slot in ((task.signals.event, on_event), (task.signals.returned, on_returned),
                         (task.signals.errored, on_errored), (task.signals.cancelled, on_cancelled)):
        if slot is not None:
            signal.connect(slot)
    if on_finished is not None:
        task.signals.finished.connect(on_finished)
    task.start()
    return task


def live_tasks() -> list[EngineTask]:
    """Tasks started and whose ``finished`` has not been delivered yet."""
    with _LOCK:
        return list(_LIVE)


def cancel_all_and_wait(timeout_ms: int = 10000) -> bool:
    """Cancel every live task and wait for their threads (app shutdown).

    Returns
    -------
    bool
        True if all tasks ended within ``timeout_ms``; their queued signals are then delivered.
    """
    tasks = live_tasks()
    for task in tasks:
        task.cancel()
        task._launch()  # a task still waiting for its first event-loop turn runs and sees the token
    deadline = time.monotonic() + timeout_ms / 1000
    ok = True
    for task in tasks:
        left = max(0.0, deadline - time.monotonic())
        ok = task._done.wait(left) and ok
    if QCoreApplication.instance() is not None:
        QCoreApplication.processEvents()
    if ok:
        with _LOCK:
            for task in tasks:
                _LIVE.discard(task)
    return ok
