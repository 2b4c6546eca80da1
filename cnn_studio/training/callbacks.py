"""Keras callbacks that bridge training to CNN Studio: events, cancellation and atomic checkpoints.

* :class:`EventCallback` maps Keras hooks to ``events.py`` dataclasses, throttles per-batch events
  to ~10 per second at the source, and turns a set :class:`~cnn_studio.core.cancel.CancelToken` into
  ``model.stop_training`` / ``model.stop_evaluating`` (checked before every batch; Keras stops
  after that batch), so a Stop ends training at most one batch after it was pressed.
* :class:`AtomicCheckpoints` saves the *full* classifier (also while only the head is being fit on
  cached features) to ``last.keras`` every epoch and ``best.keras`` when the monitored value
  improves, appends the epoch to ``history.csv`` and records progress in ``state.json`` — each
  file through a temporary file and a rename. Keras' ``ModelCheckpoint`` and ``CSVLogger`` write in
  place, so a crash mid-write would leave a torn file; a resumed run would also repeat rows.

An epoch cut short by a cancel still reaches ``on_epoch_end`` in Keras (with the logs of the
batches that ran and of a one-batch validation). It is *not* a finished epoch: EventCallback sends
no ``EpochEnded`` for it, the history gets no row, ``best.keras`` and ``epochs_done`` are not
updated; only ``last.keras`` is written, so the weights learned so far are kept, and ``resume``
runs that epoch again in full. A cancel that arrives in ``EpochEnded`` (between epochs) stops
training before the next epoch starts.

A loss that stops being a number (NaN) or becomes infinite ends training: :class:`EventCallback`
sees it in the running loss it reads for a live-curve point (the first batch of each epoch and
then at least ten times a second, so within a fraction of a second) or at the epoch's end, stops
``fit`` after that batch and records :attr:`EventCallback.diverged`; :class:`AtomicCheckpoints`
then writes nothing more (its last checkpoint, written before the loss broke, stays the run's
model) and the trainer raises :func:`diverged_error`. Keras' ``TerminateOnNaN`` would stop too,
but says nothing and would let the broken weights be saved.

The best model is chosen on ``val_loss`` (lower is better), not ``val_accuracy``: on the small
validation sets users have, accuracy moves in coarse steps and often ties, while the loss also
rewards confident correct answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken
from cnn_studio.core.errors import StudioError
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.training.checkpoint_files import read_history, save_model, write_history
from cnn_studio.training.devices import GpuMemorySampler


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _current_rate(model) -> float:
    """The learning rate ``model``'s optimizer steps with now (NaN when it has none)."""
    try:
        return float(model.optimizer.learning_rate)
    except (AttributeError, TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class PhaseFacts:
    """What :class:`EventCallback` tells about the phase being fit, in every event it sends."""

    phase: str  # "head" or "fine_tune" (or a label check's "fold 2"), copied into the events
    epochs_total: int  # epochs of the whole run (all phases), for "epoch 3/10" displays
    batch_size: int  # images per batch, for images/s
    steps: int | None = None  # batches per epoch (None: as Keras counts them)


class EventCallback(keras.callbacks.Callback):
    """Keras hooks → engine events; cancel token → stop after the current batch.

    Parameters
    ----------
    sink : receives the events.
    cancel : checked before every train and validation batch (``None``: never cancelled).
    phase : the phase being fit (:class:`PhaseFacts`): its name, epochs and batches.
    throttle_s : at most one ``BatchEnded`` per this many seconds (the first and last batch of an
        epoch always report).

    Examples
    --------
    >>> model.fit(ds, epochs=3, callbacks=[EventCallback(print, None, PhaseFacts("head", epochs_total=3,
    ...                                                                          batch_size=32))])  # doctest: +SKIP
    """

    def __init__(self, sink: ev.EventSink, cancel: CancelToken | None, phase: PhaseFacts, *,
                 throttle_s: float = 0.1) -> None:
        super().__init__()
        self.sink = sink
        self.cancel = cancel
        self.phase = phase.phase
        self.epochs_total = phase.epochs_total
        self.batch_size = phase.batch_size
        self.steps = phase.steps
        self.throttle_s = throttle_s
        self.interrupted = False  # the current epoch was cut short by a cancel
        self.diverged: Diverged | None = None  # the loss became NaN/inf: training stopped
        self._epoch = 0
        self._epoch_start = 0.0
        self._last_emit = 0.0
        self._images = 0
        self.memory = GpuMemorySampler()  # GPU memory in use, read at most once a second (None on a CPU)

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def _stop_before_train_batch(self) -> bool:
        """Whether this train batch is the last: several workers agree on it (``multi_worker.AgreedStop``)."""
        agree = getattr(self.cancel, "at_train_batch", None)
        return agree() if agree is not None else self._cancelled()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._epoch_start = time.perf_counter()
        self._images = 0
        self._last_emit = 0.0
        self.interrupted = False
        self.sink(ev.EpochStarted(phase=self.phase, epoch=epoch, epochs=self.epochs_total))

    # Batch work happens in the *begin* hooks, which Keras calls with no logs. Overriding an
    # ``on_*_batch_end`` hook would make Keras turn every batch's logs into Python floats on the
    # training thread (a device sync per batch, ~40% of a MobileNetV2 epoch on a CPU in
    # bench/train.py); without one it does that on its callback thread pool. So "batch k ended"
    # is reported when batch k + 1 begins (and the last one at the epoch's end, with its logs).
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch > 0:
            self._batch_ended(batch, {})
        if self._stop_before_train_batch():  # this batch still runs; Keras stops right after it
            self.model.stop_training = True
            self.interrupted = True

    def _batch_ended(self, step: int, logs: dict[str, float], force: bool = False) -> None:
        self._images += self.batch_size if step > 0 else 0
        now = time.perf_counter()
        if step == 1 or force or now - self._last_emit >= self.throttle_s:
            self._last_emit = now
            steps = self.steps or (self.params or {}).get("steps") or 0
            if not logs:
                logs = self._running_loss()
            if self._diverges(step, logs):
                return
            self.sink(ev.BatchEnded(phase=self.phase, epoch=self._epoch, step=step, steps=int(steps),
                                    logs=logs, images_per_s=self._images / max(now - self._epoch_start, 1e-9),
                                    gpu_memory_mib=self.memory.sample(now)))

    def _diverges(self, step: int, logs: dict[str, float]) -> bool:
        """True (and training stops after this batch) when the loss is NaN or infinite."""
        loss = logs.get("loss")
        if self.diverged is not None or loss is None or math.isfinite(loss):
            return self.diverged is not None
        self.diverged = Diverged(self.phase, self._epoch, step, loss)
        self.model.stop_training = True
        self.interrupted = True  # this epoch does not count: no history row, no checkpoint of it
        self.sink(ev.LogMessage("error", self.diverged.describe()))
        return True

    def _running_loss(self) -> dict[str, float]:
        """Keras' running mean of the loss this epoch, read from its tracker (one small read, throttled)."""
        try:
            for metric in self.model.metrics:
                if metric.name == "loss":
                    return {"loss": float(metric.result())}
        except Exception:  # noqa: BLE001 - a live curve point is never worth failing a batch over
            pass
        return {}

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._cancelled() or self.diverged is not None:  # validation cut short: the epoch does not count
            self.model.stop_evaluating = True
            self.interrupted = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        train_logs = {k: v for k, v in _floats(logs).items() if not k.startswith("val_")}
        steps = int(self.steps or (self.params or {}).get("steps") or 0) or self._images // max(self.batch_size, 1) + 1
        if self.interrupted or self._diverges(steps, train_logs):
            return  # not a finished epoch: no EpochEnded (see module docstring)
        self._batch_ended(steps, train_logs, force=True)
        seconds = time.perf_counter() - self._epoch_start
        self.sink(ev.EpochEnded(phase=self.phase, epoch=epoch, epochs=self.epochs_total, logs=_floats(logs),
                                seconds=seconds, images_per_s=self._images / max(seconds, 1e-9)))
        if self._cancelled():
            self.model.stop_training = True


@dataclass(frozen=True)
class Diverged:
    """Where the loss stopped being a finite number."""

    phase: str
    epoch: int  # 0-based
    step: int  # batches of the epoch done when it was seen
    loss: float

    def describe(self) -> str:
        what = "NaN (not a number)" if math.isnan(self.loss) else "infinite"
        return f"Training stopped in epoch {self.epoch + 1}, batch {self.step}: the loss became {what}."


def diverged_error(diverged: Diverged, learning_rate: float, checkpoint_epoch: int) -> StudioError:
    """The error a run whose loss became NaN/inf ends with: what happened, what is kept, what to try."""
    flag = "--fine-tune-learning-rate" if diverged.phase == "fine_tune" else "--learning-rate"
    kept = (f"The last good checkpoint (after epoch {checkpoint_epoch}) is kept in the run folder."
            if checkpoint_epoch else "No epoch had finished with a sound loss, so there is no model to keep.")
    return StudioError(
        f"{diverged.describe()} The model's weights are broken from there on, so training was stopped. {kept}",
        f"Usually the learning rate is too high: try one ten times lower ({flag} {learning_rate / 10:g}, it was "
        f"{learning_rate:g}). Also check the images (a damaged file, or extreme values in multi-band or medical "
        "data) and, if training started from a weights file, that it is sound (`cnn-studio weights import FILE` "
        "checks it).")


@dataclass(frozen=True)
class CheckpointRules:
    """How :class:`AtomicCheckpoints` picks the best epoch and paces its writes, and where its ``fit`` starts."""

    monitor: str = "val_loss"  # lower is better; without validation logs ``loss`` is used
    best: float = math.inf  # the best value already in best.keras (from state.json when resuming)
    min_interval_s: float = 30.0  # least time between two model writes (0: every epoch)
    initial_epoch: int = 0  # the global epoch this ``fit`` starts at (finished epochs before it)


class AtomicCheckpoints(keras.callbacks.Callback):
    """Finished epochs go to history.csv and state.json; the model to last.keras and best.keras.

    All four are written together, at most every ``min_interval_s`` seconds, and always when
    ``fit`` ends (phase end, Stop, early stopping): the ``.keras`` files are tens of MB for an
    ImageNet backbone and every small file is fsynced, so writing each epoch would cost a large
    share of a short epoch (head epochs on cached features take milliseconds). In between, the
    rows wait in memory and so do an improved model's weights. The UI and CLI follow epochs
    through events, not files. A hard kill loses at most ``min_interval_s`` of training:
    ``state.json["checkpoint_epoch"]`` says how many finished epochs last.keras holds, and
    ``resume`` continues from there (history rows past it are replaced as the epochs are rerun).

    Parameters
    ----------
    full_model : the classifier to save; it may differ from the model being fit (the feature
        cache fits a head model that shares the classifier's head layers).
    layout : the run folder.
    sink : receives :class:`~cnn_studio.core.events.CheckpointSaved`.
    rules : what counts as best, where this ``fit`` starts, how often to write (:class:`CheckpointRules`).
    skip_epoch : asked at each epoch end; true for an epoch cut short by a cancel (usually
        ``lambda: event_callback.interrupted``): it gets no history row and cannot become best.
    diverged : asked when ``fit`` ends; true when the loss became NaN/inf (``event_callback.diverged``):
        nothing more is written, so the last checkpoint before it stays.
    """

    def __init__(self, full_model, layout: RunLayout, sink: ev.EventSink, *, rules: CheckpointRules | None = None,
                 skip_epoch: Callable[[], bool] | None = None, diverged: Callable[[], bool] | None = None) -> None:
        super().__init__()
        rules = rules or CheckpointRules()
        self.full_model = full_model
        self.diverged = diverged or (lambda: False)
        self.layout = layout
        self.sink = sink
        self.monitor = rules.monitor
        self.best = rules.best
        self.skip_epoch = skip_epoch or (lambda: False)
        self.min_interval_s = rules.min_interval_s
        self.epochs_done = rules.initial_epoch
        self._key = rules.monitor
        self._last_write = 0.0
        self._trained = False  # weights changed since last.keras was written
        self._best_pending: tuple[int, float] | None = None  # (epoch, value) not yet in best.keras
        self._best_weights: list | None = None  # its weights, when they are no longer the model's
        self._best_is_current = False
        self._rows: list[dict[str, Any]] = []  # finished epochs not yet in history.csv

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._last_write = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._best_pending is not None and self._best_weights is None:
            self._best_weights = self.full_model.get_weights()  # numpy copies, ~10 ms for MobileNetV2
        self._best_is_current = False

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._trained = True  # (a begin hook: see EventCallback about batch-end hooks)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.skip_epoch():
            return  # not a finished epoch; on_train_end keeps its weights in last.keras
        logs = _floats(logs)
        if "learning_rate" not in logs:  # a rate that follows a schedule (the fine-tune cosine): its value now
            logs["learning_rate"] = _current_rate(self.model)
        self._key = self.monitor if self.monitor in logs else "loss"
        value = logs.get(self._key, math.nan)
        if math.isfinite(value) and value < self.best:
            self.best = value
            self._best_pending, self._best_weights, self._best_is_current = (epoch, value), None, True
        self.epochs_done = epoch + 1
        self._rows.append({"epoch": epoch, **logs})
        if time.monotonic() - self._last_write >= self.min_interval_s:
            self._write()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.diverged():
            self._keep_best_before_divergence()
            return
        if self._trained or self._rows or self._best_pending is not None:
            self._write()

    def _keep_best_before_divergence(self) -> None:
        """The weights are NaN/inf now, so they are never written. A best epoch that finished since the last
        write (its weights were copied when the next epoch began) is still sound: it becomes best.keras and
        last.keras, without the optimizer (its state may be broken too; resume starts a fresh one), with the
        history up to it. Else the files written before stay the run's last good checkpoint."""
        if self._best_pending is None or self._best_weights is None:
            return
        epoch = self._best_pending[0]
        self.full_model.set_weights(self._best_weights)
        self._best_is_current = True
        self.epochs_done = epoch + 1
        self._rows = [r for r in self._rows if r["epoch"] <= epoch]
        self._write(include_optimizer=False)

    # ------------------------------------------------------------------ writing
    def _write(self, include_optimizer: bool = True) -> None:
        save_model(self.full_model, self.layout.last_model, include_optimizer=include_optimizer)  # resume needs it
        # state.json follows last.keras at once: a failure further on (a full disk while writing
        # best.keras) must not leave state.json saying fewer epochs than last.keras holds
        self._update_state(epochs_done=self.epochs_done, checkpoint_epoch=self.epochs_done)
        self.sink(ev.CheckpointSaved(path=str(self.layout.last_model), kind="last",
                                     epoch=max(self.epochs_done - 1, 0)))
        if self._best_pending is not None:
            epoch, value = self._best_pending
            if self._best_is_current:
                save_model(self.full_model, self.layout.best_model, include_optimizer=False)
            else:
                current = self.full_model.get_weights()
                self.full_model.set_weights(self._best_weights)
                try:
                    save_model(self.full_model, self.layout.best_model, include_optimizer=False)
                finally:
                    self.full_model.set_weights(current)
            self.sink(ev.CheckpointSaved(path=str(self.layout.best_model), kind="best", epoch=epoch,
                                         monitor=self._key, value=value))
            self._best_pending, self._best_weights = None, None
        if self._rows:
            # rows of epochs from the first new one on come from a run killed before its checkpoint
            first = self._rows[0]["epoch"]
            kept = [r for r in read_history(self.layout.history) if int(float(r["epoch"])) < first]
            write_history(self.layout.history, kept + self._rows)
            self._rows = []
        self._update_state(epochs_done=self.epochs_done, checkpoint_epoch=self.epochs_done, monitor=self._key,
                           best_value=self.best if math.isfinite(self.best) else None)
        self._trained = False
        self._last_write = time.monotonic()

    def _update_state(self, **changes: Any) -> None:
        state = read_json(self.layout.state) if self.layout.state.exists() else {}
        state.update(changes)
        write_json(self.layout.state, state)
