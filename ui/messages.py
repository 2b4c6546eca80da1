"""All user-facing wording of the app: errors, findings, severities, and the crash dialog.

Engine errors already say what happened and what to do (:class:`~cnn_studio.core.errors.StudioError`
``message`` + ``hint``); this module turns every exception into a :class:`Message` with a title,
and shows it. Unexpected exceptions are written with their traceback to the log file
(``app_data_dir()/logs/cnn-studio.log``) and shown in a dialog instead of crashing the app.
"""

from __future__ import annotations

import datetime as _dt
import logging
import sys
import traceback
from dataclasses import dataclass
from html import escape
from pathlib import Path

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QMessageBox, QStyle, QWidget

from cnn_studio.core.errors import (
    ConfigError,
    DatasetError,
    ExportError,
    ProjectError,
    RunError,
    StudioError,
    WeightsUnavailable,
)
from cnn_studio.core.paths import app_data_dir

SEVERITIES = ("error", "warning", "info")

_TITLES: dict[type, str] = {
    DatasetError: "The dataset cannot be used as it is",
    ConfigError: "A setting needs changing",
    WeightsUnavailable: "Pretrained weights are not available",
    RunError: "The training run cannot be used",
    ExportError: "The export did not succeed",
    ProjectError: "The project cannot be opened",
}

_COLOURS = {"error": "#c62828", "warning": "#b26a00", "info": "#1565c0", "ok": "#2e7d32"}

_log_path: Path | None = None

BLOCKING = True
"""Dialogs are modal (``exec``). tests/ui/conftest.py sets it False so a dialog never blocks a test."""


@dataclass(frozen=True)
class Message:
    """Something to tell the user: ``severity`` is "error", "warning" or "info"."""

    title: str
    text: str
    hint: str = ""
    severity: str = "error"
    details: str = ""  # traceback or technical detail, shown in an expander

    def as_html(self) -> str:
        """Text and hint as rich text for a QLabel (hint in italics on its own line)."""

        hint = f"<br><i>{escape(self.hint)}</i>" if self.hint else ""
        return f"{escape(self.text)}{hint}"


def log_path() -> Path:
    """The file unexpected errors are written to."""
    return _log_path or (app_data_dir() / "logs" / "cnn-studio.log")


def _is_out_of_memory(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"MemoryError", "ResourceExhaustedError", "ResourceExhausted"}) or "OOM when allocating" in str(exc)


def describe_error(exc: BaseException) -> Message:
    """Turn any exception into a :class:`Message` a non-specialist can act on.

    Examples
    --------
    >>> describe_error(DatasetError("Only one class.", "Add a second folder.")).hint
    'Add a second folder.'
    """
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, StudioError):
        title = next((t for cls, t in _TITLES.items() if isinstance(exc, cls)), "Something needs your attention")
        return Message(title, exc.message, exc.hint, "error", details)
    if _is_out_of_memory(exc):
        return Message("Out of memory",
                       "The computer ran out of memory while working on the images.",
                       "Lower the batch size (e.g. 8) or the image size on the Model step, close other "
                       "programs, and try again.", "error", details)
    short = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return Message("Unexpected error",
                   f"Something went wrong that CNN Studio did not expect: {type(exc).__name__}: {short}",
                   f"Your files are safe. The details were written to {log_path()}; please include that "
                   "file when you report the problem.", "error", details)


def log_exception(exc: BaseException) -> Path:
    """Append ``exc`` with its traceback to the log file; returns the file (never raises)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"\n=== {_dt.datetime.now().isoformat(timespec='seconds')} ===\n")
            f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    except OSError:
        pass
    return path


def show_message(parent: QWidget | None, msg: Message) -> QMessageBox:
    """Show ``msg`` in a modal box (details in the expander); returns the box after it closed."""
    box = QMessageBox(parent)
    box.setIcon({"error": QMessageBox.Icon.Critical, "warning": QMessageBox.Icon.Warning}.get(
        msg.severity, QMessageBox.Icon.Information))
    box.setWindowTitle(msg.title)
    box.setText(msg.text)
    if msg.hint:
        box.setInformativeText(msg.hint)
    if msg.details:
        box.setDetailedText(msg.details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setObjectName("message_box")
    if BLOCKING:
        box.exec()
    else:
        box.show()  # tests (and scripted runs) look at it instead of blocking on exec()
    return box


def show_error(parent: QWidget | None, exc: BaseException) -> QMessageBox:
    """Describe ``exc`` and show it; unexpected errors are logged first."""
    if not isinstance(exc, StudioError):
        log_exception(exc)
    return show_message(parent, describe_error(exc))


def severity_colour(severity: str) -> QColor:
    """Colour used for a severity's text and markers ("error", "warning", "info", "ok")."""
    return QColor(_COLOURS.get(severity, _COLOURS["info"]))


def severity_icon(severity: str, widget: QWidget | None = None):
    """Standard icon for a severity (from the current style)."""
    style = (widget.style() if widget is not None else QApplication.style())
    pixmap = {"error": QStyle.StandardPixmap.SP_MessageBoxCritical,
              "warning": QStyle.StandardPixmap.SP_MessageBoxWarning}.get(
        severity, QStyle.StandardPixmap.SP_MessageBoxInformation)
    return style.standardIcon(pixmap)


def describe_finding(finding) -> Message:
    """A dataset check :class:`~cnn_studio.data.checks.Finding` as a :class:`Message`."""
    title = {"error": "Must fix before training", "warning": "Worth a look", "info": "Good to know"}.get(
        finding.severity, "Note")
    more = ""
    paths = tuple(getattr(finding, "paths", ()) or ())
    if paths:
        shown = ", ".join(Path(p).name for p in paths[:3])
        more = f"\n{len(paths)} file(s): {shown}{', …' if len(paths) > 3 else ''}"
    return Message(title, finding.message + more, finding.hint, finding.severity, "\n".join(paths))


def install_excepthook(log_file: str | Path | None = None) -> Path:
    """Route uncaught exceptions (GUI thread) to the log file and a dialog instead of a crash.

    Returns
    -------
    pathlib.Path
        The log file used.
    """
    global _log_path
    _log_path = Path(log_file) if log_file is not None else log_path()
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        if exc is not None and exc.__traceback__ is None:
            exc = exc.with_traceback(tb)
        log_exception(exc)
        logging.getLogger("cnn_studio").error("uncaught exception", exc_info=(exc_type, exc, tb))
        if QApplication.instance() is not None:
            try:
                show_error(QApplication.activeWindow(), exc)
            except Exception:  # noqa: BLE001 - the hook itself must never raise
                previous(exc_type, exc, tb)
        else:
            previous(exc_type, exc, tb)

    sys.excepthook = hook
    return _log_path
