"""Issue 23: the Model step's notes follow the selected backbone, and a long download error never pushes the
training settings off a 1280×800 screen."""

from __future__ import annotations

import urllib.request
from types import SimpleNamespace

from studio_testkit import select_backbone

from cnn_studio.training.config import TrainConfig


def test_notes_about_one_backbone_go_when_another_is_selected(offline_model_page):
    page = offline_model_page
    assert page.session.config.backbone == "small_cnn"  # no weights here: the small CNN, and why
    assert "small CNN" in page.default_note.text() and page.default_note.isVisibleTo(page)
    select_backbone(page, "vgg16")
    assert not page.default_note.isVisibleTo(page), "the note explains the small CNN, not VGG16"
    page._on_import_returned(SimpleNamespace(backbone="vgg16", label="vgg16_notop.h5"))  # the import task's answer
    assert "Imported for <b>VGG16</b>" in page.import_status.text() and page.import_status.isVisibleTo(page)
    select_backbone(page, "mobilenet_v2")
    assert not page.import_status.isVisibleTo(page), "it spoke of VGG16"
    select_backbone(page, "vgg16")
    assert page.import_status.isVisibleTo(page)
    select_backbone(page, "small_cnn")
    assert page.default_note.isVisibleTo(page)


def test_a_long_download_error_keeps_the_settings_on_a_1280x800_screen(qtbot, tmp_path, monkeypatch):
    from cnn_studio.ui.main_window import MainWindow
    from cnn_studio.ui.settings import StudioSettings
    from cnn_studio.ui.widgets.screen_fit import FRAME, SMALLEST_SCREEN
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "app"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CNN_STUDIO_IN_PROCESS", "1")
    w = MainWindow(settings=StudioSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w)
    w.resize(SMALLEST_SCREEN - FRAME)
    w.go_to(1)
    w.show()
    qtbot.waitExposed(w)
    QApplication.processEvents()  # the scroll areas settle their scroll bars
    page = w.model_page
    settings = page.settings_scroll  # the settings column (time budget, schedule line, Advanced settings)
    before = page.minimumSizeHint().height()
    assert settings.widget().width() <= settings.viewport().width(), "the settings fit before the error"
    proxy = urllib.request.ProxyHandler({"http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9"})
    monkeypatch.setattr(urllib.request, "_opener", urllib.request.build_opener(proxy))
    page.session.set_config(TrainConfig(backbone="xception", weights="none"))
    page.download_button.click()
    qtbot.waitUntil(lambda: page._download_task is None, timeout=20_000)
    QApplication.processEvents()
    assert "Import weights file…" in page.import_status.text() and page.import_status.isVisibleTo(page)
    assert page.minimumSizeHint().height() <= before, "the error made the page taller"
    assert settings.widget().width() <= settings.viewport().width() and not settings.horizontalScrollBar().isVisible(), \
        "the error's long address squeezed the settings sideways (cut off, scrolled)"
    assert settings.height() >= 200
