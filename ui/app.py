"""The desktop app's entry point: ``cnn-studio`` with no subcommand, or ``python -m cnn_studio``.

Never imports TensorFlow: the first import happens inside a worker thread when training,
evaluation or classification starts, so the window appears in about a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.resources import as_file, files
from pathlib import Path

from cnn_studio.ui.main_window import MainWindow
from cnn_studio.ui.messages import install_excepthook
from cnn_studio.ui.workers import cancel_all_and_wait
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from cnn_studio.computer.doctor import PROBLEM, version_problems, window_problem
from cnn_studio.core.paths import app_data_dir

APP_NAME = "CNN Studio"
ORG_NAME = "CNN Studio"


def resource_dir() -> Path:
    """The installed ``cnn_studio.resources`` folder (style sheet, icons, sample dataset)."""
    with as_file(files("cnn_studio.resources")) as path:
        return Path(path)


def load_style_sheet() -> str:
    """The app's Qt style sheet (empty string if it is missing)."""
    qss = resource_dir() / "style.qss"
    return qss.read_text(encoding="utf-8") if qss.exists() else ""


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cnn-studio", description="Open the CNN Studio desktop app.")
    parser.add_argument("path", nargs="?", help="a dataset folder, a .csv manifest or a .cnnstudio project")
    parser.add_argument("--no-sample", action="store_true", help="start empty instead of on the sample dataset")
    return parser.parse_args(argv)


def create_app(argv: list[str] | None = None):
    """The QApplication (existing one reused), named for QSettings and styled."""

    app = QApplication.instance() or QApplication([sys.argv[0], *(argv or [])])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)
    icon = resource_dir() / "icons" / "app.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    app.setStyleSheet(load_style_sheet())
    return app


def create_window(path: str | None = None, open_sample: bool = True):
    """A MainWindow opened on ``path`` (project, folder or CSV), else on the bundled sample dataset.

    With a ``path`` the "reopen the last run" offer is not shown: the user said what to open.
    """

    window = MainWindow(icon_dir=resource_dir() / "icons")
    if path:
        window.skip_runs_offer()
        window.open_path(path)
    elif open_sample:
        try:
            window.data_page.open_sample()
        except Exception:  # noqa: BLE001 - a missing sample must not stop the app
            window.statusBar().showMessage("Choose a dataset folder to start.")
    return window


def display_problem(env: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no window can be shown here (a Linux session without a screen), or None.

    Qt would otherwise abort with a message about "xcb" plugins that tells a user nothing.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    if env.get("QT_QPA_PLATFORM") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return ("CNN Studio cannot open its window: this session has no screen (neither DISPLAY nor "
            "WAYLAND_DISPLAY is set, e.g. an SSH login or a server).\n"
            "What to do: start it from a desktop session, connect with `ssh -X`, or give it a virtual "
            "screen with `xvfb-run cnn-studio`. Everything the app does also works without a window: "
            "see `cnn-studio --help`.")


def main(argv: list[str] | None = None) -> int:
    """Run the desktop app; returns the process exit code."""
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    problem = display_problem() or window_problem()  # window_problem: Qt would abort, missing libraries
    if problem:
        print(problem, file=sys.stderr)
        return 2
    app = create_app([])

    install_excepthook(app_data_dir() / "logs" / "cnn-studio.log")
    app.aboutToQuit.connect(lambda: cancel_all_and_wait(10000))
    window = create_window(args.path, open_sample=not args.no_sample)
    window.show()
    warn_known_bad_versions(window)
    return int(app.exec())


def warn_known_bad_versions(window) -> list:
    """Say at start, in the terminal and in a dialog, when an installed version is known to crash the app."""

    problems = [c for c in version_problems() if c.status == PROBLEM]
    if not problems:
        return []

    text = "\n\n".join(f"{c.detail}\nWhat to do: {c.fix}" for c in problems)
    print(f"warning: {text}", file=sys.stderr)
    box = QMessageBox(QMessageBox.Icon.Warning, "A library version is known to crash CNN Studio",
                      text + "\n\nHelp → About this computer shows every check.", parent=window)
    box.setTextInteractionFlags(box.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse)
    box.open()
    window.statusBar().showMessage(problems[0].detail)
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
