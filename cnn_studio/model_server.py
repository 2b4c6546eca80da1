"""A run's model kept loaded in a child process, answering classify / Grad-CAM / explain / feature-map calls.

The Classify step asks the same model many questions (each drop, each heat map, each layer clicked).
Loading the model once per question would be slow, and answering in the app's process lets
TensorFlow hold the GIL long enough to freeze the window (see :mod:`cnn_studio.child_process`). So
:class:`ModelServer` starts one child (``python -m cnn_studio.model_server``, so the app's own
``__main__`` is never re-run, as multiprocessing's "spawn" would) that loads the run's
:class:`~cnn_studio.predict.Classifier` once and answers calls one at a time over its stdin/stdout;
events come back as they happen, numpy arrays and dataclasses travel as pickles (both ends are this
package), a cancel names the call it stops and is checked between files, and a StudioError keeps its
class, message and hint.

:func:`open_model` gives a :class:`ModelServer`, or a :class:`LocalModel` (same interface, in this
process) when ``CNN_STUDIO_IN_PROCESS=1``.

Calls: ``classify(paths, top_k)`` → list of Prediction; ``heatmaps(paths, class_index)``,
``explain(path, class_index)``, ``layer_maps(model_input, layer)`` → see :mod:`cnn_studio.explain.views`.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from cnn_studio import errors
from cnn_studio import events as ev
from cnn_studio.cancel import Cancelled, CancelToken
from cnn_studio.child_process import child_env, claim_stdout, error_from_dict, error_to_dict, log_file


def _classify(classifier, paths, top_k: int = 3, *, sink, cancel):
    return classifier.classify(paths, top_k=top_k, sink=sink, cancel=cancel)


def _methods() -> dict[str, Any]:
    from cnn_studio.explain import views

    return {"classify": _classify, "heatmaps": views.heatmaps_for_files, "explain": views.explain_image,
            "layer_maps": views.layer_maps}


def _info(classifier) -> dict[str, Any]:
    return {"class_names": tuple(classifier.class_names), "image_size": int(classifier.image_size),
            "resize": classifier.resize}


class LocalModel:
    """The run's Classifier in this process, with :class:`ModelServer`'s interface."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        from cnn_studio.predict import Classifier

        self.run_dir = Path(run_dir)
        self.classifier = Classifier.load(run_dir)
        info = _info(self.classifier)
        self.class_names, self.image_size, self.resize = info["class_names"], info["image_size"], info["resize"]

    def call(self, method: str, *args: Any, sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None,
             **kwargs: Any) -> Any:
        return _methods()[method](self.classifier, *args, sink=sink, cancel=cancel, **kwargs)

    def close(self) -> None:
        self.classifier = None


class _CallToken:
    """Cancelled when the parent cancelled the call being answered (checked by the engine between files)."""

    def __init__(self) -> None:
        self.current = 0
        self.cancel_id = -1

    @property
    def cancelled(self) -> bool:
        return self.cancel_id == self.current

    def cancel(self) -> None:
        self.cancel_id = self.current


def _serve(run_dir: str) -> int:
    """The child: load the model once, then answer ``("call", id, method, args, kwargs)`` until None or EOF."""
    import pickle
    import queue

    protocol = claim_stdout("wb")
    requests = sys.stdin.buffer
    lock = threading.Lock()
    token = _CallToken()
    calls: queue.Queue = queue.Queue()

    def send(obj) -> None:
        with lock:
            try:
                pickle.dump(obj, protocol, protocol=pickle.HIGHEST_PROTOCOL)
                protocol.flush()
            except (BrokenPipeError, OSError, ValueError):
                token.cancel()  # the app is gone

    def read() -> None:
        while True:
            try:
                msg = pickle.load(requests)
            except (EOFError, OSError, pickle.UnpicklingError):
                msg = None
            if msg is None:
                token.cancel()
                calls.put(None)
                return
            if msg[0] == "cancel":
                token.cancel_id = msg[1]
            else:
                calls.put(msg)

    threading.Thread(target=read, name="requests", daemon=True).start()
    try:
        from cnn_studio.predict import Classifier

        classifier = Classifier.load(run_dir)
        methods = _methods()
        send(("result", 0, _info(classifier)))
    except BaseException as exc:  # noqa: BLE001 - the parent must hear why the model did not load
        send(("error", 0, error_to_dict(exc)))
        return 1
    while True:
        msg = calls.get()
        if msg is None:
            return 0
        _, call_id, method, args, kwargs = msg
        token.current = call_id
        try:
            result = methods[method](classifier, *args, sink=lambda e, i=call_id: send(("event", i, e)),
                                     cancel=token, **kwargs)
        except Cancelled:
            send(("cancelled", call_id, None))
        except BaseException as exc:  # noqa: BLE001 - report, keep serving
            send(("error", call_id, error_to_dict(exc)))
        else:
            send(("result", call_id, result))


class ModelServer:
    """A child process holding ``run_dir``'s model. Thread-safe: calls are answered one at a time.

    Raises the model's StudioError (e.g. a missing or damaged model file) from the constructor.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, log_path: str | os.PathLike[str] | None = None,
                 python: str | None = None) -> None:
        import pickle
        import queue
        import subprocess

        self.run_dir = Path(run_dir)
        self.log_path = str(log_file("model", log_path))
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open for the child's lifetime
        self._proc = subprocess.Popen([python or sys.executable, "-m", "cnn_studio.model_server", str(run_dir)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                      env=child_env())
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next_id = 0
        self._replies: queue.Queue = queue.Queue()

        def read() -> None:
            while True:
                try:
                    self._replies.put(pickle.load(self._proc.stdout))
                except (EOFError, OSError, pickle.UnpicklingError):
                    self._replies.put(None)
                    return

        threading.Thread(target=read, name=f"model-{self.run_dir.name}", daemon=True).start()
        info = self._wait(0, ev.null_sink, None)
        self.class_names, self.image_size, self.resize = info["class_names"], info["image_size"], info["resize"]

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _send(self, obj) -> None:
        import pickle

        with self._send_lock:
            try:
                pickle.dump(obj, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise self._died() from None

    def call(self, method: str, *args: Any, sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None,
             **kwargs: Any) -> Any:
        """Ask the child; relays its events to ``sink`` and honours ``cancel`` between files."""
        with self._lock:
            if not self.alive:
                raise self._died()
            self._next_id += 1
            self._send(("call", self._next_id, method, args, kwargs))
            return self._wait(self._next_id, sink, cancel)

    def _wait(self, call_id: int, sink, cancel) -> Any:
        import queue

        cancel_sent = False
        while True:
            if cancel is not None and cancel.cancelled and not cancel_sent:
                self._send(("cancel", call_id))
                cancel_sent = True
            try:
                reply = self._replies.get(timeout=0.05)
            except queue.Empty:
                if not self.alive and self._replies.empty():
                    raise self._died() from None
                continue
            if reply is None:
                raise self._died()
            kind, reply_id, payload = reply
            if reply_id != call_id:
                continue  # the end of a call an earlier caller gave up on
            if kind == "event":
                sink(payload)
            elif kind == "result":
                return payload
            elif kind == "cancelled":
                raise Cancelled()
            else:
                raise error_from_dict(payload, self.log_path, "The model process")

    def _died(self) -> errors.RunError:
        try:
            code = self._proc.wait(2)
        except Exception:  # noqa: BLE001 - still running: say so
            code = None
        return errors.RunError(f"The process that holds the model stopped unexpectedly (exit code {code}).",
                               "Drop the pictures again: the model is loaded anew. If it happens again, the "
                               "computer may be short of memory; close other programs. TensorFlow's messages "
                               f"are in {self.log_path}.")

    def close(self) -> None:
        """Stop the child (end of input, then firmly)."""
        import subprocess

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


def open_model(run_dir: str | os.PathLike[str], *, log_path: str | os.PathLike[str] | None = None):
    """A :class:`ModelServer` for ``run_dir`` (a :class:`LocalModel` when ``CNN_STUDIO_IN_PROCESS=1``)."""
    from cnn_studio.child_process import in_process_requested

    if in_process_requested():
        return LocalModel(run_dir)
    return ModelServer(run_dir, log_path=log_path)


if __name__ == "__main__":
    raise SystemExit(_serve(sys.argv[1]))
