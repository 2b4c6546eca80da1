"""Help → About CNN Studio: the version, and where each kind of the user's data lives (outside the program)."""

from __future__ import annotations

import sys

from cnn_studio.ui.about import data_locations, program_location
from cnn_studio.ui.main_window import MainWindow
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QSettings

from cnn_studio import __version__


def _window(qtbot, tmp_path):
    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    return w


def test_about_shows_the_version_and_each_data_location(qtbot, tmp_path, studio_home):
    window = _window(qtbot, tmp_path)
    box = window.show_about()
    text = box.text()
    assert f"CNN Studio {__version__}" in text
    for kind, where in (("Runs", studio_home / "runs"), ("Weights store", studio_home / "weights"),
                        ("Label corrections", studio_home / "corrections"),
                        ("Settings", tmp_path / "settings.ini"), ("Logs", studio_home / "logs")):
        assert kind in text and str(where) in text, (kind, where)
    box.close()


def test_frozen_app_keeps_every_kind_of_data_outside_its_own_folder(tmp_path, monkeypatch):
    bundle = tmp_path / "cnn-studio"
    bundle.mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "cnn-studio"))
    monkeypatch.delenv("CNN_STUDIO_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    assert program_location() == bundle.resolve()
    settings = StudioSettings(QSettings(str(tmp_path / "home" / "settings.ini"), QSettings.Format.IniFormat))
    for kind, where in data_locations(settings.file_name()):
        assert not where.resolve().is_relative_to(bundle.resolve()), kind
        assert where.resolve().is_relative_to((tmp_path / "home").resolve()), (kind, where)
