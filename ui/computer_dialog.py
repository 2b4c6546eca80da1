"""Help → About this computer: the ``cnn-studio doctor`` report in a window, with a copy button for bug reports.

The report is made by ``cnn-studio doctor --json`` in a child process (it imports TensorFlow to ask
for GPUs, which would freeze the window for seconds in the app's own process), so the dialog opens
at once, says it is checking, and fills in when the child answers.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QProcess
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.computer.doctor import INFO, OK, PROBLEM, WARNING, DoctorReport
from cnn_studio.core.child_start import program_command

_STATUS_TEXT = {OK: "✓ fine", INFO: "ℹ note", WARNING: "⚠ warning", PROBLEM: "✗ problem"}
_STATUS_COLOUR = {OK: "#2e7d32", INFO: "#1565c0", WARNING: "#b26a00", PROBLEM: "#c62828"}


def doctor_command() -> list[str]:
    """The program and arguments that print the report as JSON (this Python, this CNN Studio)."""
    return program_command("doctor", "--json")


class ComputerDialog(QDialog):
    """Shows each check of :func:`cnn_studio.computer.doctor.run_doctor` with what to do; "Copy report" copies it as text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About this computer")
        self.resize(860, 460)
        self.report: DoctorReport | None = None
        self.summary = QLabel("Checking this computer… (loading TensorFlow to look for GPUs takes a few seconds)")
        self.summary.setWordWrap(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["", "Check", "What was found", "What to do"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy report")
        self.copy_button.setToolTip("Copy the whole report as text, e.g. to paste into a bug report")
        self.copy_button.setEnabled(False)
        self.again_button = QPushButton("Check again")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.again_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self.copy_report)
        self.again_button.clicked.connect(self.start)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.busy)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.process = QProcess(self)
        self.process.finished.connect(self._on_process_finished)
        self.process.errorOccurred.connect(self._on_process_error)

    def start(self) -> None:
        """Run the check (again) in a child process."""
        if self.process.state() != QProcess.ProcessState.NotRunning:
            return
        self.busy.show()
        self.again_button.setEnabled(False)
        self.summary.setText("Checking this computer… (loading TensorFlow to look for GPUs takes a few seconds)")
        program, *args = doctor_command()
        self.process.start(program, args)

    def show_report(self, report: DoctorReport) -> None:
        self.report = report
        self.busy.hide()
        self.again_button.setEnabled(True)
        self.copy_button.setEnabled(True)
        device = report.facts.get("device")
        verdict = ("Everything CNN Studio needs works on this computer." if report.ok
                   else "Something CNN Studio needs does not work here: see “What to do” below.")
        self.summary.setText(f"<b>{verdict}</b>" + (f"<br>{device}" if device else ""))
        self.summary.setStyleSheet(f"color: {_STATUS_COLOUR[OK if report.ok else PROBLEM]};")
        self.table.setRowCount(len(report.checks))
        for row, check in enumerate(report.checks):
            status = QTableWidgetItem(_STATUS_TEXT.get(check.status, check.status))
            status.setForeground(QColor(_STATUS_COLOUR.get(check.status, "#000000")))
            self.table.setItem(row, 0, status)
            self.table.setItem(row, 1, QTableWidgetItem(check.name))
            self.table.setItem(row, 2, QTableWidgetItem(check.detail))
            self.table.setItem(row, 3, QTableWidgetItem(check.fix))
        self.table.resizeRowsToContents()

    def copy_report(self) -> None:
        if self.report is not None:
            QGuiApplication.clipboard().setText(self.report.to_text())

    def _on_process_finished(self, _code: int, _status) -> None:
        out = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        try:
            report = DoctorReport.from_dict(json.loads(out[out.index("{"):]))
        except (ValueError, TypeError, KeyError):
            err = bytes(self.process.readAllStandardError()).decode("utf-8", "replace").strip()
            self._failed(f"The check did not give a report. {err[-600:]}")
            return
        self.show_report(report)

    def _on_process_error(self, _error) -> None:
        if self.process.state() == QProcess.ProcessState.NotRunning:
            self._failed(f"The check could not start: {self.process.errorString()}")

    def _failed(self, text: str) -> None:
        self.busy.hide()
        self.again_button.setEnabled(True)
        self.summary.setText(text + "\nRun `cnn-studio doctor` in a terminal to see the same report.")
        self.summary.setStyleSheet(f"color: {_STATUS_COLOUR[PROBLEM]};")

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: never leave the child running
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(3000)
        super().done(result)
