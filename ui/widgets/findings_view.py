"""FindingsView: what the dataset check found, each finding with the files it is about.

A finding ("3 files will not be used", "2 images are copies") is a top-level row with its
severity icon, message and what to do; its files are child rows (path relative to the dataset,
and for a skipped file the reason), collapsed until the user opens them. Double-clicking a file
opens its folder in the system's file manager, so the user can fix or remove it. The scan's notes
(files and folders it ignored) follow as "Good to know" rows.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnn_studio.ui.messages import describe_finding, severity_colour, severity_icon
from PySide6.QtCore import QRect, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
FINDING_ROLE = Qt.ItemDataRole.UserRole
REASON_WORDS = {"unreadable": "could not be read", "truncated": "the file ends early", "empty": "empty file",
                "not_an_image": "not an image", "too_large": "too large", "unsupported": "unsupported variant"}


def relative(path: str, root: str | None) -> str:
    """``path`` relative to the dataset ``root`` when it is inside it, else as given."""
    if root:
        try:
            return os.path.relpath(path, root) if Path(path).is_relative_to(root) else path
        except (ValueError, OSError):
            return path
    return path


class FindingsView(QTreeWidget):
    """Findings as expandable rows; ``file_activated(path)`` when a file row is double-clicked."""

    file_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None, open_folders: bool = True) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(False)
        self.setIndentation(16)
        self._open_folders = open_folders
        self.itemDoubleClicked.connect(self._on_double_clicked)

    def show_findings(self, findings: list, *, root: str | None = None, skipped=(), notes=()) -> None:
        """Replace the rows: ``findings`` (checks.Finding), then ``notes`` (strings) as information."""
        self.clear()
        reasons = {s.path: (s.reason, s.detail) for s in skipped}
        if not findings and not notes:
            self.addTopLevelItem(QTreeWidgetItem(["No problems found."]))
            self.topLevelItem(0).setIcon(0, severity_icon("info", self))
        for f in findings:
            text = f.message + (f"\n→ {f.hint}" if f.hint else "")
            if f.paths:
                text += f"\n({len(f.paths)} file(s): click ▸ to list them, double-click one to open its folder)"
            item = QTreeWidgetItem([text])
            item.setIcon(0, severity_icon(f.severity, self))
            item.setForeground(0, severity_colour(f.severity))
            msg = describe_finding(f)
            item.setToolTip(0, msg.text + (f"\n\n{msg.hint}" if msg.hint else ""))
            item.setData(0, FINDING_ROLE, f)
            for path in f.paths:
                line = relative(path, root)
                if path in reasons:
                    reason, detail = reasons[path]
                    line += f" — {REASON_WORDS.get(reason, reason)}"
                    if detail:
                        line += f" ({detail})"
                child = QTreeWidgetItem([line])
                child.setData(0, PATH_ROLE, path)
                child.setToolTip(0, path)
                item.addChild(child)
            self.addTopLevelItem(item)
        for note in notes:
            item = QTreeWidgetItem([f"Good to know: {note}"])
            item.setIcon(0, severity_icon("info", self))
            self.addTopLevelItem(item)
        self._fit_rows()

    def _fit_rows(self) -> None:
        """Give each row the height its wrapped text needs at the current width.

        Qt's default row height for wrapped text ignores the branch indent and the icon, so the last
        line of a long finding was elided; the rows are measured here instead.
        """
        metrics = self.fontMetrics()
        width = max(self.viewport().width(), 120)
        icon = self.iconSize().width() if self.iconSize().isValid() else 16

        def fit(item: QTreeWidgetItem, depth: int) -> None:
            avail = max(width - self.indentation() * (depth + 1) - icon - 16, 60)
            rect = metrics.boundingRect(QRect(0, 0, avail, 100_000), int(Qt.TextFlag.TextWordWrap), item.text(0))
            item.setSizeHint(0, QSize(avail, rect.height() + 8))
            for i in range(item.childCount()):
                fit(item.child(i), depth + 1)

        for i in range(self.topLevelItemCount()):
            fit(self.topLevelItem(i), 0)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_rows()

    def finding_texts(self) -> list[str]:
        return [self.topLevelItem(i).text(0) for i in range(self.topLevelItemCount())]

    def files_of(self, row: int) -> list[str]:
        """The file paths listed under top-level row ``row``."""
        item = self.topLevelItem(row)
        return [item.child(i).data(0, PATH_ROLE) for i in range(item.childCount())]

    def _on_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        path = item.data(0, PATH_ROLE)
        if not path:
            return
        self.file_activated.emit(path)
        if self._open_folders:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))
