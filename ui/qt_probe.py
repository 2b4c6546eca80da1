"""``cnn-studio --cnn-studio-qt-probe``: can Qt start here? (doctor's Qt check runs it in a child).

A separate process because Qt aborts the whole process when its window plugin cannot load. It goes
through the program's own entry point (:func:`cnn_studio.core.child_start.program_command`), so it
works the same from a pip install and from the frozen app, where there is no ``python -c``.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication


def main() -> int:
    """Make a QApplication and print the platform plugin it got (``PLATFORM=xcb``)."""
    app = QApplication([sys.argv[0]])
    print("PLATFORM=" + app.platformName(), flush=True)
    return 0
