"""How a child process is started: the program's own entry point, as Python or as a frozen app.

:func:`child_command` is the program's own entry point with the hidden argument :data:`CHILD_FLAG` —
``python -c <entry> --cnn-studio-child`` from an installed package, ``<the app's executable>
--cnn-studio-child`` from a frozen (PyInstaller-style) app, where ``sys.executable`` is the app itself
and ``python -m`` does not exist. :func:`cnn_studio.cli.main` sees the flag and calls
:func:`cnn_studio.core.child_side.child_main`. :func:`program_command` runs any other ``cnn-studio``
command the same way (the doctor's Qt probe, distributed workers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD_FLAG = "--cnn-studio-child"
"""The hidden first argument of ``cnn-studio`` that makes the program a child (see :func:`child_command`)."""

QT_PROBE_FLAG = "--cnn-studio-qt-probe"
"""The hidden argument that only starts Qt and prints its platform (doctor's Qt check; cnn_studio.ui.qt_probe)."""

# ``python -m cnn_studio`` (and ``-c``) put the current folder first on sys.path: started in a source
# checkout (where README's install command runs) the child imported that tree's cnn_studio, which has
# no cnn_studio.ui or cnn_studio.resources, and died before it could say why. The installed program is
# what must run: the current folder is taken off sys.path before cnn_studio is imported.
_ENTRY = "import sys; sys.path.pop(0); from cnn_studio.cli import main; sys.exit(main())"


def program_command(*args: str) -> list[str]:
    """The command line that runs this installed program (``cnn-studio ARGS``) in a new process.

    From a frozen app (``sys.frozen``, PyInstaller-style) ``sys.executable`` is the app itself;
    otherwise it is Python running :func:`cnn_studio.cli.main` with the current folder left out of
    ``sys.path``, so a folder that happens to hold a ``cnn_studio`` package cannot stand in for it.
    """
    if getattr(sys, "frozen", False):
        return [frozen_program(), *args]
    return [sys.executable, "-c", _ENTRY, *args]


CONSOLE_PROGRAM = "cnn-studio.exe"
"""On Windows the bundle holds a console program (this name) beside the windowed "CNN Studio.exe"."""


def frozen_program(executable: str | None = None, platform: str | None = None) -> str:
    """The frozen app's program for a new process: itself, or on Windows its console twin.

    A windowed Windows program has no standard input and output for the child protocol, so the
    windowed ``CNN Studio.exe`` starts its children as the ``cnn-studio.exe`` beside it (kept
    without a console window by :data:`NO_WINDOW`).
    """
    executable = sys.executable if executable is None else executable
    if (platform or sys.platform) == "win32":
        console = Path(executable).with_name(CONSOLE_PROGRAM)
        if console.is_file():
            return str(console)
    return executable


NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)
"""Windows: start a console child without opening a console window (0 elsewhere)."""


def child_command() -> list[str]:
    """The command line that starts a child: the program's own entry point with :data:`CHILD_FLAG`."""
    return program_command(CHILD_FLAG)


def child_env() -> dict[str, str]:
    """The environment a child starts with: this one, TensorFlow quieter, and never a window."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("QT_QPA_PLATFORM", None)
    return env


def log_file(prefix: str, log_path: str | os.PathLike[str] | None) -> Path:
    """``log_path`` (its folder created), or a new temporary file named after ``prefix``."""
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"cnn-studio-{prefix.replace(' ', '-')}-", suffix=".log")
        os.close(fd)
        log_path = name
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path

