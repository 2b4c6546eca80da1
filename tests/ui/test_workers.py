"""EngineTask / start_task: signal order, threads, cancellation and errors with real engine-shaped functions."""

from __future__ import annotations

import threading

import pytest
from cnn_studio.ui.workers import cancel_all_and_wait, live_tasks, start_task
from PySide6.QtCore import QThread

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import raise_if_cancelled
from cnn_studio.core.errors import DatasetError


def count_files(n, *, sink, cancel=None):
    """A tiny engine function: emits progress, honours cancel, returns the thread it ran on."""
    for i in range(n):
        raise_if_cancelled(cancel)
        sink(ev.TaskProgress("count", i + 1, n))
    return threading.current_thread().name


def test_signal_order_and_threads(qtbot):
    seen: list[tuple[str, bool]] = []
    gui = QThread.currentThread()

    def note(name):
        return lambda *a: seen.append((name, QThread.currentThread() is gui))

    task = start_task(count_files, 3, on_event=note("event"), on_returned=note("returned"))
    # Connected before qtbot's own slots: each queued slot is its own event, and qtbot stops waiting
    # in its slot, so a slot connected after qtbot's could still be in the queue when the wait ends.
    task.started.connect(note("started"))  # connecting right after start_task still sees started
    task.finished.connect(note("finished"))
    with qtbot.waitSignals([task.started, task.returned, task.finished], order="strict", timeout=5000):
        pass
    names = [n for n, _ in seen]
    assert names == ["started", "event", "event", "event", "returned", "finished"]
    assert all(on_gui for _, on_gui in seen), "every slot must run on the GUI thread"
    assert task.outcome == "returned"
    assert task not in live_tasks()


def test_work_runs_off_the_gui_thread(qtbot):
    results = []
    task = start_task(count_files, 1, on_returned=results.append)
    with qtbot.waitSignal(task.finished, timeout=5000):
        pass
    assert results and results[0] != threading.main_thread().name


def test_cancel_emits_cancelled_never_returned(qtbot):
    gate = threading.Event()
    returned, events = [], []

    def wait_for_gate(*, sink, cancel):
        sink(ev.StageChanged("t", "waiting"))
        gate.wait(5)
        raise_if_cancelled(cancel)
        return "should not arrive"

    task = start_task(wait_for_gate, on_event=events.append, on_returned=returned.append)
    qtbot.waitUntil(lambda: bool(events), timeout=5000)
    with qtbot.waitSignals([task.cancelled, task.finished], order="strict", timeout=5000):
        task.cancel()
        assert task.token.cancelled
        gate.set()
    assert returned == []
    assert task.outcome == "cancelled"


def test_error_goes_to_errored_with_traceback(qtbot):
    def fail(*, sink, cancel):
        raise DatasetError("Only one class.", "Add a second folder.")

    errors = []
    task = start_task(fail, on_errored=errors.append)
    with qtbot.waitSignals([task.errored, task.finished], order="strict", timeout=5000):
        pass
    assert isinstance(errors[0], DatasetError) and errors[0].__traceback__ is not None


def test_cancel_all_and_wait(qtbot):
    gate = threading.Event()

    def blocked(*, sink, cancel):
        while not cancel.cancelled:
            gate.wait(0.01)
        raise_if_cancelled(cancel)

    tasks = [start_task(blocked) for _ in range(2)]
    qtbot.waitUntil(lambda: all(t.is_running for t in tasks), timeout=5000)
    assert cancel_all_and_wait(5000) is True
    assert all(t.outcome == "cancelled" for t in tasks)
    assert not live_tasks()


@pytest.mark.parametrize("exc", [MemoryError("x"), ValueError("boom")])
def test_errors_are_described(exc):
    from cnn_studio.ui.messages import describe_error

    msg = describe_error(exc)
    assert msg.title in ("Out of memory", "Unexpected error")
    assert msg.hint


def test_is_live_until_finished_is_delivered(qtbot):
    task = start_task(count_files, 2)
    assert task.is_live
    with qtbot.waitSignal(task.finished, timeout=5000):
        pass
    assert not task.is_live and task.is_done
