"""TaskStrip: a progress bar, a status line and a Cancel button bound to one EngineTask."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from cnn_studio.core import events as ev


class TaskStrip(QWidget):
    """Shows what a running task is doing and lets the user stop it.

    Call :meth:`attach` with a started :class:`~cnn_studio.ui.workers.EngineTask`; the strip
    follows its ``event`` signal (ScanProgress, TaskProgress, StageChanged, BatchEnded ...), and
    hides itself when the task finishes. ``cancel_requested`` is emitted when Cancel is clicked.
    """

    cancel_requested = Signal()

    def __init__(self, cancel_text: str = "Cancel", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("task_strip")
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(160)
        self.label = QLabel("")
        self.label.setObjectName("task_status")
        self.cancel_button = QPushButton(cancel_text)
        self.cancel_button.setToolTip("Stop this task; whatever is already finished is kept.")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.label, 2)
        lay.addWidget(self.cancel_button)
        self._task = None
        self.setVisible(False)

    @property
    def task(self):
        return self._task

    def attach(self, task, status: str = "Working…") -> None:
        """Follow ``task`` until it finishes."""
        self._task = task
        self.bar.setRange(0, 0)  # busy until the first determinate progress
        self.label.setText(status)
        self.cancel_button.setEnabled(True)
        task.signals.event.connect(self._on_task_event)
        task.signals.finished.connect(self._on_task_finished)
        self.setVisible(True)

    def set_status(self, text: str) -> None:
        self.label.setText(text)

    def set_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)

    def _on_task_event(self, event: object) -> None:
        if isinstance(event, ev.ScanProgress):
            self.bar.setRange(0, 0)
            self.label.setText(f"Looked at {event.files_seen:,} files, {event.images_found:,} images found…")
        elif isinstance(event, ev.TaskProgress):
            self.set_progress(event.done, event.total)
            self.label.setText(event.detail or f"{event.task}: {event.done:,} of {event.total:,}")
        elif isinstance(event, ev.StageChanged):
            self.label.setText(f"{event.stage}…" + (f" {event.detail}" if event.detail else ""))

    def _on_cancel_clicked(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.cancel_button.setEnabled(False)
        self.label.setText("Stopping…")
        self.cancel_requested.emit()

    def _on_task_finished(self) -> None:
        self._task = None
        self.setVisible(False)
