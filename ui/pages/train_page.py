"""Step 3, Train: start/stop one training run on a worker thread and watch it live."""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
from html import escape
from pathlib import Path

from cnn_studio.ui.messages import describe_error, severity_colour, show_error
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.widgets.curves import TrainingCurves
from cnn_studio.ui.widgets.lr_plot import LrFinderPlot
from cnn_studio.ui.widgets.notice_banner import NoticeBanner
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import RunLayout, app_data_dir, job_log
from cnn_studio.runs.listing import NO_MODEL_YET, summarize
from cnn_studio.runs.run_folder import read_history, read_state, resume_point
from cnn_studio.training.schedule import describe as schedule_line
from cnn_studio.training.schedule import format_duration, parse_duration

LOG_LINES = 2000
MULTI_WORKER_JOB = "cnn_studio.training.multi_worker:train_with_local_workers"
WORKERS_TIP = ("How many training processes on this computer share each batch (TensorFlow's "
               "MultiWorkerMirroredStrategy on 127.0.0.1). It helps with several GPUs, or to try a cluster "
               "setup before using several machines. On the CPU of one computer it is usually slower than 1: "
               "the workers share the same cores and also exchange their gradients after every batch.")


def max_local_workers() -> int:
    """The most workers the Train step offers: one per CPU core (at least 1)."""
    return max(os.cpu_count() or 1, 1)


def new_run_dir(session: StudioSession, now: _dt.datetime | None = None) -> Path:
    """A fresh run folder: next to the project file when saved, else under the app data folder."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}_{session.config.backbone}"
    if session.project_path is not None:
        base = session.project_path.parent / f"{session.project_path.stem}_runs"
    else:
        base = app_data_dir() / "runs"
    path, n = base / name, 1
    while path.exists():
        n += 1
        path = base / f"{name}-{n}"
    return path


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _train(config, split, run_dir, *, sink, cancel):
    """Worker-thread entry: training runs in a child process (:mod:`cnn_studio.core.child_process`).

    TensorFlow in the app's own process holds the GIL long enough to freeze the window for a
    few hundred milliseconds at a time; in a child the worker thread only relays events. A crash or
    an out-of-memory kill of the child leaves the app running and the run's checkpoints on disk.
    """
    target = MULTI_WORKER_JOB if config.workers > 1 else "cnn_studio.training.trainer:train"
    return _train_job(target, config, split, str(run_dir), run_dir=run_dir, sink=sink, cancel=cancel)


def _resume(run_dir, more_epochs: int = 0, *, sink, cancel):
    """Worker-thread entry for "Continue training": :func:`cnn_studio.training.trainer.resume` in a child
    (``more_epochs`` > 0: a completed run that was still improving trains its last phase that much longer)."""
    return _train_job("cnn_studio.training.trainer:resume", str(run_dir), run_dir=run_dir, sink=sink, cancel=cancel,
                      more_epochs=more_epochs)


def _train_job(target: str, *args, run_dir, sink, cancel, **kwargs):
    sink(ev.StageChanged("train", "Starting the training process", "(loading TensorFlow)"))
    return run_job(target, *args, sink=sink, cancel=cancel, log_path=job_log("train", run_dir), label="training",
                   **kwargs)


def more_epochs_for(run_dir) -> int:
    """Epochs "Continue training" adds to a completed run that was still improving (0: it was not)."""
    try:
        state = read_state(RunLayout(Path(run_dir)))
    except StudioError:
        return 0
    if not state.get("still_improving"):
        return 0
    phases = [v for v in (state.get("schedule") or {}).values() if isinstance(v, dict) and "end" in v]
    ran = max((int(v["end"]) - int(v.get("start", 0)) for v in phases), default=5)
    return min(max(ran, 3), 20)


def _resume_left(run) -> tuple[int, int] | None:
    """:func:`resume_point`, or None when the run's files are damaged (the Runs list says what is wrong)."""
    try:
        return resume_point(run)
    except StudioError:
        return None


def _unit(split) -> str:
    """What one training example is called: "tiles" (multi-band arrays), "slices" (of volumes) or "images"."""
    first = next(iter(split.train), None)
    if first is not None and first.bands:
        return "tiles"
    if first is not None and first.study:
        return "slices"
    return "images"

class TrainPage(QWidget):
    """Start/Stop, live curves, progress with ETA and images/s, and a log.

    Signals
    -------
    training_started()
    training_finished(str)
        "completed", "cancelled" or "failed".
    evaluate_requested()
        "Evaluate →" was clicked after a run.
    """

    training_started = Signal()
    training_finished = Signal(str)
    evaluate_requested = Signal()

    def __init__(self, session: StudioSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._task = None
        self._run_dir: Path | None = None
        self._total_steps = 0
        self._steps_per_epoch = 0
        self._t0 = 0.0
        self._first_done = 0
        self._speed_text = ""  # "N images/s · " of the last batch
        self._left_text = ""  # "left ≈ m:ss" of the last estimate
        self._task_bar = False  # the bar shows a TaskProgress (feature computation, the check), not epochs
        self._more_epochs = 0  # Continue training on a completed run that was still improving
        self.clock = QTimer(self)  # the elapsed clock moves every second, whatever phase is running
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self._show_clock)
        self._status_for_signal = "failed"
        self.can_continue = False  # the session's run stopped early: "Continue training" needs no dataset
        self.outcome = ""  # how the last training ended, in one sentence (the main window's status bar says it too)
        header = StepHeader(
            "3. Train — teach the network your classes",
            "Press <b>Start training</b> (Ctrl+Enter). The curves show how wrong the network still is "
            "(<i>loss</i>, should go down) and how often it is right (<i>accuracy</i>, should go up) — on "
            "the training images and on the validation images it never learns from. If validation "
            "gets worse while training keeps improving, the network is memorising: stop, or use more "
            "images or augmentation. The best model so far is always kept.")
        self.plan = QLabel()
        self.plan.setWordWrap(True)
        self.opened_run = QLabel()  # a run opened from the Runs list or a project: its own epochs, not the plan's
        self.opened_run.setWordWrap(True)
        self.opened_run.setObjectName("opened_run")
        self.opened_run.setVisible(False)
        self.device = QLabel()  # which device trains (from TrainStarted) and the GPU memory in use
        self.device.setWordWrap(True)
        self.device.setObjectName("device")
        self._device_line = ""
        self.precision = QLabel()  # float32 or mixed precision, and why (from TrainStarted)
        self.precision.setWordWrap(True)
        self.precision.setObjectName("precision")
        self.precision.setToolTip("The number format training computes in. Mixed precision (float16 maths, float32 "
                                  "weights) is faster on GPUs with tensor cores; elsewhere float32 is used.")
        for line in (self.device, self.precision):  # one line kept for them: filled in when training starts,
            line.ensurePolished()  # they would shrink the curves (a relayout of both plots, ~25 ms)
            line.setText("Xg")
            line.setMinimumHeight(line.sizeHint().height())
            line.setText("")
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.start_button.setToolTip("Train with the settings of the Model step (Ctrl+Enter).")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch; the best model so far is kept.")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Continue training")
        self.resume_button.setToolTip("This run stopped before its last epoch: continue it from the last saved "
                                      "epoch, with the same settings and images.")
        self.resume_button.setVisible(False)
        self.resume_button.clicked.connect(self._on_resume_clicked)
        session.closing.connect(self.shutdown)
        self.evaluate_button = QPushButton("Evaluate →")
        self.evaluate_button.setObjectName("primary")
        self.evaluate_button.setVisible(False)
        self.evaluate_button.clicked.connect(self.evaluate_requested)
        self.workers = QSpinBox()
        self.workers.setObjectName("workers")
        self.workers.setRange(1, max_local_workers())
        self.workers.setValue(1)
        self.workers.setToolTip(WORKERS_TIP)
        self.workers.valueChanged.connect(self._workers_changed)
        self.time_budget = QLineEdit()
        self.time_budget.setObjectName("train_time_budget")
        self.time_budget.setPlaceholderText("none (e.g. 10m)")
        self.time_budget.setMaximumWidth(140)
        self.time_budget.setToolTip("Fit training into this time: each phase stops before an epoch that would end "
                                    "past it, and the run says what it left out. Empty = no budget.")
        self.time_budget.editingFinished.connect(self._time_budget_edited)
        budget_label = QLabel("Time budget:")
        budget_label.setBuddy(self.time_budget)
        workers_label = QLabel("Workers on this computer:")
        workers_label.setToolTip(WORKERS_TIP)
        workers_label.setBuddy(self.workers)
        buttons = QHBoxLayout()
        buttons.addWidget(workers_label)
        buttons.addWidget(self.workers)
        buttons.addWidget(budget_label)
        buttons.addWidget(self.time_budget)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        buttons.addWidget(self.evaluate_button)

        self.status = QLabel("Ready.")
        self.status.setObjectName("train_status")
        self.status.setWordWrap(True)
        self.notice = NoticeBanner()  # after training: not better than guessing, a suspected shortcut
        self.review_warnings: list[str] = []
        self._review_hints: list[str] = []
        self._review_examples: tuple[list[str], object, str] = ([], None, "stretch")  # a shortcut's images and box
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.speed = QLabel("")
        self.speed.setMinimumWidth(260)
        prog = QHBoxLayout()
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.speed)

        self.curves = TrainingCurves()
        self.lr_plot = LrFinderPlot()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setPlaceholderText("What happens during training is written here.")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.curves)
        splitter.addWidget(self.log)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        lay = QVBoxLayout(self)
        lay.addWidget(header)
        lay.addWidget(self.opened_run)
        lay.addWidget(self.plan)
        devices = QHBoxLayout()
        devices.addWidget(self.device, 3)
        devices.addWidget(self.precision, 2)
        lay.addLayout(devices)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addWidget(self.notice)
        lay.addLayout(prog)
        lay.addWidget(self.lr_plot)
        lay.addWidget(splitter, 1)

        for sig in (session.split_changed, session.config_changed, session.dataset_changed):
            sig.connect(self._update_plan)
        session.run_changed.connect(self._on_run_changed)
        self._update_plan()
        self._on_run_changed()  # made after a run was opened (the window builds steps when first opened): show it

    # ---------------------------------------------------------------- state
    @property
    def is_training(self) -> bool:
        return self._task is not None

    @property
    def run_dir(self) -> Path | None:
        """The folder of the current (or last) run."""
        return self._run_dir

    def can_start(self) -> tuple[bool, str]:
        """Whether Start is possible now, and if not why (in plain words)."""
        if self.is_training:
            return False, "A training run is already in progress."
        if self.session.split is None:
            return False, "Load a dataset without errors on the Data step first."
        try:
            self.session.config.validate()
        except StudioError as exc:
            return False, f"{exc.message} {exc.hint}"
        return True, ""

    def _workers_changed(self, n: int) -> None:
        if n != self.session.config.workers:
            self.session.set_config(self.session.config.replace(workers=n))

    def _update_plan(self) -> None:
        n = min(max(self.session.config.workers, 1), self.workers.maximum())
        if self.workers.value() != n:
            self.workers.blockSignals(True)
            self.workers.setValue(n)
            self.workers.blockSignals(False)
        self.workers.setEnabled(not self.is_training)
        ok, why = self.can_start()
        self.start_button.setEnabled(ok)
        self.start_button.setToolTip(why or "Train with the settings of the Model step (Ctrl+Enter).")
        c, split = self.session.config, self.session.split
        if split is None:
            self.plan.setText(f"<i>{why}</i>")
            return

        try:
            spec = registry.get(c.backbone)
            label, pretrained = spec.label, spec.has_pretrained_weights
        except StudioError:
            label, pretrained = c.backbone, True
        # a backbone without pretrained weights says "(from scratch)" in its own name already
        weights = f" ({c.weights_choice.describe()})" if pretrained else ""
        total = c.total_epochs
        new_run = "Start training makes a new run: " if self.opened_run.isVisibleTo(self) else ""
        epochs = f"at most {total} epochs" if c.schedule == "auto" else f"{total} epoch(s)"
        self.plan.setText(f"{new_run}<b>{label}</b>{weights} · {len(split.class_names)} classes · "
                          f"{len(split.train):,} training and {len(split.val):,} validation {_unit(split)} · "
                          f"{epochs} · batch {c.batch_size}"
                          + (f" · {c.workers} workers on this computer" if c.workers > 1 else "")
                          + f"<br>{escape(schedule_line(c))}")
        if not self.time_budget.hasFocus():
            self.time_budget.setText(format_duration(c.time_budget_s) if c.time_budget_s else "")

    # ---------------------------------------------------------------- actions
    def start(self) -> bool:
        """Start training with the session's config and split; False (with the reason shown) if not possible."""
        ok, why = self.can_start()
        if not ok:
            self.status.setText(why)
            return False
        self._run_dir = new_run_dir(self.session)
        self._launch(_train, self.session.config, self.session.split, self._run_dir,
                     status="Loading TensorFlow… (the first run takes a few seconds)",
                     note=f"Run folder: {self._run_dir}")
        return True

    def _time_budget_edited(self) -> None:
        try:
            seconds = parse_duration(self.time_budget.text())
        except StudioError as exc:
            self._set_status(f"{exc.message} {exc.hint}", "error")
            return
        if seconds != self.session.config.time_budget_s:
            self.session.set_config(self.session.config.replace(time_budget_s=seconds))

    def _on_resume_clicked(self) -> None:
        if self._more_epochs:
            self.continue_improving()
        else:
            self.resume()

    def continue_improving(self) -> bool:
        """Train a completed run that was still improving for more epochs (its last phase)."""
        run = self.session.run_dir
        more = 0 if run is None or self.is_training else more_epochs_for(run)
        if not more:
            return False
        self._run_dir = Path(run)
        self._launch(_resume, self._run_dir, more, history=read_history(RunLayout(self._run_dir).history),
                     status=f"Continuing the run for {more} more epochs… (loading TensorFlow)",
                     note=f"Continuing the run in {self._run_dir}: its validation loss was still falling, "
                          f"{more} more epochs.")
        return True

    def resume(self) -> bool:
        """Continue the current run from its last saved epoch (after a Stop, a crash or a closed app)."""
        run = self.session.run_dir
        left = None if run is None else _resume_left(run)
        if self.is_training or left is None:
            return False
        self._run_dir = Path(run)
        self._launch(_resume, self._run_dir, history=read_history(RunLayout(self._run_dir).history),
                     status=f"Continuing from epoch {left[0]} of {left[1]}… (loading TensorFlow)",
                     note=f"Continuing the run in {self._run_dir} after epoch {left[0]} of {left[1]}.")
        return True

    def _launch(self, fn, *args, status: str, note: str, history: list | None = None) -> None:
        """Reset the display for a new or continued run (its earlier epochs from ``history``), then start ``fn``."""
        self._status_for_signal = "failed"
        self.outcome = ""
        self.opened_run.setVisible(False)
        self.curves.clear()
        if history:
            self.curves.add_history(history)
        self.log.clear()
        self.progress.setRange(0, 0)
        self.speed.setText("")
        self._speed_text = self._left_text = ""
        self._t0, self._task_bar = time.monotonic(), False
        self.clock.start()
        self.lr_plot.clear_finding()
        self.evaluate_button.setVisible(False)
        self.review_warnings, self._review_hints = [], []
        self._review_examples = ([], None, "stretch")
        self.notice.clear_notice()
        self._set_status(status)
        self._append(note)
        self._task = start_task(fn, *args, on_event=self._on_train_event, on_returned=self._on_train_returned,
                                on_errored=self._on_train_errored, on_cancelled=self._on_train_cancelled,
                                on_finished=self._on_train_finished)
        self.start_button.setEnabled(False)
        self.workers.setEnabled(False)
        self.resume_button.setVisible(False)
        self.stop_button.setEnabled(True)
        self.training_started.emit()

    def _on_run_changed(self) -> None:
        self._update_resume()
        run = self.session.run_dir
        if self.is_training or run is None or Path(run) == self._run_dir:
            return  # this page's own run (it just finished or stopped): its live curves and log stay
        self._run_dir = Path(run)
        self.show_run(self._run_dir)

    def show_run(self, run: Path) -> None:
        """An opened run: its real epochs, how it ended, and its curves redrawn from history.csv."""
        history = read_history(RunLayout(run).history)
        self.curves.clear()
        self.curves.add_history(history)
        r = summarize(run)
        try:
            backbone = registry.get(r.backbone).label
        except StudioError:
            backbone = r.backbone or "unknown backbone"
        ended = {"finished": "finished", "stopped": "stopped early", "crashed": "ended without finishing",
                 "failed": "failed", "running": "being trained by another process"}.get(r.status, r.status)
        self.opened_run.setText(f"<b>Opened run {r.name}</b>: {backbone} · {r.epochs_done} of {r.total_epochs} "
                                f"epochs done ({ended})")
        self.opened_run.setVisible(True)
        self.progress.setRange(0, max(r.total_epochs, 1))
        self.progress.setValue(min(r.epochs_done, r.total_epochs))
        self.speed.setText("")
        self.notice.clear_notice()
        self.evaluate_button.setVisible(r.has_model)
        left = _resume_left(run) if r.status != "running" else None
        more = (f" Continue training goes on from epoch {left[0]} of {left[1]}." if left is not None else "")
        if r.status == "damaged":  # say what is wrong, not only that the curves are there
            self._set_status(f"{r.problem.rstrip('.')}. Continue training is not offered while the run's files "
                             "disagree; nothing in the run folder was changed.", "warning")
        else:
            self._set_status(f"The curves show this run's {len(history)} recorded epoch(s).{more}")
        self.log.clear()
        self._append(f"Opened the run in {run}: {r.epochs_done} of {r.total_epochs} epochs done ({ended}).")
        self._update_plan()

    def _update_resume(self) -> None:
        run = self.session.run_dir
        damaged = False
        try:
            left = None if self.is_training or run is None else resume_point(run)
        except StudioError as exc:  # a damaged config.json (RunError): no Continue, and why
            left, damaged = None, True
            self._set_status(f"{exc.message} {exc.hint}", "warning")
        idle = not (damaged or self.is_training or run is None)
        self._more_epochs = more_epochs_for(run) if idle and left is None else 0
        self.can_continue = left is not None or self._more_epochs > 0
        self.resume_button.setVisible(self.can_continue)
        if left is not None:
            self.resume_button.setText(f"Continue training ({left[0]} of {left[1]} epochs done)")
        elif self._more_epochs:
            self.resume_button.setText(f"Continue training (+{self._more_epochs} epochs: still improving)")
        self._update_plan()  # "Start training makes a new run" while an opened run is shown

    def stop(self) -> None:
        """Ask the running training to stop after the current batch."""
        if self._task is None:
            return
        self._task.cancel()
        self.stop_button.setEnabled(False)
        self._set_status("Stopping after this batch…")

    def shutdown(self) -> None:
        """The window is closing: stop the training after its current batch (the best model so far is kept)."""
        self.stop()

    @property
    def task(self):
        return self._task

    # ---------------------------------------------------------------- events (GUI thread)
    def _on_train_event(self, e: object) -> None:
        self.curves.add_event(e)
        if isinstance(e, ev.StageChanged):
            self._set_status(f"{e.stage}…" + (f" {e.detail}" if e.detail else ""))
        elif isinstance(e, ev.TrainStarted):
            self._steps_per_epoch = max(e.steps, 1)
            self._total_steps = max(e.epochs, 1) * self._steps_per_epoch
            self.progress.setRange(0, self._total_steps)
            self.progress.setValue(0)
            self._first_done = 0
            self._append(f"Training {e.backbone} on {e.train_images:,} images "
                         f"(validating on {e.val_images:,}), {e.epochs} epoch(s) of {e.steps} batch(es).")
            self._set_status("Training…")
            self._device_line = e.device
            self.device.setText(e.device)
            self.precision.setText(e.precision)
            for line in (e.device, e.precision):
                if line:
                    self._append(line)
        elif isinstance(e, ev.PhaseStarted):
            what = {"head": "Training the new layer (backbone frozen)",
                    "fine_tune": f"Fine-tuning the top {e.trainable_layers} layers",
                    "scratch": "Training the whole network from scratch"}.get(e.name, e.name)
            self._set_status(f"{what} · learning rate {e.learning_rate:g}")
            up_to = "up to " if self.session.config.schedule == "auto" else ""
            self._append(f"Phase '{e.name}': {up_to}{e.epochs} epoch(s)" +
                         (" using cached features (fast)" if e.uses_feature_cache else ""))
        elif isinstance(e, ev.BatchEnded):
            self._epoch_bar()
            if e.gpu_memory_mib is not None:
                self.device.setText(f"{self._device_line} GPU memory in use: {e.gpu_memory_mib / 1024:.1f} GiB.")
            self._show_progress(e.epoch * self._steps_per_epoch + min(e.step, self._steps_per_epoch),
                                    e.images_per_s)
        elif isinstance(e, ev.EpochEnded):
            self._show_progress((e.epoch + 1) * self._steps_per_epoch, e.images_per_s)
            logs = e.logs
            parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
            self._append(f"Epoch {e.epoch + 1}/{e.epochs} ({e.seconds:.1f} s): " + ", ".join(parts))
        elif isinstance(e, ev.CheckpointSaved):
            if e.kind == "best":
                self._append(f"  best model so far saved (epoch {e.epoch + 1}"
                             + (f", {e.monitor} {e.value:.4f})" if e.monitor else ")"))
        elif isinstance(e, ev.TaskProgress):
            self._show_task(e)
        elif isinstance(e, ev.LearningRateFound):
            self.lr_plot.show_finding(e.rates, e.losses, e.suggestion, e.reason)
        elif isinstance(e, ev.StillImproving):
            self.notice.show_notice("Still improving.", e.message, "", "info")
        elif isinstance(e, ev.ChanceLevel):
            self._add_review_warning("Not better than guessing." if e.verdict == "not_better" else
                                     "Not shown to be better than guessing.", e.message, e.hint)
        elif isinstance(e, ev.ShortcutSuspected):
            self._add_review_warning("Possible shortcut.", e.message, e.hint, list(e.examples)[:6], box=e.box,
                                     resize=e.resize)
        elif isinstance(e, ev.Calibrated):
            if e.applied:
                self._append(f"Confidence calibrated on {e.n_images} validation images: temperature {e.temperature:.3g}, "
                             f"calibration error (ECE) {e.ece_before:.3f} → {e.ece_after:.3f}.")
            else:
                self._append(f"Confidence not recalibrated: {e.reason or 'not needed'} "
                             f"(calibration error {e.ece_before:.3f}).")
        elif isinstance(e, ev.LogMessage):
            if e.level == "info" or not any(e.text.startswith(w) for w in self.review_warnings):
                self._append(("⚠ " if e.level != "info" else "") + e.text)
        elif isinstance(e, ev.TrainFinished) and e.status == "cancelled" and e.epochs_done == 0:
            self._append(NO_MODEL_YET)  # not "the best model so far is kept": no epoch ended, nothing was learnt
        elif isinstance(e, ev.TrainFinished) and e.message and not self.review_warnings:
            self._append(e.message)

    def _add_review_warning(self, title: str, message: str, hint: str, examples: list | None = None, *,
                            box=None, resize: str = "stretch") -> None:
        """A review finding after training: logged once, and shown in the amber notice under the status.

        ``box``: a suspected shortcut's region, framed on its example images.
        """
        self.review_warnings.append(message)
        self._review_hints.append(hint)
        self._append(f"⚠ {message}" + (f" {hint}" if hint else ""))
        if examples:
            self._review_examples = (list(examples), box, resize)
        shown, box, resize = self._review_examples
        if len(self.review_warnings) == 1:
            self.notice.show_notice(title, message, hint, "warning", shown, box=box, resize=resize)
        else:  # a second finding: all of them, and every hint, in one notice
            self.notice.show_notice("Do not trust this model yet.", " ".join(self.review_warnings),
                                    " ".join(h for h in self._review_hints if h), "warning", shown, box=box,
                                    resize=resize)

    def _show_task(self, e) -> None:
        """A long phase (features, the check after training): its own bar, images done / total and its estimate."""
        self._task_bar = True
        self.progress.setRange(0, max(e.total, 1))
        self.progress.setValue(min(e.done, max(e.total, 1)))
        self._set_status(f"{e.task}: {e.detail or f'{e.done:,}/{e.total:,}'}")
        self._speed_text = ""
        self._left_text = f"left ≈ {_fmt_duration(e.seconds_left)}" if e.seconds_left is not None else ""
        self._show_clock()

    def _epoch_bar(self) -> None:
        """Back to the epochs' bar after a task's own (the head's epochs after the features)."""
        if self._task_bar and self._total_steps > 0:
            self._task_bar = False
            self.progress.setRange(0, self._total_steps)

    def _show_clock(self) -> None:
        if not self.is_training:
            self.clock.stop()
            return
        elapsed = time.monotonic() - self._t0
        self.speed.setText(f"{self._speed_text}elapsed {_fmt_duration(elapsed)}"
                           + (f" · {self._left_text}" if self._left_text else ""))

    def _show_progress(self, done: int, images_per_s: float) -> None:
        if self._total_steps <= 0:
            return
        self._epoch_bar()
        done = min(done, self._total_steps)
        self.progress.setValue(done)
        elapsed = time.monotonic() - self._t0
        eta = elapsed / done * (self._total_steps - done) if done > 0 else float("nan")
        self._speed_text = f"{images_per_s:,.0f} images/s · " if images_per_s > 0 else ""
        self._left_text = f"left ≈ {_fmt_duration(eta)}" if self.session.config.schedule == "fixed" else \
            f"at most {_fmt_duration(eta)} left (stops sooner when it stops improving)"
        self._show_clock()

    def _on_train_returned(self, result) -> None:
        self.progress.setValue(self.progress.maximum())
        warnings = list(getattr(result, "warnings", None) or [])
        if warnings:
            self._set_status(f"Finished with warnings — the model is saved in {result.run_dir}, but do not trust it "
                             "yet: see the warning below and what to try.", "warning")
            if not self.review_warnings:
                self.notice.show_notice("Do not trust this model yet.", " ".join(warnings), "", "warning")
        elif more_epochs_for(result.run_dir):
            self._set_status(f"Finished — the best model is saved in {result.run_dir}. Its validation loss was still "
                             "falling: Continue training would likely make it better.", "warning")
        else:
            self._set_status(f"Finished — the best model is saved in {result.run_dir}.", "ok")
        self.outcome = "Training finished" + (" with warnings: see the Train step." if warnings else ".")
        self._append(f"Done: {result.epochs_done} epoch(s). Best model: {result.best_model}")
        self._run_dir = Path(result.run_dir)  # this page's own run: set_run below keeps its live curves
        self.session.set_run(result.run_dir)
        self.evaluate_button.setVisible(True)
        self._status_for_signal = "completed"

    def _on_train_cancelled(self) -> None:
        self.speed.setText("")  # no time left to estimate
        kept = self._run_dir is not None and RunLayout(self._run_dir).best_model.exists()  # after an epoch
        if kept:
            self._set_status(f"Stopped — the best model so far is kept in {self._run_dir}.", "warning")
            self.outcome = "Training stopped; the best model so far is kept."
            self.session.set_run(self._run_dir)
            self.evaluate_button.setVisible(True)
        else:
            self._set_status(NO_MODEL_YET, "warning")
            self.outcome = NO_MODEL_YET
        self._append("Training stopped by you.")
        self._status_for_signal = "cancelled"

    def _on_train_errored(self, exc: BaseException) -> None:
        if self._run_dir is not None and any(m.exists() for m in RunLayout(self._run_dir).models):
            self.session.set_run(self._run_dir)  # what it saved before failing stays usable (and resumable)
        msg = describe_error(exc)
        self._set_status(f"Training failed: {msg.text} {msg.hint}", "error")
        self.outcome = "Training failed; see the Train step."
        self._append(f"Error: {msg.text}")
        self._status_for_signal = "failed"
        show_error(self, exc)

    def _on_train_finished(self) -> None:
        self._task = None
        self.clock.stop()
        self.stop_button.setEnabled(False)
        self._update_plan()
        self._update_resume()
        self.training_finished.emit(self._status_for_signal)

    # ---------------------------------------------------------------- display
    def _set_status(self, text: str, severity: str = "") -> None:
        if severity:
            self.status.setStyleSheet(f"color: {severity_colour(severity).name()}; font-weight: bold;")
        else:
            self.status.setStyleSheet("")
        self.status.setText(text)

    def _append(self, line: str) -> None:
        self.log.appendPlainText(f"[{_dt.datetime.now():%H:%M:%S}] {line}")
