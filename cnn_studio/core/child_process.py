"""The process boundary: run an engine function in a child Python process, by its import name.

Why a process and not only a thread: TensorFlow holds Python's GIL for long stretches (importing,
tracing the training graph, building a model), and every one of them freezes a GUI event loop in
the same process — bench/ui_latency.py measured pauses of 230-350 ms. In a child process the GUI's
worker thread only reads short messages. It also isolates failures: if TensorFlow is killed for
memory or crashes, only the child dies; a run folder keeps its atomic checkpoints and the app says
what happened and what to do. GPU memory is given back when the child exits.

One transport, two lifetimes:

* a **one-shot job** — :func:`run_job` (``run_in_child`` without the in-process switch): start a
  child, run ``fn(*args, **kwargs, sink=, cancel=)``, relay its events, return its result, let the
  child exit. Training, evaluation, robustness, export and the Architecture tab use it::

      result = run_job("cnn_studio.training.trainer:train", config, split, run_dir, sink=sink, cancel=cancel,
                       log_path=..., label="training")

* a **long-lived server** — :func:`open_server` → :class:`Server`: the child makes a state once
  (``factory(*args)``, e.g. ``"cnn_studio.predict.predictor:Classifier.load"``) and then answers
  ``server.call(target, *args, **kwargs)`` as ``target(state, *args, **kwargs, sink=, cancel=)``,
  one call at a time, until :meth:`Server.close`. The Classify step keeps its model this way
  (:func:`cnn_studio.explain.views.open_model`).

A function is named ``"package.module:qualname"`` (``qualname`` may be dotted, as in
``"cnn_studio.predict.predictor:Classifier.classify"``), or given as a module-level function, whose import
name is taken from it. Arguments, events (the dataclasses of :mod:`cnn_studio.core.events`) and results
travel as pickles — both ends are this package — so a result is the engine's own object
(``TrainResult``, ``list[ExportRecord]``, numpy arrays) and callers need no converters.

On the caller's side a call looks like any engine function: events arrive through ``sink`` in order
(on the calling thread); setting ``cancel`` sets the child's :class:`~cnn_studio.core.cancel.CancelToken`
(cooperative: the engine stops after its current batch or file and keeps what it saved) and the call
raises :class:`~cnn_studio.core.cancel.Cancelled`; the child's :class:`~cnn_studio.core.errors.StudioError`
is raised again with the same class, message and hint; any other exception becomes a
:class:`~cnn_studio.core.errors.RunError` naming the job, the exception and the log file; a child that
dies (killed for memory, a crash) becomes a RunError naming the job, why it stopped and the log.
When the parent goes away the child's stdin ends, which cancels the call in progress: an app that
dies never leaves a child training.

Protocol (pickles, one after another; the child's real stdout is kept for them, and anything a
library prints goes to stderr, which is saved to the log file):

* parent → child: ``("open", label, factory | None, args, kwargs, describe | None)``, then
  ``("call", id, target, args, kwargs)`` and ``("cancel", id)``; end of input ends the child.
* child → parent: ``("ready", 0, describe(state) | None)`` or ``("error", 0, err)``, then per call
  ``("event", id, event)``… and exactly one of ``("result", id, value)``, ``("cancelled", id, None)``
  or ``("error", id, {"type", "module", "message", "hint", "traceback"})``.

How a child is started (:func:`~cnn_studio.core.child_start.child_command`): through the program's own entry point with the
hidden argument :data:`~cnn_studio.core.child_start.CHILD_FLAG` — ``python -m cnn_studio --cnn-studio-child`` from an installed
package, ``<the app's executable> --cnn-studio-child`` from a frozen (PyInstaller-style) app, where
``sys.executable`` is the app itself and ``python -m`` does not exist. :func:`cnn_studio.cli.main`
sees the flag and calls :func:`~cnn_studio.core.child_side.child_main`. (Not multiprocessing's "spawn": it re-runs the app's
``__main__`` in the child, and an unguarded script crashed that way.)

``CNN_STUDIO_IN_PROCESS=1`` (:data:`IN_PROCESS_ENV`) runs every job and server in the calling
process instead (debugging): same calls, same results, events and errors.

The parts: this module is the parent's side (:class:`Server`, :func:`run_job`, :func:`open_server`);
:mod:`cnn_studio.core.child_side` the child's (:func:`~cnn_studio.core.child_side.child_main`);
:mod:`cnn_studio.core.child_start` how a child (or any ``cnn-studio`` command) is started;
:mod:`cnn_studio.core.child_protocol` what both share (import names, errors as data).
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from cnn_studio.core import errors
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken, raise_if_cancelled
from cnn_studio.core.child_protocol import crash_error, default_label, error_from_dict, import_name, resolve
from cnn_studio.core.child_start import NO_WINDOW, child_command, child_env, log_file
from cnn_studio.core.child_start import (
    program_command as program_command,  # re-exported: callers start commands
)

IN_PROCESS_ENV = "CNN_STUDIO_IN_PROCESS"
"""Set to 1 to run the app's jobs in its own process (debugging); by default each runs in a child."""

CANCEL_GRACE_S = 120.0
"""After a cancel, how long the child may take to stop cleanly (it finishes the current batch and
writes its checkpoint) before it is terminated."""

def in_process_requested() -> bool:
    """True when :data:`IN_PROCESS_ENV` asks for jobs in the calling process."""
    return os.environ.get(IN_PROCESS_ENV, "") not in ("", "0")


# ---------------------------------------------------------------------------- parent side
class Server:
    """A child process that holds ``factory(*args, **kwargs)`` (or nothing) and answers calls on it.

    Thread-safe: calls are answered one at a time. Raises the factory's StudioError (e.g. a missing
    or damaged model file) from the constructor. Use :func:`open_server` (which honours the
    in-process switch) or :func:`run_job` rather than this class directly.

    Attributes
    ----------
    label : the server's name in messages ("model", …; default: the factory's name).
    info : ``describe(state)`` as the child computed it once the state was made (None without ``describe``).
    log_path : the child's stderr (TensorFlow's messages, warnings, anything printed).
    """

    def __init__(self, factory: str | Callable[..., Any] | None = None, *args: Any, label: str | None = None,
                 log_path: str | os.PathLike[str] | None = None, describe: str | Callable[..., Any] | None = None,
                 _log_mode: str = "ab", **kwargs: Any) -> None:
        label = label or (default_label(factory) if factory is not None else "engine")
        self.label = label
        self.log_path = str(log_file(label, log_path))
        self._log = open(self.log_path, _log_mode)  # noqa: SIM115 - open for the child's lifetime
        try:
            self._proc = subprocess.Popen(child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._log, env=child_env(), creationflags=NO_WINDOW)
        except BaseException:
            self._log.close()
            raise
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next_id = 0
        self._replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, name=f"child-{label}-reader", daemon=True).start()
        try:
            self._send(("open", label, None if factory is None else import_name(factory), args, kwargs,
                        None if describe is None else import_name(describe)))
            self.info = self._wait(0, ev.null_sink, None)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        while True:
            try:
                self._replies.put(pickle.load(self._proc.stdout))
            except Exception:  # noqa: BLE001 - EOF, a closed pipe or a torn message: the child is gone
                self._replies.put(None)
                return

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _send(self, obj) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            try:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise self._died() from None

    def call(self, target: str | Callable[..., Any], *args: Any, sink: ev.EventSink = ev.null_sink,
             cancel: CancelToken | None = None, **kwargs: Any) -> Any:
        """``target(state, *args, **kwargs, sink=, cancel=)`` in the child (no ``state`` without a factory).

        Relays the child's events to ``sink`` and honours ``cancel`` (see the module's docstring).
        """
        name = import_name(target)
        with self._lock:
            if not self.alive:
                raise self._died()
            self._next_id += 1
            self._send(("call", self._next_id, name, args, kwargs))
            return self._wait(self._next_id, sink, cancel)

    def _wait(self, call_id: int, sink, cancel: CancelToken | None) -> Any:
        cancel_sent_at: float | None = None
        while True:
            if cancel is not None and cancel.cancelled and cancel_sent_at is None:
                try:
                    self._send(("cancel", call_id))
                except errors.RunError:
                    pass  # already gone: the reply queue says so
                cancel_sent_at = time.monotonic()
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_S:
                self._proc.kill()
                raise Cancelled()
            try:
                reply = self._replies.get(timeout=0.05)
            except queue.Empty:
                continue
            if reply is None:
                if cancel_sent_at is not None:
                    raise Cancelled()
                raise self._died()
            kind, reply_id, payload = reply
            if reply_id != call_id:
                continue  # the end of a call an earlier caller gave up on
            if kind == "event":
                sink(payload)
            elif kind in ("result", "ready"):
                return payload
            elif kind == "cancelled":
                raise Cancelled()
            else:
                raise error_from_dict(payload, self.label, self.log_path)

    def _died(self) -> errors.RunError:
        try:
            code = self._proc.wait(2)
        except subprocess.TimeoutExpired:
            code = None
        return crash_error(self.label, code, self.log_path)

    def close(self) -> None:
        """Stop the child: end of its input (which cancels a call in progress), then firmly."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(3)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(3)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalServer:
    """:class:`Server`'s interface in this process (``CNN_STUDIO_IN_PROCESS=1``)."""

    alive = True

    def __init__(self, factory: str | Callable[..., Any] | None = None, *args: Any, label: str | None = None,
                 log_path: str | os.PathLike[str] | None = None, describe: str | Callable[..., Any] | None = None,
                 **kwargs: Any) -> None:
        self.label = label or (default_label(factory) if factory is not None else "engine")
        self.log_path, self.pid = log_path, os.getpid()
        self._stateful = factory is not None
        self.state = resolve(import_name(factory))(*args, **kwargs) if factory is not None else None
        self.info = resolve(import_name(describe))(self.state) if describe is not None else None

    def call(self, target: str | Callable[..., Any], *args: Any, sink: ev.EventSink = ev.null_sink,
             cancel: CancelToken | None = None, **kwargs: Any) -> Any:
        fn = resolve(import_name(target))
        lead = (self.state,) if self._stateful else ()
        return fn(*lead, *args, sink=sink, cancel=cancel if cancel is not None else CancelToken(), **kwargs)

    def close(self) -> None:
        self.state = None

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_server(factory: str | Callable[..., Any], *args: Any, label: str | None = None,
                log_path: str | os.PathLike[str] | None = None, describe: str | Callable[..., Any] | None = None,
                **kwargs: Any) -> Server | LocalServer:
    """The long-lived lifetime: a :class:`Server` holding ``factory(*args, **kwargs)``.

    A :class:`LocalServer` (same interface, this process) when :func:`in_process_requested`.
    ``describe(state)`` is computed once and kept as ``.info`` (e.g. a model's class names).
    """
    cls = LocalServer if in_process_requested() else Server
    return cls(factory, *args, label=label, log_path=log_path, describe=describe, **kwargs)


def run_in_child(target: str | Callable[..., Any], *args: Any, sink: ev.EventSink = ev.null_sink,
                 cancel: CancelToken | None = None, log_path: str | os.PathLike[str] | None = None,
                 label: str | None = None, **kwargs: Any) -> Any:
    """The one-shot lifetime, always in a child: ``target(*args, **kwargs, sink=, cancel=)``.

    ``label`` names the job in messages (default: the function's name); ``log_path`` receives the
    child's stderr, overwritten (default: a temporary file). Raises Cancelled, the child's
    StudioError, or a RunError (a bug, or a child that died) naming the job and the log.
    """
    name = import_name(target)
    with Server(None, label=label or default_label(name), log_path=log_path, _log_mode="wb") as child:
        return child.call(name, *args, sink=sink, cancel=cancel, **kwargs)


def run_job(target: str | Callable[..., Any], *args: Any, sink: ev.EventSink = ev.null_sink,
            cancel: CancelToken | None = None, log_path: str | os.PathLike[str] | None = None,
            label: str | None = None, **kwargs: Any) -> Any:
    """:func:`run_in_child`, or the same call in this process when :func:`in_process_requested`.

    Either way the caller gets the function's own result, its events and its errors, so it needs
    no branch of its own. ``sink``, ``cancel``, ``log_path`` and ``label`` are the transport's;
    every other keyword goes to ``target``.
    """
    if not in_process_requested():
        return run_in_child(target, *args, sink=sink, cancel=cancel, log_path=log_path, label=label, **kwargs)
    return resolve(import_name(target))(*args, sink=sink, cancel=cancel if cancel is not None else CancelToken(),
                                        **kwargs)


# ---------------------------------------------------------------------------- a job and a state for tests
def selftest(n: int = 3, *, sleep: float = 0.0, fail: str = "", print_line: bool = False,
             sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> dict[str, int]:
    """A job without TensorFlow, for tests: counts, can be cancelled, fails or dies on request."""
    for i in range(n):
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        sink(ev.TaskProgress("selftest", i + 1, n))
        time.sleep(sleep)
    if print_line:
        print("a library writing to stdout")  # must not break the protocol
    if fail == "studio":
        raise errors.DatasetError("The folder has one class.", "Add a second class folder.")
    if fail == "bug":
        raise ZeroDivisionError("division by zero")
    if fail == "die":
        raise SystemExit(9)  # in a child: the process ends without a word, as a crash does
    return {"done": n, "pid": os.getpid()}


class Counter:
    """A server's state for tests of the long-lived lifetime, without TensorFlow."""

    def __init__(self, start: int = 0) -> None:
        if start < 0:
            raise errors.DatasetError(f"Cannot start counting at {start}.", "Count up, not down.")
        self.value = start

    def add(self, n: int, *, steps: int = 1, sleep: float = 0.0, sink: ev.EventSink = ev.null_sink,
            cancel: CancelToken | None = None) -> int:
        """Add ``n`` after ``steps`` steps (an event and a cancel check each); a cancelled call adds nothing."""
        if n < 0:
            raise errors.DatasetError(f"Cannot add {n}.", "Count up, not down.")
        for i in range(steps):
            raise_if_cancelled(cancel)
            sink(ev.TaskProgress("count", i + 1, steps))
            time.sleep(sleep)
        self.value += n
        return self.value

    def __repr__(self) -> str:
        return f"Counter({self.value})"
