"""Main window smoke test: steps open when allowed, folder drops go to Data, project save/load, quitting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cnn_studio.ui.main_window import NEEDS_DATA, NEEDS_RUN, STEPS, MainWindow
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox
from studio_testkit import drop_files

from cnn_studio.runs.project import SCHEMA_VERSION


def _window(qtbot, tmp_path):
    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    return w


def _wait_data(qtbot, w):
    qtbot.waitUntil(lambda: not w.data_page.busy and w.data_page._thumb_task is None, timeout=20000)


def test_steps_are_gated_until_prerequisites_exist(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    assert w.sidebar.count() == len(STEPS)
    assert w.go_to(1) and w.current_step() == 1  # Model: always
    assert not w.go_to(2) and w.current_step() == 1
    assert w.sidebar.item(2).toolTip() == NEEDS_DATA
    for i in (3, 4, 5):
        assert not (w.sidebar.item(i).flags() & Qt.ItemFlag.ItemIsEnabled)
        assert w.sidebar.item(i).toolTip() == NEEDS_RUN


def test_folder_drop_opens_data_step_and_enables_train(qtbot, tmp_path, image_folder):
    w = _window(qtbot, tmp_path)
    w.go_to(1)
    root = image_folder()
    with qtbot.waitSignal(w.data_page.check_finished, timeout=20000):
        drop_files(w, [root])
    _wait_data(qtbot, w)
    assert w.current_step() == 0
    assert w.session.index.root == str(root)
    assert w.sidebar.item(2).flags() & Qt.ItemFlag.ItemIsEnabled
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    for i in range(3):  # Data, Model, Train open with Ctrl+1..3
        qtbot.keyClick(w, Qt.Key.Key_1 + i, Qt.KeyboardModifier.ControlModifier)
        assert w.current_step() == i
    assert w.settings.recent_datasets() == [root.resolve()]


@pytest.mark.slow
def test_every_step_opens_once_a_run_exists(qtbot, tmp_path, image_folder, tiny_config):
    """Uses a run folder written by the real trainer (the slow part is shared with the train page test)."""
    pytest.importorskip("tensorflow")
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.trainer import train

    split = make_split(scan(image_folder()), val_fraction=0.25, seed=0)
    run = train(tiny_config, split, tmp_path / "run").run_dir
    w = _window(qtbot, tmp_path)
    w.session.set_split(split)
    w.session.set_run(run)
    for i in range(len(STEPS)):
        assert w.go_to(i), f"step {STEPS[i]} should open"
        assert w.stack.currentWidget() is w.pages[i]
        assert not w.pages[i].__class__.__name__ == "QLabel", f"{STEPS[i]} page failed to load"
    w.session.dirty = False


def test_project_save_and_open_round_trip(qtbot, tmp_path, image_folder):
    w = _window(qtbot, tmp_path)
    root = image_folder()
    with qtbot.waitSignal(w.data_page.check_finished, timeout=20000):
        w.open_path(root)
    _wait_data(qtbot, w)
    w.session.set_config(w.session.config.replace(epochs=7))
    assert w.windowTitle().startswith("Untitled *")
    assert w._save(tmp_path / "leaves")
    path = tmp_path / "leaves.cnnstudio"
    assert json.loads(path.read_text())["dataset_path"] == str(root)
    assert not w.session.dirty and "*" not in w.windowTitle()

    w2 = _window(qtbot, tmp_path)
    with qtbot.waitSignal(w2.data_page.check_finished, timeout=20000):
        assert w2.open_project(path)
    _wait_data(qtbot, w2)
    assert w2.session.config.epochs == 7 and w2.model_page.epochs.value() == 7
    assert w2.session.index.root == str(root)
    assert w2.settings.recent_projects() == [path.resolve()]


def test_damaged_and_newer_projects_are_refused_with_a_message(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    bad = tmp_path / "bad.cnnstudio"
    bad.write_text("{oops", encoding="utf-8")
    newer = tmp_path / "newer.cnnstudio"
    newer.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "name": "x"}), encoding="utf-8")
    for path, words in ((bad, "damaged"), (newer, "newer")):
        assert w.open_project(path) is False
        boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
        assert boxes and words in boxes[-1].text()
        boxes[-1].close()
    assert w.session.project_path is None


def test_close_asks_to_save_changes(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    w.session.project_path = tmp_path / "p.cnnstudio"
    w.session.set_config(w.session.config.replace(epochs=3))
    asked = []
    w.ask_save_changes = lambda: asked.append(1) or QMessageBox.StandardButton.Cancel
    assert not w.close() and asked
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Save
    assert w.close() and (tmp_path / "p.cnnstudio").exists()


def test_importing_the_app_does_not_load_tensorflow():
    code = ("import sys, cnn_studio.ui.app, cnn_studio.ui.main_window; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_close_while_training_stops_and_keeps_the_run(qtbot, tmp_path, image_folder, tiny_config):
    pytest.importorskip("tensorflow")
    from cnn_studio.ui.workers import live_tasks

    from cnn_studio.core import events as ev
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split

    w = _window(qtbot, tmp_path)
    w.session.project_path = tmp_path / "p.cnnstudio"
    w.session.set_split(make_split(scan(image_folder()), val_fraction=0.25, seed=0))
    w.session.set_config(tiny_config.replace(epochs=100, batch_size=2))
    asked = []
    w.ask_stop_training = lambda: asked.append(1) or True
    w.start_training()
    assert w.train_page.is_training
    with qtbot.waitSignal(w.train_page.task.event, timeout=60000,
                          check_params_cb=lambda e: isinstance(e, ev.EpochEnded)):
        pass
    assert w.close()
    assert asked and not live_tasks()
    qtbot.waitUntil(lambda: not w.train_page.is_training, timeout=5000)
    assert (w.train_page.run_dir / "best.keras").exists()


def test_new_project_clears_the_data_step_through_the_session(qtbot, tmp_path, image_folder):
    w = _window(qtbot, tmp_path)
    with qtbot.waitSignal(w.data_page.check_finished, timeout=20000):
        w.open_path(image_folder())
    _wait_data(qtbot, w)
    assert w.data_page.class_model.rowCount() == 2
    with qtbot.waitSignal(w.session.project_opened, timeout=1000):
        w.new_project()
    assert w.session.index is None and w.session.split is None
    assert w.data_page.class_model.rowCount() == 0 and w.data_page.summary.text() == "No dataset yet."
    assert not w.sidebar.item(2).flags() & Qt.ItemFlag.ItemIsEnabled


def test_pages_are_plain_imports_and_shut_down_on_session_closing(qtbot, tmp_path):
    import inspect

    from cnn_studio.ui import main_window, window_steps
    from cnn_studio.ui.pages.classify_page import ClassifyPage

    source = inspect.getsource(main_window) + inspect.getsource(window_steps)  # the window builds its pages there
    assert "importlib" not in source and "hasattr" not in source
    w = _window(qtbot, tmp_path)
    assert isinstance(w.classify_page, ClassifyPage)
    with qtbot.waitSignal(w.session.closing, timeout=1000):
        assert w.close()
