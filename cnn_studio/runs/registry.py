"""Where runs were made: a small list in the app data folder, so runs outside the app's runs folder are found.

``cnn-studio train --out ELSEWHERE`` (and the app, when a project keeps its runs beside it) makes run
folders anywhere; the runs list (``cnn-studio runs``, File → Runs…) reads the app's runs folder and,
through :func:`remembered_runs`, every run folder listed here. Training and resume append the run
folder they write (:func:`remember`); a folder that is gone (deleted, a drive not mounted) is left
out of the listing silently and stays in the file, so a drive plugged in again brings its runs back.

The file is ``<app data>/run_places.txt``: one absolute folder path a line, UTF-8, appended to and
never rewritten. Remembering is a convenience: a failure to write it never stops a training.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnn_studio.core.paths import RunLayout, app_data_dir

FILE_NAME = "run_places.txt"


def registry_path() -> Path:
    """The list of remembered run folders (``CNN_STUDIO_HOME`` is honoured)."""
    return app_data_dir() / FILE_NAME


def _read() -> list[str]:
    try:
        text = registry_path().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def remember(run_dir: str | os.PathLike[str]) -> None:
    """Add ``run_dir`` (made absolute) to the list, once; errors writing the list are ignored."""
    place = str(Path(run_dir).expanduser().absolute())
    if place in _read():
        return
    try:
        registry_path().parent.mkdir(parents=True, exist_ok=True)
        with open(registry_path(), "a", encoding="utf-8") as f:  # one short append: no torn file to fear
            f.write(place + "\n")
    except OSError:
        pass


def remembered_runs() -> list[Path]:
    """The remembered folders that are still run folders, in the order they were made."""
    return [Path(p) for p in dict.fromkeys(_read()) if RunLayout(Path(p)).is_run()]
