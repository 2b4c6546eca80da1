"""Window sizes that fit the screen (issue 23): a window's preferred size, never more than the screen's free area.

A 1280×800 laptop screen is the smallest we design for; :data:`SMALLEST_SCREEN` less :data:`FRAME` (the title
bar and borders a window manager adds) is what a window's content may need at least
(``tests/ui/test_fits_the_screen.py`` checks each key window's and dialog's ``minimumSizeHint``).
"""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

SMALLEST_SCREEN = QSize(1280, 800)
FRAME = QSize(16, 48)  # title bar, borders and a little room, added by the window manager


def room(widget: QWidget | None = None) -> QSize:
    """The largest content size a window can have on ``widget``'s screen (the primary one before it is shown)."""
    screen = (widget.screen() if widget is not None else None) or QGuiApplication.primaryScreen()
    if screen is None:
        return SMALLEST_SCREEN - FRAME
    return screen.availableGeometry().size() - FRAME


def resize_to_fit(widget: QWidget, width: int, height: int) -> QSize:
    """Resize ``widget`` to ``width`` × ``height``, or less where its screen is smaller; returns the size asked."""
    free = room(widget)
    size = QSize(min(width, free.width()), min(height, free.height()))
    widget.resize(size)
    return size
