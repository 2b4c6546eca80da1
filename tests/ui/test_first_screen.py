"""Issue 20, item 8: the first screen pays only for itself. The window imports and builds the Data step
alone; every other step is imported and built when it is first opened, starts from the session as it is
then, and opens no window of its own while the app is on screen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from cnn_studio.ui.main_window import STEPS, MainWindow
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QEvent, QObject, QSettings
from PySide6.QtWidgets import QApplication

from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout

LATER = ("cnn_studio.ui.pages.train_page", "cnn_studio.ui.pages.evaluate_page", "cnn_studio.ui.pages.classify_page",
         "cnn_studio.ui.pages.export_page", "cnn_studio.ui.review_queue", "cnn_studio.ui.suggest_queue",
         "cnn_studio.ui.runs_view", "cnn_studio.ui.compare_view", "cnn_studio.ui.computer_dialog",
         "cnn_studio.ui.pages.inspect_panel", "cnn_studio.ui.label_check", "cnn_studio.ui.suspect_heatmaps",
         "pyqtgraph", "superqt", "tensorflow", "keras")

FIRST_PAINT = r"""
import json, sys
from PySide6.QtCore import QEvent, QObject, QTimer
from cnn_studio.ui.app import create_app, create_window
from cnn_studio.ui.workers import cancel_all_and_wait
app = create_app([])
window = create_window(None, open_sample=True)
class FirstPaint(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, app.quit)
        return False
painted = FirstPaint()
window.installEventFilter(painted)
window.show()
app.exec()
loaded = sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)
built = [type(window.built_page(i)).__name__ for i in range(6) if window.built_page(i) is not None]
cancel_all_and_wait(10000)
window.session.dirty = False
print(json.dumps({"loaded": loaded, "built": built}))
"""


def _window(qtbot, tmp_path) -> MainWindow:
    w = MainWindow(settings=StudioSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w)
    return w


def test_the_window_paints_with_the_data_step_alone(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_STUDIO_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-c", FIRST_PAINT, json.dumps(LATER)], capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout.strip().splitlines()[-1])
    assert first["loaded"] == [], "imported before the first paint, although only a later step needs it"
    assert first["built"] == ["DataPage"]


def test_a_step_is_built_when_first_opened_with_the_default_settings_and_their_note(qtbot, tmp_path):
    from cnn_studio.ui.pages.model_page import ModelPage, default_config

    w = _window(qtbot, tmp_path)
    assert [w.built_page(i) is not None for i in range(len(STEPS))] == [True] + [False] * 5
    assert w.session.config == default_config()[0] and not w.session.dirty  # before the Model step exists
    assert w.go_to(1) and isinstance(w.built_page(1), ModelPage) and w.stack.currentWidget() is w.built_page(1)
    assert w.model_page is w.built_page(1) and w.built_page(2) is None
    assert w.model_page.default_note.text() == default_config()[1], "the note says why these settings were chosen"
    assert w.session.config == default_config()[0] and not w.session.dirty


def test_a_step_opened_through_the_stack_is_built_before_it_shows(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    w.stack.setCurrentIndex(5)
    assert w.stack.currentWidget() is w.built_page(5) and type(w.built_page(5)).__name__ == "ExportPage"
    assert w.stack.count() == len(STEPS) and w.stack.indexOf(w.built_page(5)) == 5


def test_building_a_step_later_opens_no_window_of_its_own(qtbot, tmp_path):
    """A label made visible before it has a parent is a window of its own: built while the app is on
    screen it flashed and took the focus (the Evaluate step's keys then did nothing)."""
    w = _window(qtbot, tmp_path)
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    shown = []

    class Windows(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 - Qt override
            if event.type() == QEvent.Type.Show and obj.isWidgetType() and obj.isWindow() and obj is not w:
                shown.append(f"{type(obj).__name__} {obj.objectName()}")
            return False

    spy = Windows()
    QApplication.instance().installEventFilter(spy)
    try:
        for i in range(1, len(STEPS)):
            w.page(i)
            QApplication.processEvents()
    finally:
        QApplication.instance().removeEventFilter(spy)
    assert shown == []
    assert w.isActiveWindow()
    w.session.dirty = False


@pytest.mark.slow
def test_steps_built_after_a_run_was_opened_show_that_run(qtbot, tmp_path, trained_run):
    run = tmp_path / "stopped_run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("run.lock"))
    layout = RunLayout(run)
    write_json(layout.config, {**read_json(layout.config), "epochs": 60, "fine_tune_epochs": 0})
    write_json(layout.state, {**read_json(layout.state), "status": "cancelled"})
    w = _window(qtbot, tmp_path)
    assert w.built_page(2) is None
    assert w.open_run(run)
    assert w.go_to(2), "a stopped run can be continued without a dataset (the step is built to ask)"
    page = w.train_page
    assert page.run_dir == run and page.opened_run.isVisibleTo(page) and "2 of 60 epochs done" in page.opened_run.text()
    assert page.can_continue and page.curves.n_epochs == 2
    assert "Evaluating" in w.evaluate_page.summary.text(), "built by open_run, for the run it opened"
    assert w.built_page(4) is None and w.classify_page.status.text() == "Drop pictures to classify them."
    assert w.classify_page.add_button.isEnabled()
    w.session.dirty = False
