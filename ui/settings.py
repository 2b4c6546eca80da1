"""App preferences in QSettings: recent projects and datasets, window geometry, last folders."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from cnn_studio.core.paths import app_data_dir

MAX_RECENT = 8


class StudioSettings:
    """A thin typed wrapper over ``QSettings`` (organisation/app name set by ``app.main``).

    Parameters
    ----------
    settings
        Defaults to ``QSettings()``; tests pass one backed by a file in ``tmp_path``.
    """

    def __init__(self, settings: QSettings | None = None) -> None:
        if settings is None and os.environ.get("CNN_STUDIO_HOME"):
            # a separate home (tests, screenshots, a second profile) keeps its settings there too

            settings = QSettings(str(app_data_dir() / "settings.ini"), QSettings.Format.IniFormat)
        self._s = settings if settings is not None else QSettings()

    def file_name(self) -> str:
        """Where these settings are stored (a file, or on Windows a registry key)."""
        return self._s.fileName()

    # ---------------------------------------------------------------- recent files
    def recent_projects(self) -> list[Path]:
        """Recent project files that still exist, newest first."""
        return [p for p in (Path(x) for x in self._list("recent/projects")) if p.exists()]

    def add_recent_project(self, path: str | Path) -> None:
        self._push("recent/projects", str(Path(path).resolve()))

    def recent_datasets(self) -> list[Path]:
        return [p for p in (Path(x) for x in self._list("recent/datasets")) if p.exists()]

    def add_recent_dataset(self, path: str | Path) -> None:
        self._push("recent/datasets", str(Path(path).resolve()))

    def clear_recent(self) -> None:
        self._s.remove("recent")

    def _list(self, key: str) -> list[str]:
        value = self._s.value(key, [])
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in (value or [])]

    def _push(self, key: str, value: str) -> None:
        items = [v for v in self._list(key) if v != value]
        self._s.setValue(key, [value, *items][:MAX_RECENT])

    # ---------------------------------------------------------------- window
    def window_geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_window_geometry(self, geometry: QByteArray) -> None:
        self._s.setValue("window/geometry", geometry)

    def last_folder(self) -> str:
        return str(self._s.value("paths/last_folder", str(Path.home())))

    def set_last_folder(self, path: str | Path) -> None:
        self._s.setValue("paths/last_folder", str(path))

    # ---------------------------------------------------------------- runs
    def last_run(self) -> Path | None:
        """The run that was open when the app last closed (or crashed), if its folder still exists."""
        value = self._s.value("runs/last_run", "")
        return Path(str(value)) if value and Path(str(value)).is_dir() else None

    def set_last_run(self, path: str | Path | None) -> None:
        self._s.setValue("runs/last_run", str(Path(path).resolve()) if path else "")
        self._s.sync()  # a crash must not lose it

    def run_folders(self) -> list[Path]:
        """Folders of runs the user added to the Runs view (besides the app's runs folder)."""
        return [p for p in (Path(x) for x in self._list("runs/folders")) if p.is_dir()]

    def set_run_folders(self, folders: list[Path]) -> None:
        self._s.setValue("runs/folders", [str(f) for f in folders])

    def sync(self) -> None:
        self._s.sync()
