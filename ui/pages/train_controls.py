"""The Train step's row of controls: workers, time budget, Start / Stop / Continue training and Evaluate →
(widgets only: the page connects and enables them)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget

WORKERS_TIP = ("How many training processes on this computer share each batch (TensorFlow's "
               "MultiWorkerMirroredStrategy on 127.0.0.1). It helps with several GPUs, or to try a cluster "
               "setup before using several machines. On the CPU of one computer it is usually slower than 1: "
               "the workers share the same cores and also exchange their gradients after every batch.")
START_TIP = "Train with the settings of the Model step (Ctrl+Enter)."
# the controls the Train step drives (each is also an attribute of the page)
FIELDS = ("workers", "time_budget", "start_button", "stop_button", "resume_button", "evaluate_button")


class TrainControls(QWidget):
    """One row: workers (1 to ``max_workers``), time budget, Start, Stop, Continue training, Evaluate →."""

    def __init__(self, max_workers: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.start_button.setToolTip(START_TIP)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch; the best model so far is kept.")
        self.stop_button.setEnabled(False)
        self.resume_button = QPushButton("Continue training")
        self.resume_button.setToolTip("This run stopped before its last epoch: continue it from the last saved "
                                      "epoch, with the same settings and images.")
        self.resume_button.setVisible(False)
        self.evaluate_button = QPushButton("Evaluate →")
        self.evaluate_button.setObjectName("primary")
        self.evaluate_button.setVisible(False)
        self.workers = QSpinBox()
        self.workers.setObjectName("workers")
        self.workers.setRange(1, max_workers)
        self.workers.setValue(1)
        self.workers.setToolTip(WORKERS_TIP)
        self.time_budget = QLineEdit()
        self.time_budget.setObjectName("train_time_budget")
        self.time_budget.setPlaceholderText("none (e.g. 10m)")
        self.time_budget.setMaximumWidth(140)
        self.time_budget.setToolTip("Fit training into this time: each phase stops before an epoch that would end "
                                    "past it, and the run says what it left out. Empty = no budget.")
        self._lay_out()

    def _lay_out(self) -> None:
        budget_label = QLabel("Time budget:")
        budget_label.setBuddy(self.time_budget)
        workers_label = QLabel("Workers on this computer:")
        workers_label.setToolTip(WORKERS_TIP)
        workers_label.setBuddy(self.workers)
        buttons = QHBoxLayout(self)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(workers_label)
        buttons.addWidget(self.workers)
        buttons.addWidget(budget_label)
        buttons.addWidget(self.time_budget)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        buttons.addWidget(self.evaluate_button)
