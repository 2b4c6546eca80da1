"""The child's side of the process boundary (``cnn-studio --cnn-studio-child``): open a state, answer calls.

:func:`child_main` reads the parent's requests from stdin and answers on a private handle on the real
stdout (:func:`claim_stdout`); anything a library prints goes to stderr, the log. Each call gets its own
:class:`~cnn_studio.core.cancel.CancelToken`; end of input (the parent is gone) cancels the call in
progress. The protocol is described in :mod:`cnn_studio.core.child_process`.
"""

from __future__ import annotations

import os
import pickle
import queue
import sys
import threading
import traceback
from typing import Any

from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.child_protocol import error_to_dict, resolve


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


class _Child:
    """The child's two streams: requests read on a thread into a queue, replies written under a lock."""

    def __init__(self) -> None:
        self.protocol = claim_stdout()
        # a private reader on stdin: at exit the interpreter closes sys.stdin, which would wait (and abort)
        # on the lock that the reading thread holds while it waits for the next request
        self.requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
        self.lock = threading.Lock()
        self.calls = _Calls()
        self.todo: queue.Queue = queue.Queue()

    def send(self, obj) -> None:
        try:
            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - a result that cannot travel is reported, not lost
            data = pickle.dumps(("error", obj[1], error_to_dict(exc)), protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            try:
                self.protocol.write(data)
                self.protocol.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.calls.cancel()  # the parent is gone: stop at the next batch, keeping the checkpoints

    def read(self) -> None:
        """The request thread: cancels act at once, calls queue up; end of input cancels everything."""
        while True:
            try:
                msg = pickle.load(self.requests)
            except Exception:  # noqa: BLE001 - end of input (or a torn message): the parent is gone
                msg = None
            if msg is None:
                self.calls.cancel()
                self.todo.put(None)
                return
            if msg[0] == "cancel":
                self.calls.cancel(msg[1])
            else:
                self.todo.put(msg)

    def open(self) -> tuple[Any, ...] | int:
        """Read the open request and make the state → the arguments every call leads with, or an exit code."""
        try:
            _, _label, factory, args, kwargs, describe = pickle.load(self.requests)
        except EOFError:  # nobody asked for anything
            return 0
        except Exception as exc:  # noqa: BLE001 - a request this program cannot read: say why (the log), never quietly
            traceback.print_exc()
            self.send(("error", 0, error_to_dict(exc)))
            return 1
        threading.Thread(target=self.read, name="requests", daemon=True).start()
        state = None
        try:
            if factory is not None:
                state = resolve(factory)(*args, **kwargs)
            self.send(("ready", 0, resolve(describe)(state) if describe is not None else None))
        except BaseException as exc:  # noqa: BLE001 - the parent must hear why the state could not be made
            self.send(("error", 0, error_to_dict(exc)))
            return 1
        return (state,) if factory is not None else ()

    def serve(self, lead: tuple[Any, ...]) -> int:
        """Answer calls one at a time until end of input."""
        while True:
            msg = self.todo.get()
            if msg is None:
                return 0
            _, call_id, target, args, kwargs = msg
            token = self.calls.start(call_id)
            try:
                result = resolve(target)(*lead, *args, sink=lambda e, i=call_id: self.send(("event", i, e)),
                                         cancel=token, **kwargs)
            except Cancelled:
                self.send(("cancelled", call_id, None))
            except SystemExit:
                raise  # something asked the process to end: it ends (the parent reports the exit code)
            except BaseException as exc:  # noqa: BLE001 - report, keep serving
                self.send(("error", call_id, error_to_dict(exc)))
            else:
                self.send(("result", call_id, result))


def child_main() -> int:
    """A child's life (``cnn-studio --cnn-studio-child``): open, answer calls until end of input."""
    child = _Child()
    lead = child.open()
    if isinstance(lead, int):
        return lead
    return child.serve(lead)
