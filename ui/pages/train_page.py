"""Step 3, Train: start/stop one training run on a worker thread and watch it live.

The page joins its row of controls (:mod:`~cnn_studio.ui.pages.train_controls`), the progress row
(:mod:`~cnn_studio.ui.pages.train_progress`) and the plots and log; what it does with a run's events is in
:mod:`~cnn_studio.ui.pages.train_events`, the jobs themselves in :mod:`~cnn_studio.ui.pages.train_jobs`."""

from __future__ import annotations

import datetime as _dt
import os
from html import escape
from pathlib import Path

from cnn_studio.ui.messages import severity_colour
from cnn_studio.ui.pages import train_controls
from cnn_studio.ui.pages.train_controls import START_TIP, WORKERS_TIP, TrainControls
from cnn_studio.ui.pages.train_events import TrainEvents
from cnn_studio.ui.pages.train_jobs import (
    MULTI_WORKER_JOB,
    _fmt_duration,
    _resume,
    _resume_left,
    _train,
    _unit,
    more_epochs_for,
    new_run_dir,
)
from cnn_studio.ui.pages.train_progress import TrainProgress
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.widgets.curves import TrainingCurves
from cnn_studio.ui.widgets.lr_plot import LrFinderPlot
from cnn_studio.ui.widgets.notice_banner import NoticeBanner
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QSplitter, QVBoxLayout, QWidget

from cnn_studio.backbones import registry
from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.listing import NO_MODEL_YET, summarize
from cnn_studio.runs.run_folder import read_history, resume_point
from cnn_studio.training.schedule import describe as schedule_line
from cnn_studio.training.schedule import format_duration, parse_duration

__all__ = ["MULTI_WORKER_JOB", "NO_MODEL_YET", "WORKERS_TIP", "TrainPage", "_fmt_duration", "_resume", "_train",
           "_unit", "max_local_workers", "more_epochs_for", "new_run_dir"]

LOG_LINES = 2000


def max_local_workers() -> int:
    """The most workers the Train step offers: one per CPU core (at least 1)."""
    return max(os.cpu_count() or 1, 1)


class TrainPage(TrainEvents, QWidget):
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
        self._more_epochs = 0  # Continue training on a completed run that was still improving
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
        self._make_device_lines()
        self.controls = self._controls()
        self.status = QLabel("Ready.")
        self.status.setObjectName("train_status")
        self.status.setWordWrap(True)
        self.notice = NoticeBanner()  # after training: not better than guessing, a suspected shortcut
        self.review_warnings: list[str] = []
        self._review_hints: list[str] = []
        self._review_examples: tuple[list[str], object, str] = ([], None, "stretch")  # a shortcut's images and box
        self.progress_row = TrainProgress(lambda: self.is_training)
        self.progress, self.speed, self.clock = self.progress_row.progress, self.progress_row.speed, self.progress_row.clock
        self._lay_out(header)
        session.closing.connect(self.shutdown)
        for sig in (session.split_changed, session.config_changed, session.dataset_changed):
            sig.connect(self._update_plan)
        session.run_changed.connect(self._on_run_changed)
        self._update_plan()
        self._on_run_changed()  # made after a run was opened (the window builds steps when first opened): show it

    def _make_device_lines(self) -> None:
        self.device = QLabel()  # which device trains (from TrainStarted) and the GPU memory in use
        self.device.setWordWrap(True)
        self.device.setObjectName("device")
        self._device_line = ""
        self.precision = QLabel()  # float32 or mixed precision, and why (from TrainStarted)
        self.precision.setWordWrap(True)
        self.precision.setObjectName("precision")
        self.precision.setToolTip("The number format training computes in. Mixed precision (float16 maths, float32 "
                                  "weights) is faster on GPUs with tensor cores; elsewhere float32 is used, except "
                                  "that on a CPU with Intel AMX the training images' one pass through the frozen "
                                  "layers runs in bfloat16 (the run's log says so).")
        for line in (self.device, self.precision):  # one line kept for them: filled in when training starts,
            line.ensurePolished()  # they would shrink the curves (a relayout of both plots, ~25 ms)
            line.setText("Xg")
            line.setMinimumHeight(line.sizeHint().height())
            line.setText("")

    def _controls(self) -> TrainControls:
        """The row of controls, connected; its widgets become the page's attributes (``page.start_button``…)."""
        controls = TrainControls(max_local_workers())
        for name in train_controls.FIELDS:
            setattr(self, name, getattr(controls, name))
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self._on_resume_clicked)
        self.evaluate_button.clicked.connect(self.evaluate_requested)
        self.workers.valueChanged.connect(self._workers_changed)
        self.time_budget.editingFinished.connect(self._time_budget_edited)
        return controls

    def _lay_out(self, header: QWidget) -> None:
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
        lay.addWidget(self.controls)
        lay.addWidget(self.status)
        lay.addWidget(self.notice)
        lay.addWidget(self.progress_row)
        lay.addWidget(self.lr_plot)
        lay.addWidget(splitter, 1)

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
        self.start_button.setToolTip(why or START_TIP)
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
        self.progress_row.start()
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

    # ---------------------------------------------------------------- display
    def _set_status(self, text: str, severity: str = "") -> None:
        if severity:
            self.status.setStyleSheet(f"color: {severity_colour(severity).name()}; font-weight: bold;")
        else:
            self.status.setStyleSheet("")
        self.status.setText(text)

    def _append(self, line: str) -> None:
        self.log.appendPlainText(f"[{_dt.datetime.now():%H:%M:%S}] {line}")
