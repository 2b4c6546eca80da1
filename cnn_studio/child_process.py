"""Run an engine job (training) in a child Python process, relaying its events and honouring cancel.

Why a process and not only a thread: TensorFlow holds Python's GIL for long stretches (importing,
tracing the training graph, building a model), and every one of them freezes a GUI event loop in
the same process — bench/ui_latency.py measured pauses of 230-350 ms. In a child process the GUI's
worker thread only reads short lines. It also isolates failures: if TensorFlow is killed for memory
or crashes, only the child dies; the run folder keeps its atomic checkpoints and the app says what
happened and what to do. GPU memory is given back when the child exits.

The caller's side looks like any engine function: ``run_in_child(job, payload, sink=, cancel=)``
emits the child's events through ``sink``, raises :class:`~cnn_studio.cancel.Cancelled` or the
child's :class:`~cnn_studio.errors.StudioError` (same class, message and hint), and returns the
job's JSON result.

Protocol (one JSON object per line; the child's real stdout is kept for it, and anything a library
prints goes to stderr, which is saved to a log file):

* parent → child stdin: the request ``{"job": ..., "payload": ...}``, then ``cancel`` to stop.
  End of input (the parent died) also cancels.
* child → parent stdout: ``{"event": "EpochEnded", "data": {...}}``, then exactly one of
  ``{"returned": ...}``, ``{"cancelled": true}`` or ``{"error": {"type", "message", "hint", "traceback"}}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from cnn_studio import errors
from cnn_studio import events as ev
from cnn_studio.cancel import Cancelled, CancelToken

CANCEL_GRACE_S = 120.0
"""After a cancel, how long the child may take to stop cleanly (it finishes the current batch and
writes its checkpoint) before it is terminated."""


# ---------------------------------------------------------------------------- events as JSON lines
def event_to_json(event: object) -> str:
    """One engine event (a dataclass of :mod:`cnn_studio.events`) as a protocol line."""
    data = dataclasses.asdict(event) if dataclasses.is_dataclass(event) else {"level": "info", "text": str(event)}
    name = type(event).__name__ if dataclasses.is_dataclass(event) else "LogMessage"
    return json.dumps({"event": name, "data": data}, default=str)


def event_from_json(obj: dict[str, Any]) -> object:
    """The event back from :func:`event_to_json`'s object (unknown kinds become a LogMessage)."""
    cls = getattr(ev, str(obj.get("event")), None)
    data = obj.get("data") or {}
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return ev.LogMessage("info", f"{obj.get('event')}: {data}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def error_to_dict(exc: BaseException) -> dict[str, str]:
    """An exception as plain data: a StudioError's class, message and hint; anything else with its traceback."""
    if isinstance(exc, errors.StudioError):
        return {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    return {"type": type(exc).__name__, "message": str(exc), "hint": "", "traceback": traceback.format_exc()}


def error_from_dict(err: dict[str, Any], log_path: str | os.PathLike[str] | None,
                    what: str = "The training process") -> BaseException:
    """:func:`error_to_dict` back: the same StudioError, or a RunError saying it looks like a bug."""
    cls = getattr(errors, str(err.get("type")), None)
    if isinstance(cls, type) and issubclass(cls, errors.StudioError):
        return cls(err.get("message", ""), err.get("hint", ""))
    where = f" The details are in {log_path}." if log_path else ""
    return errors.RunError(f"{what} failed: {err.get('type')}: {err.get('message')}",
                           "This looks like a bug in CNN Studio or TensorFlow rather than a problem with "
                           f"your images; please report it with the log.{where}\n{err.get('traceback', '')}")


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
        import tempfile

        fd, name = tempfile.mkstemp(prefix=f"cnn-studio-{prefix}-", suffix=".log")
        os.close(fd)
        log_path = name
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def claim_stdout(mode: str = "w"):
    """In a child: a private handle on the real stdout for the protocol; fd 1 and ``sys.stdout`` go to stderr.

    Libraries that print (TensorFlow, Keras' progress bars) then end up in the log, never in the
    protocol stream.
    """
    kwargs = {"encoding": "utf-8", "buffering": 1} if "b" not in mode else {}
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), mode, **kwargs)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return protocol


# ---------------------------------------------------------------------------- parent side
def run_in_child(job: str, payload: dict[str, Any], *, sink: ev.EventSink = ev.null_sink,
                 cancel: CancelToken | None = None, log_path: str | os.PathLike[str] | None = None,
                 python: str | None = None) -> Any:
    """Run ``job`` (a key of :data:`JOBS`) with ``payload`` in a child process.

    Parameters
    ----------
    job, payload : what to run; the payload must be JSON-serialisable.
    sink : receives the child's events, in order, on the calling thread.
    cancel : set it to stop the child after its current batch (it then keeps its checkpoints).
    log_path : where the child's stderr (TensorFlow's messages, warnings) is written; a temporary
        file when not given.
    python : the interpreter (default: this one).

    Returns
    -------
    The job's JSON result.

    Raises
    ------
    Cancelled
        After ``cancel`` was set and the child stopped.
    StudioError
        The child's own error (same class, message and hint), or a :class:`RunError` when the child
        died without saying why (killed for memory, a crash), naming the exit code and the log.
    """
    if job not in JOBS:
        raise ValueError(f"Expected one of {sorted(JOBS)}, received {job!r}")
    log_path = log_file(job, log_path)
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        proc = subprocess.Popen([python or sys.executable, "-m", "cnn_studio.child_process"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                encoding="utf-8", bufsize=1, env=child_env())
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, name=f"child-{job}-reader", daemon=True)
        reader.start()
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"job": job, "payload": payload}) + "\n")
            proc.stdin.flush()
            return _relay(proc, lines, sink, cancel, log_path)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(5)


def _send_cancel(proc: subprocess.Popen) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write("cancel\n")
        proc.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _relay(proc: subprocess.Popen, lines: queue.Queue, sink, cancel: CancelToken | None, log_path: Path) -> Any:
    cancel_sent_at: float | None = None
    outcome: dict[str, Any] | None = None
    while True:
        if cancel is not None and cancel.cancelled and cancel_sent_at is None:
            _send_cancel(proc)
            cancel_sent_at = time.monotonic()
        if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_S:
            proc.kill()
            raise Cancelled()
        try:
            line = lines.get(timeout=0.05)
        except queue.Empty:
            continue
        if line is None:
            break
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # not ours (a library wrote to the protocol stream before it was moved)
        if "event" in obj:
            sink(event_from_json(obj))
        elif {"returned", "cancelled", "error"} & set(obj):
            outcome = obj
    code = proc.wait()
    if outcome is None:
        raise _died(code, log_path, cancelled=cancel_sent_at is not None)
    if "returned" in outcome:
        return outcome["returned"]
    if "cancelled" in outcome:
        raise Cancelled()
    raise error_from_dict(outcome["error"], log_path)


def _died(code: int, log_path: Path, *, cancelled: bool) -> BaseException:
    if cancelled:
        return Cancelled()
    tail = ""
    try:
        tail = "".join(deque(open(log_path, encoding="utf-8", errors="replace"), maxlen=8)).strip()
    except OSError:
        pass
    why = {-9: "it was killed, most likely because the computer ran out of memory",
           137: "it was killed, most likely because the computer ran out of memory",
           -11: "it crashed inside TensorFlow (segmentation fault)",
           139: "it crashed inside TensorFlow (segmentation fault)"}.get(code, f"it exited with code {code}")
    return errors.RunError(
        f"The training process stopped unexpectedly: {why}.",
        "Whatever it had saved is kept: the best model so far stays in the run folder, and "
        "\"Continue training\" on the Train step (or `cnn-studio resume RUN_DIR`) goes on from the last "
        "saved epoch. Try a smaller batch size or image size, or close other programs. "
        f"TensorFlow's messages are in {log_path}." + (f"\nLast lines:\n{tail}" if tail else ""))


# ---------------------------------------------------------------------------- child side
def _job_train(payload: dict[str, Any], sink, cancel) -> dict[str, Any]:
    from cnn_studio.data.records import Split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    result = train(TrainConfig.from_dict(payload["config"]), Split.from_dict(payload["split"]),
                   payload["run_dir"], sink=sink, cancel=cancel)
    return train_result_to_json(result)


def _job_resume(payload: dict[str, Any], sink, cancel) -> dict[str, Any]:
    from cnn_studio.training.trainer import resume

    return train_result_to_json(resume(payload["run_dir"], sink=sink, cancel=cancel))


def _job_evaluate(payload: dict[str, Any], sink, cancel) -> dict[str, Any]:
    """Evaluate a run; the metrics are in its metrics.json (``evaluation.load_metrics``)."""
    from cnn_studio.evaluation import evaluate_run

    evaluate_run(payload["run_dir"], sink=sink, cancel=cancel)
    return {"run_dir": payload["run_dir"]}


def _job_robustness(payload: dict[str, Any], sink, cancel) -> dict[str, Any]:
    """Run the robustness check of a run; the report is returned (and saved as robustness.json)."""
    from cnn_studio.explain.robustness import run_robustness

    return run_robustness(payload["run_dir"], sink=sink, cancel=cancel).to_dict()


def _job_export(payload: dict[str, Any], sink, cancel) -> list[dict[str, Any]]:
    """Export several formats in one process; a format that fails is reported and the others still run."""
    from cnn_studio.export.writer import export_all

    results = export_all(payload["run_dir"], payload["formats"], payload["out_dir"],
                         quantization=payload.get("quantization", "float32"), sink=sink, cancel=cancel,
                         keep_going=True)
    return [{"format": r[0], "error": error_to_dict(r[1])} if isinstance(r, tuple) else {"record": r.to_dict()}
            for r in results]


def export_results_from_json(items: list[dict[str, Any]]) -> list:
    """:func:`_job_export`'s list back as ExportRecords, or ``(format, StudioError)`` for a failed format."""
    from cnn_studio.export.writer import ExportRecord

    results: list = []
    for item in items:
        if "record" in item:
            d = dict(item["record"])
            d["card_paths"] = tuple(d.get("card_paths", ()))
            d["notes"] = tuple(d.get("notes", ()))
            results.append(ExportRecord(**d))
        else:
            results.append((item["format"], error_from_dict(item["error"], None)))
    return results


def _job_selftest(payload: dict[str, Any], sink, cancel) -> Any:
    """A job without TensorFlow, for tests: counts, can be cancelled, fails or dies on request."""
    for i in range(int(payload.get("n", 3))):
        if cancel.cancelled:
            raise Cancelled()
        sink(ev.TaskProgress("selftest", i + 1, int(payload.get("n", 3))))
        time.sleep(float(payload.get("sleep", 0.0)))
    if payload.get("print"):
        print("a library writing to stdout")  # must not break the protocol
    if payload.get("fail") == "studio":
        raise errors.DatasetError("The folder has one class.", "Add a second class folder.")
    if payload.get("fail") == "bug":
        raise ZeroDivisionError("division by zero")
    if payload.get("fail") == "die":
        os._exit(9)
    return {"done": int(payload.get("n", 3)), "pid": os.getpid()}


JOBS = {"train": _job_train, "resume": _job_resume, "evaluate": _job_evaluate, "robustness": _job_robustness,
        "export": _job_export, "selftest": _job_selftest}

IN_PROCESS_ENV = "CNN_STUDIO_IN_PROCESS"
"""Set to 1 to run the app's jobs in its own process (debugging); by default each runs in a child."""


def in_process_requested() -> bool:
    """True when :data:`IN_PROCESS_ENV` asks for jobs in the calling process."""
    return os.environ.get(IN_PROCESS_ENV, "") not in ("", "0")


def run_job(job: str, payload: dict[str, Any], *, sink: ev.EventSink = ev.null_sink,
            cancel: CancelToken | None = None, log_path: str | os.PathLike[str] | None = None) -> Any:
    """:func:`run_in_child`, or the same job in this process when :func:`in_process_requested`.

    Either way the caller gets the job's JSON result, its events and its errors, so it needs no
    branch of its own.
    """
    if not in_process_requested():
        return run_in_child(job, payload, sink=sink, cancel=cancel, log_path=log_path)
    if job not in JOBS:
        raise ValueError(f"Expected one of {sorted(JOBS)}, received {job!r}")
    return JOBS[job](payload, sink, cancel if cancel is not None else CancelToken())


def train_result_to_json(result) -> dict[str, Any]:
    return {"run_dir": str(result.run_dir), "status": result.status, "best_model": str(result.best_model),
            "last_model": str(result.last_model), "epochs_done": int(result.epochs_done),
            "class_names": list(result.class_names), "history": result.history}


def train_result_from_json(d: dict[str, Any]):
    """The :class:`~cnn_studio.training.trainer.TrainResult` of a ``train``/``resume`` job."""
    from cnn_studio.training.trainer import TrainResult

    return TrainResult(run_dir=Path(d["run_dir"]), status=d["status"], best_model=Path(d["best_model"]),
                       last_model=Path(d["last_model"]), epochs_done=int(d["epochs_done"]),
                       class_names=tuple(d["class_names"]), history=list(d.get("history", [])))


def child_main() -> int:
    """The child's entry point (``python -m cnn_studio.child_process``)."""
    protocol = claim_stdout("w")
    lock = threading.Lock()
    cancel = CancelToken()

    def send(obj: dict[str, Any] | str) -> None:
        text = obj if isinstance(obj, str) else json.dumps(obj, default=str)
        with lock:
            try:
                protocol.write(text + "\n")
                protocol.flush()
            except (BrokenPipeError, OSError, ValueError):
                cancel.cancel()  # the parent is gone: stop at the next batch, keeping the checkpoints

    request = json.loads(sys.stdin.readline() or "{}")

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "cancel":
                break
        cancel.cancel()  # "cancel", or end of input: the parent is gone

    threading.Thread(target=watch_stdin, name="cancel-watch", daemon=True).start()
    try:
        result = JOBS[request["job"]](request.get("payload") or {}, lambda e: send(event_to_json(e)), cancel)
    except Cancelled:
        send({"cancelled": True})
    except errors.StudioError as exc:
        send({"error": error_to_dict(exc)})
    except BaseException as exc:  # noqa: BLE001 - report every failure to the parent, then exit non-zero
        send({"error": error_to_dict(exc)})
        return 1
    else:
        send({"returned": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main())
