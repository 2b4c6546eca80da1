"""Several workers on this computer, started from one training job (the Train step's "Workers on this computer").

:func:`train_with_local_workers` is called like :func:`cnn_studio.training.trainer.train` — in the
app's training child process (:func:`cnn_studio.core.child_process.run_job`) — and trains with
``tf.distribute.MultiWorkerMirroredStrategy`` on 127.0.0.1:

* **this process is the chief** (worker 0): it alone writes the run folder, and its ``sink`` gets
  the events of a one-worker run (curves, epochs, checkpoints, the review, TrainFinished);
* the N-1 other workers are child processes of their own (:class:`~cnn_studio.core.child_process.Server`),
  each given *the chief's own* ``TrainConfig`` and ``Split`` objects (so the same settings and the
  same images, nothing re-scanned) and its ``TF_CONFIG``; each trains into a temporary folder that is
  removed at the end, and writes its messages to ``logs/train-<run>-worker<I>.log``.

Stopping all workers at the same batch (:class:`AgreedStop`): in synchronous training every worker
must run the same steps, or the others wait for ever in the next all-reduce. When Stop is pressed the
chief picks "the train batch after the next one" and writes that number to a stop file; every worker
counts its train batches and stops at that batch. The file is written before the chief starts its
next step, and no worker can finish that step without the chief, so every worker reads it in time.
Training then ends the way a one-worker Stop does (the epoch cut short is not counted, last.keras is
kept), so the run can be continued ("Continue training", on one worker).

A worker that dies or fails ends the run with a :class:`~cnn_studio.core.errors.RunError` naming the worker
and its log file, instead of the chief waiting for it; so does a Stop that the workers do not honour
within :data:`STOP_GRACE_S`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.child_process import Server
from cnn_studio.core.errors import ConfigError, RunError, StudioError
from cnn_studio.core.fsutil import write_text
from cnn_studio.core.paths import app_data_dir
from cnn_studio.training import devices, distributed
from cnn_studio.training.trainer import train

STOP_GRACE_S = 90.0
"""After Stop, how long the workers may take to reach the agreed batch before the run is ended anyway."""

PARENT_GONE_GRACE_S = 10.0
"""A worker whose chief disappeared (killed, crashed) exits after this long rather than wait in a collective."""


def worker_log(run_dir: str | os.PathLike[str], index: int) -> Path:
    """Where worker ``index`` (1, 2, …) of a run started from the app writes its messages."""
    return app_data_dir() / "logs" / f"train-{Path(run_dir).name}-worker{index}.log"


def workers_line(n: int) -> str:
    """The log line that says how many workers train (the Train step shows it)."""
    return f"Training with {n} workers on this computer (MultiWorkerMirroredStrategy)."


class AgreedStop:
    """A cancel token that every worker of a synchronous run sees set at the *same* train batch.

    ``own`` is the chief's real token (the Stop button); the workers have none and read ``stop_file``.
    :meth:`at_train_batch` is called before every train batch (``EventCallback`` does); ``cancelled``
    is true from the agreed batch on, on every worker alike, so the validation and epoch-end checks
    agree too. A Stop that comes while no batch runs (loading, building the model) takes effect at
    the first batch.
    """

    def __init__(self, stop_file: str | os.PathLike[str], own: CancelToken | None = None) -> None:
        self.stop_file = Path(stop_file)
        self.own = own
        self.batches = 0
        self.target: int | None = None
        self.asked_at: float | None = None  # when the chief's own token was first seen set
        self._stopped = False

    @property
    def chief(self) -> bool:
        return self.own is not None

    @property
    def cancelled(self) -> bool:
        return self._stopped

    def cancel(self) -> None:  # CancelToken's interface; a worker's stop comes through at_train_batch
        if self.own is not None:
            self.own.cancel()

    def raise_if_cancelled(self) -> None:
        if self._stopped:
            raise Cancelled()

    def at_train_batch(self) -> bool:
        """One more train batch is about to run: True when this one is the agreed last."""
        self.batches += 1
        if self._stopped:
            return True
        if self.target is None:
            if self.chief:
                if self.own.cancelled:
                    self.target = self.batches + 1
                    write_text(self.stop_file, str(self.target))  # atomic: a worker never reads half a number
            elif self.stop_file.exists():
                self.target = int(self.stop_file.read_text(encoding="utf-8"))
        if self.target is not None and self.batches >= self.target:
            self._stopped = True
        return self._stopped


def _watch_parent(parent: int) -> None:
    """In a worker: exit when the process that started it is gone (it cannot leave us waiting in a collective)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        time.sleep(PARENT_GONE_GRACE_S)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@dataclass(frozen=True)
class WorkerPlace:
    """Where an extra worker stands: its place in the cluster, the chief's stop file, the chief's process.

    It travels to the worker's child process as a pickle, with the chief's config and split.
    """

    tf_config: dict  # this worker's TF_CONFIG (the cluster and its own task index)
    stop_file: str  # where the chief writes the batch to stop at (:class:`AgreedStop`)
    parent: int  # the chief's process id: the worker exits when it is gone


def run_worker(config, split, place: WorkerPlace, *, sink=ev.null_sink, cancel: CancelToken | None = None) -> int:
    """One extra worker (in its own child process): the chief's config and split, its place, a temporary folder.

    Returns the epochs it trained. ``cancel`` (the child's own token) is not used: a worker stops at
    the batch the chief chose (:class:`AgreedStop`), never on its own.
    """
    del sink, cancel
    _watch_parent(place.parent)
    os.environ["TF_CONFIG"] = json.dumps(place.tf_config)
    where = distributed.worker_out_dir("unused", place.tf_config)
    try:
        result = train(config.replace(extra={**config.extra, "review": False}), split, where,
                       cancel=AgreedStop(place.stop_file))  # type: ignore[arg-type]
        return result.epochs_done
    finally:
        shutil.rmtree(where.parent, ignore_errors=True)


class _Worker:
    """An extra worker: its child process and the thread that waits for its answer."""

    def __init__(self, index: int, n: int, log_path: Path) -> None:
        self.index, self.n, self.log_path = index, n, log_path
        self.server: Server | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def start(self, config, split, tf_config: dict, stop_file: Path) -> None:
        def run() -> None:
            try:
                self.server = Server(None, label=f"worker {self.index}", log_path=self.log_path, _log_mode="wb")
                self.server.call("cnn_studio.training.multi_worker:run_worker", config, split,
                                 WorkerPlace(tf_config, str(stop_file), os.getpid()))
            except BaseException as exc:  # noqa: BLE001 - reported by the chief
                self.error = exc
            finally:
                self.done.set()

        threading.Thread(target=run, name=f"worker-{self.index}", daemon=True).start()

    def failure(self) -> RunError:
        why = self.error.message if isinstance(self.error, StudioError) else repr(self.error)
        return RunError(f"Worker {self.index} of {self.n} on this computer stopped: {why}",
                        f"Its messages are in {self.log_path}. The chief's saved epochs are kept: \"Continue "
                        "training\" goes on from the last one (on one worker), or start again with 1 worker.")

    def stop(self) -> None:
        if self.server is not None:
            try:
                self.server.close()
            except Exception:  # noqa: BLE001 - stopping is best effort
                pass


WORKER_REPORT_S = 10.0
"""How long a chief whose training failed waits for a worker to report that it died first."""


def _failed(workers: list[_Worker], stop: AgreedStop) -> _Worker | None:
    """The first worker that ended with an error (a Stop everyone agreed on is not one)."""
    return next((w for w in workers if w.done.is_set() and w.error is not None
                 and not (isinstance(w.error, Cancelled) and stop.cancelled)), None)


def _check_can_lead() -> None:
    """ConfigError when this process cannot lead workers: already in a cluster, or already trained on several."""
    if distributed.tf_config() is not None:
        raise ConfigError("TF_CONFIG is set: this process is already part of a cluster.",
                          "Unset TF_CONFIG to start workers on this computer.")
    if devices._MULTI_WORKER:
        raise ConfigError("This process already trained on several workers, and TensorFlow allows that once "
                          "per process.", "Run each multi-worker training in a process of its own (the app's "
                          "training child does; do not set CNN_STUDIO_IN_PROCESS=1 for it).")


def _watch_chief(thread: threading.Thread, workers: list[_Worker], stop: AgreedStop, cancel: CancelToken) -> None:
    """Wait for the chief's training; a failed worker raises its failure, a Stop not taken in time Cancelled."""
    while thread.is_alive():
        thread.join(0.2)
        failed = _failed(workers, stop)
        if failed is not None and thread.is_alive():
            raise failed.failure()
        if cancel.cancelled and stop.asked_at is None:
            stop.asked_at = time.monotonic()
        if stop.asked_at is not None and time.monotonic() - stop.asked_at > STOP_GRACE_S:
            raise Cancelled()


def _raise_chief_error(error: BaseException, workers: list[_Worker], stop: AgreedStop) -> None:
    """Raise the chief's error, or the failure of the worker that caused it."""
    # A worker that died breaks the chief's next collective step ("UnavailableError ... Restart your
    # program"), often before its own end is seen: name the worker when one failed.
    deadline = time.monotonic() + WORKER_REPORT_S
    while _failed(workers, stop) is None and time.monotonic() < deadline and \
            not all(w.done.is_set() for w in workers):
        time.sleep(0.1)
    failed = _failed(workers, stop)
    if failed is not None:
        raise failed.failure() from error
    raise error


def train_with_local_workers(config, split, run_dir: str | os.PathLike[str], *, sink: ev.EventSink = ev.null_sink,
                             cancel: CancelToken | None = None):
    """:func:`~cnn_studio.training.trainer.train` on ``config.workers`` workers of this computer; this process is the chief.

    Call it in a process of its own (the app's training child): it sets ``TF_CONFIG`` here, and
    TensorFlow allows one multi-worker strategy per process. Same events, result and errors as
    ``train``; a failed worker raises :class:`RunError` naming it and its log.
    """
    n = int(config.workers)
    if n < 2:
        return train(config, split, run_dir, sink=sink, cancel=cancel)
    _check_can_lead()
    cancel = cancel if cancel is not None else CancelToken()
    configs = distributed.local_cluster(n)
    shared = Path(tempfile.mkdtemp(prefix="cnn-studio-workers-"))
    stop = AgreedStop(shared / "stop", own=cancel)
    sink(ev.LogMessage("info", workers_line(n)))
    workers = [_Worker(i, n, worker_log(run_dir, i)) for i in range(1, n)]
    for w in workers:
        w.log_path.parent.mkdir(parents=True, exist_ok=True)
        w.start(config, split, configs[w.index], shared / "stop")
    outcome: dict = {}

    def chief() -> None:
        try:
            outcome["result"] = train(config, split, run_dir, sink=sink, cancel=stop)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - raised again on the calling thread
            outcome["error"] = exc

    os.environ["TF_CONFIG"] = json.dumps(configs[0])
    thread = threading.Thread(target=chief, name="chief", daemon=True)
    try:
        thread.start()
        _watch_chief(thread, workers, stop, cancel)
        if "error" in outcome:
            _raise_chief_error(outcome["error"], workers, stop)
        for w in workers:  # they end with the chief (the same last step); give them a moment to clean up
            w.done.wait(60)
        return outcome["result"]
    finally:
        os.environ.pop("TF_CONFIG", None)
        for w in workers:
            if not w.done.is_set():
                w.stop()
        shutil.rmtree(shared, ignore_errors=True)
