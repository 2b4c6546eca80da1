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

How a child is started (:func:`child_command`): through the program's own entry point with the
hidden argument :data:`CHILD_FLAG` — ``python -m cnn_studio --cnn-studio-child`` from an installed
package, ``<the app's executable> --cnn-studio-child`` from a frozen (PyInstaller-style) app, where
``sys.executable`` is the app itself and ``python -m`` does not exist. :func:`cnn_studio.cli.main`
sees the flag and calls :func:`child_main`. (Not multiprocessing's "spawn": it re-runs the app's
``__main__`` in the child, and an unguarded script crashed that way.)

``CNN_STUDIO_IN_PROCESS=1`` (:data:`IN_PROCESS_ENV`) runs every job and server in the calling
process instead (debugging): same calls, same results, events and errors.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnn_studio.core import errors
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken, raise_if_cancelled

CHILD_FLAG = "--cnn-studio-child"
"""The hidden first argument of ``cnn-studio`` that makes the program a child (see :func:`child_command`)."""

QT_PROBE_FLAG = "--cnn-studio-qt-probe"
"""The hidden argument that only starts Qt and prints its platform (doctor's Qt check; cnn_studio.ui.qt_probe)."""

IN_PROCESS_ENV = "CNN_STUDIO_IN_PROCESS"
"""Set to 1 to run the app's jobs in its own process (debugging); by default each runs in a child."""

CANCEL_GRACE_S = 120.0
"""After a cancel, how long the child may take to stop cleanly (it finishes the current batch and
writes its checkpoint) before it is terminated."""

def in_process_requested() -> bool:
    """True when :data:`IN_PROCESS_ENV` asks for jobs in the calling process."""
    return os.environ.get(IN_PROCESS_ENV, "") not in ("", "0")


# ---------------------------------------------------------------------------- names and errors
def import_name(target: str | Callable[..., Any]) -> str:
    """``"package.module:qualname"`` of ``target`` (a name is checked for its shape and returned as is).

    Raises ValueError for a name without ``:`` and for a function a child cannot import (a lambda,
    a nested function, one defined in ``__main__``).
    """
    if callable(target) and not isinstance(target, str):
        module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
        if not module or module == "__main__" or "<" in qualname:
            raise ValueError(f"Expected a module-level function a child can import, received {target!r}")
        return f"{module}:{qualname}"
    module, sep, qualname = str(target).partition(":")
    if not (sep and module and qualname):
        raise ValueError(f"Expected an import name like 'package.module:function', received {target!r}")
    return str(target)


def resolve(name: str) -> Callable[..., Any]:
    """The object an :func:`import_name` names (``"cnn_studio.predict.predictor:Classifier.load"`` → the bound classmethod)."""
    module, _, qualname = import_name(name).partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def default_label(target: str | Callable[..., Any]) -> str:
    """A job's name for messages when the caller gives none: the function's name in words."""
    return import_name(target).rpartition(":")[2].rpartition(".")[2].replace("_", " ")


def error_to_dict(exc: BaseException) -> dict[str, str]:
    """An exception as plain data: class, module, message, hint and traceback."""
    if isinstance(exc, errors.StudioError):
        message, hint = exc.message, exc.hint
    else:
        message, hint = str(exc), ""
    return {"type": type(exc).__name__, "module": type(exc).__module__, "message": message, "hint": hint,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def error_from_dict(err: dict[str, Any], label: str, log_path: str | os.PathLike[str] | None) -> BaseException:
    """:func:`error_to_dict` back: the same StudioError, or a RunError naming the job, the exception and the log."""
    module = str(err.get("module") or "cnn_studio.core.errors")
    try:  # only our own modules are imported here: the app's process must not load TensorFlow for an error
        where_defined = importlib.import_module(module) if module.split(".")[0] == "cnn_studio" else sys.modules.get(module)
        cls = getattr(where_defined, str(err.get("type")), None)
    except ImportError:
        cls = None
    if isinstance(cls, type) and issubclass(cls, errors.StudioError):
        try:
            return cls(err.get("message", ""), err.get("hint", ""))
        except TypeError:  # a subclass with its own constructor: keep the words
            return errors.StudioError(err.get("message", ""), err.get("hint", ""))
    where = f" The details are in {log_path}." if log_path else ""
    return errors.RunError(f"The {label} process failed: {err.get('type')}: {err.get('message')}",
                           "This looks like a bug in CNN Studio or TensorFlow rather than a problem with "
                           f"your images; please report it with the log.{where}\n{err.get('traceback', '')}")


def crash_error(label: str, code: int | None, log_path: str | os.PathLike[str] | None) -> errors.RunError:
    """The RunError for a child that died without a word: which job, why (from its exit code), the log."""
    tail = ""
    if log_path:
        try:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = "".join(deque(f, maxlen=8)).strip()
        except OSError:
            pass
    why = {-9: "it was killed, most likely because the computer ran out of memory",
           137: "it was killed, most likely because the computer ran out of memory",
           -11: "it crashed inside TensorFlow (segmentation fault)",
           139: "it crashed inside TensorFlow (segmentation fault)",
           None: "it no longer answers"}.get(code, f"it exited with code {code}")
    return errors.RunError(
        f"The {label} process stopped unexpectedly: {why}.",
        "Whatever it had saved is kept: after training, the best model so far stays in the run folder, and "
        "\"Continue training\" on the Train step (or `cnn-studio resume RUN_DIR`) goes on from the last "
        "saved epoch. Try again; if it happens again, try a smaller batch size or image size, or close other "
        f"programs. Its messages (TensorFlow's included) are in {log_path}." + (f"\nLast lines:\n{tail}" if tail else ""))


# ---------------------------------------------------------------------------- starting a child
# ``python -m cnn_studio`` (and ``-c``) put the current folder first on sys.path: started in a source
# checkout (where README's install command runs) the child imported that tree's cnn_studio, which has
# no cnn_studio.ui or cnn_studio.resources, and died before it could say why. The installed program is
# what must run: the current folder is taken off sys.path before cnn_studio is imported.
_ENTRY = "import sys; sys.path.pop(0); from cnn_studio.cli import main; sys.exit(main())"


def program_command(*args: str) -> list[str]:
    """The command line that runs this installed program (``cnn-studio ARGS``) in a new process.

    From a frozen app (``sys.frozen``, PyInstaller-style) ``sys.executable`` is the app itself;
    otherwise it is Python running :func:`cnn_studio.cli.main` with the current folder left out of
    ``sys.path``, so a folder that happens to hold a ``cnn_studio`` package cannot stand in for it.
    """
    if getattr(sys, "frozen", False):
        return [frozen_program(), *args]
    return [sys.executable, "-c", _ENTRY, *args]


CONSOLE_PROGRAM = "cnn-studio.exe"
"""On Windows the bundle holds a console program (this name) beside the windowed "CNN Studio.exe"."""


def frozen_program(executable: str | None = None, platform: str | None = None) -> str:
    """The frozen app's program for a new process: itself, or on Windows its console twin.

    A windowed Windows program has no standard input and output for the child protocol, so the
    windowed ``CNN Studio.exe`` starts its children as the ``cnn-studio.exe`` beside it (kept
    without a console window by :data:`NO_WINDOW`).
    """
    executable = sys.executable if executable is None else executable
    if (platform or sys.platform) == "win32":
        console = Path(executable).with_name(CONSOLE_PROGRAM)
        if console.is_file():
            return str(console)
    return executable


NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)
"""Windows: start a console child without opening a console window (0 elsewhere)."""


def child_command() -> list[str]:
    """The command line that starts a child: the program's own entry point with :data:`CHILD_FLAG`."""
    return program_command(CHILD_FLAG)


def child_env() -> dict[str, str]:
    """The environment a child starts with: this one, TensorFlow quieter, and never a window."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("QT_QPA_PLATFORM", None)
    return env


def log_file(prefix: str, log_path: str | os.PathLike[str] | None) -> Path:
    """``log_path`` (its folder created), or a new temporary file named after ``prefix``."""
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"cnn-studio-{prefix.replace(' ', '-')}-", suffix=".log")
        os.close(fd)
        log_path = name
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


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


# ---------------------------------------------------------------------------- child side
def claim_stdout() -> Any:
    """In a child: a private binary handle on the real stdout for the protocol; fd 1 and ``sys.stdout`` go to stderr.

    Libraries that print (TensorFlow, Keras' progress bars) then end up in the log, never in the
    protocol stream.
    """
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return protocol


class _Calls:
    """The child's bookkeeping of cancels: each call gets its own CancelToken; a cancel names its call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[int, CancelToken] | None = None
        self._early: set[int] = set()  # cancels that arrived before their call started
        self.ended = False

    def start(self, call_id: int) -> CancelToken:
        token = CancelToken()
        with self._lock:
            if self.ended or call_id in self._early:
                token.cancel()
            self._current = (call_id, token)
        return token

    def cancel(self, call_id: int | None = None) -> None:
        """Cancel ``call_id`` (None: whatever runs now, and everything after — the parent is gone)."""
        with self._lock:
            if call_id is None:
                self.ended = True
            if self._current is not None and call_id in (None, self._current[0]):
                self._current[1].cancel()
            elif call_id is not None:
                self._early.add(call_id)


def child_main() -> int:
    """A child's life (``cnn-studio --cnn-studio-child``): open, answer calls until end of input."""
    protocol = claim_stdout()
    # a private reader on stdin: at exit the interpreter closes sys.stdin, which would wait (and abort)
    # on the lock that the reading thread holds while it waits for the next request
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    lock = threading.Lock()
    calls = _Calls()
    todo: queue.Queue = queue.Queue()

    def send(obj) -> None:
        try:
            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - a result that cannot travel is reported, not lost
            data = pickle.dumps(("error", obj[1], error_to_dict(exc)), protocol=pickle.HIGHEST_PROTOCOL)
        with lock:
            try:
                protocol.write(data)
                protocol.flush()
            except (BrokenPipeError, OSError, ValueError):
                calls.cancel()  # the parent is gone: stop at the next batch, keeping the checkpoints

    def read() -> None:
        while True:
            try:
                msg = pickle.load(requests)
            except Exception:  # noqa: BLE001 - end of input (or a torn message): the parent is gone
                msg = None
            if msg is None:
                calls.cancel()
                todo.put(None)
                return
            if msg[0] == "cancel":
                calls.cancel(msg[1])
            else:
                todo.put(msg)

    try:
        _, label, factory, args, kwargs, describe = pickle.load(requests)
    except EOFError:  # nobody asked for anything
        return 0
    except Exception as exc:  # noqa: BLE001 - a request this program cannot read: say why (the log), never quietly
        traceback.print_exc()
        send(("error", 0, error_to_dict(exc)))
        return 1
    threading.Thread(target=read, name="requests", daemon=True).start()
    state = None
    try:
        if factory is not None:
            state = resolve(factory)(*args, **kwargs)
        send(("ready", 0, resolve(describe)(state) if describe is not None else None))
    except BaseException as exc:  # noqa: BLE001 - the parent must hear why the state could not be made
        send(("error", 0, error_to_dict(exc)))
        return 1
    lead = (state,) if factory is not None else ()
    while True:
        msg = todo.get()
        if msg is None:
            return 0
        _, call_id, target, args, kwargs = msg
        token = calls.start(call_id)
        try:
            result = resolve(target)(*lead, *args, sink=lambda e, i=call_id: send(("event", i, e)), cancel=token,
                                     **kwargs)
        except Cancelled:
            send(("cancelled", call_id, None))
        except SystemExit:
            raise  # something asked the process to end: it ends (the parent reports the exit code)
        except BaseException as exc:  # noqa: BLE001 - report, keep serving
            send(("error", call_id, error_to_dict(exc)))
        else:
            send(("result", call_id, result))


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
