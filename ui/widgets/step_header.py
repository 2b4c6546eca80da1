"""StepHeader: the title and plain-words explanation at the top of every step page."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class StepHeader(QWidget):
    """A large title and a wrapped one-paragraph explanation (rich text allowed).

    Parameters
    ----------
    title
        E.g. "1. Data: the images to learn from".
    text
        What this step is for, in plain words, and what to do on it.
    """

    def __init__(self, title: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("step_header")
        self.title_label = QLabel(title)
        self.title_label.setObjectName("step_title")
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title_label.setFont(font)
        self.text_label = QLabel(text)
        self.text_label.setObjectName("step_text")
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.AutoText)
        self.text_label.setOpenExternalLinks(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.text_label)
        # only once it has a parent: shown without one, a widget opens as a window of its own (a page
        # built while the app is open would flash it and take the focus from the main window)
        self.text_label.setVisible(bool(text))

    def set_title(self, title: str) -> None:
        self.title_label.setText(title)

    def set_text(self, text: str) -> None:
        self.text_label.setText(text)
        self.text_label.setVisible(bool(text))
