"""NoticeBanner: a coloured box saying something the user must know about a result (a model no better
than guessing, a suspected shortcut), what to try, and optionally example images to click.

Hidden until :meth:`NoticeBanner.show_notice`; the wording comes from the engine's records
(message + hint), the colours from :func:`cnn_studio.ui.messages.severity_colour`.
"""

from __future__ import annotations

from html import escape

from cnn_studio.ui.messages import severity_colour
from cnn_studio.ui.widgets.image_grid import ImageGrid
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from cnn_studio.data.records import display_name

BACKGROUNDS = {"warning": "#fff7e6", "error": "#fdecea", "info": "#e8f1fb", "ok": "#e8f5e9"}


class NoticeBanner(QFrame):
    """Title, text, hint and up to a few example thumbnails; ``example_activated(path)`` on a click."""

    example_activated = Signal(str)

    def __init__(self, thumb_size: int = 72, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice_banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.examples = ImageGrid(thumb_size)
        self.examples.setWrapping(False)
        self.examples.setFixedHeight(thumb_size + 60)
        self.examples.setToolTip("Click a picture to see it larger.")
        self.examples.image_activated.connect(self.example_activated)
        self.examples.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.addWidget(self.label)
        lay.addWidget(self.examples)
        self.severity = ""
        self.hide()

    def show_notice(self, title: str, text: str, hint: str = "", severity: str = "warning",
                    examples: list[str] | tuple[str, ...] = ()) -> None:
        """Show the banner (``examples``: image files to show as clickable thumbnails)."""
        self.severity = severity
        colour = severity_colour(severity).name()
        self.setStyleSheet(f"#notice_banner {{ background: {BACKGROUNDS.get(severity, '#ffffff')}; "
                           f"border: 1px solid {colour}; border-left: 5px solid {colour}; border-radius: 3px; }}")
        hint_html = f"<br><i>{escape(hint)}</i>" if hint else ""
        self.label.setText(f'<b style="color:{colour}">⚠ {escape(title)}</b> {escape(text)}{hint_html}')
        self.examples.clear()
        for path in examples:
            self.examples.add_image(path, display_name(path), f"{path}\nClick to see it larger.")
        self.examples.setVisible(bool(examples))
        self.show()

    def clear_notice(self) -> None:
        self.examples.clear()
        self.label.clear()
        self.severity = ""
        self.hide()
