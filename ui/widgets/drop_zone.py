"""DropZone: a framed area that accepts dropped files/folders (or a click to choose) and emits local paths."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget


def local_paths(mime) -> list[Path]:
    """Local file/folder paths carried by a drag's ``QMimeData`` (remote URLs are ignored)."""
    if mime is None or not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


class DropZone(QFrame):
    """Accepts drops of local paths; ``accept`` is "folders", "files" or "any".

    Signals
    -------
    paths_dropped(list)
        The accepted ``pathlib.Path`` objects, in drop order.
    clicked()
        The zone was clicked (pages open a file dialog).
    """

    paths_dropped = Signal(list)
    clicked = Signal()

    def __init__(self, text: str, accept: str = "any", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("drop_zone")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumHeight(70)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.accept = accept
        self.label = QLabel(text)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.label)
        self.setProperty("hovering", False)
        self._text = text

    def refusal(self, paths: list[Path]) -> str:
        """Why a drag of ``paths`` cannot be dropped here, in plain words ("" when it can)."""
        if not paths or self._accepted(paths):
            return ""
        if self.accept == "folders":
            what = "a file" if len(paths) == 1 else "files"
            return (f"That is {what}, not a folder: drop the folder that holds one sub-folder per class "
                    "(or a .csv manifest).")
        if self.accept == "files":
            return "Folders cannot be dropped here: drop image files."
        return "That cannot be found on this computer: drop files or folders from a local disk."

    def _accepted(self, paths: list[Path]) -> list[Path]:
        if self.accept == "folders":
            return [p for p in paths if p.is_dir() or p.suffix.lower() == ".csv"]
        if self.accept == "files":
            return [p for p in paths if p.is_file()]
        return [p for p in paths if p.exists()]

    def _set_hover(self, on: bool) -> None:
        self.setProperty("hovering", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        paths = local_paths(event.mimeData())
        if self._accepted(paths):
            event.acceptProposedAction()
            self._set_hover(True)
        elif paths:
            # take the drag so the zone can say why it cannot be dropped (dragMoveEvent keeps the
            # no-entry cursor); the text comes back on dragLeaveEvent
            event.accept()
            self.label.setText(f"⛔ {self.refusal(paths)}")
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._accepted(local_paths(event.mimeData())):
            event.acceptProposedAction()
        else:
            event.ignore()  # the no-entry cursor, with the reason in the zone

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._set_hover(False)
        self.label.setText(self._text)

    def setText(self, text: str) -> None:  # noqa: N802 - like QLabel
        """Change the zone's own text."""
        self._text = text
        self.label.setText(text)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self._set_hover(False)
        self.label.setText(self._text)
        paths = self._accepted(local_paths(event.mimeData()))
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)
        else:
            event.ignore()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)
