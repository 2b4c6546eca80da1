"""Issue 22 in the app: the automatic schedule by default, Advanced settings, the time budget, the finder's
plot, progress of long phases and 'still improving' with Continue training."""

from __future__ import annotations

import shutil

from cnn_studio.ui.pages.model_page import ModelPage
from cnn_studio.ui.pages.train_page import TrainPage, more_epochs_for
from cnn_studio.ui.session import StudioSession
from PySide6.QtWidgets import QWidget

from cnn_studio.core import events as ev
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split


def test_model_step_defaults_to_the_automatic_schedule_with_settings_under_advanced(qtbot):
    session = StudioSession()
    page = ModelPage(session)
    qtbot.addWidget(page)
    assert session.config.schedule == "auto" and not page.advanced.isExpanded()
    assert "until the validation loss stops improving" in page.schedule_line.text()
    inside = page.advanced.content()
    settings = (page.image_size, page.batch_size, page.epochs, page.fine_tune_epochs, page.fine_tune_depth,
                page.learning_rate, page.fine_tune_lr, page.lr_schedule, page.optimizer, page.label_smoothing,
                page.dropout, page.class_weight, page.early_stopping, page.seed, page.resize, page.cache,
                *page.augment_boxes.values())
    assert all(inside.isAncestorOf(w) for w in settings)
    assert not inside.isAncestorOf(page.time_budget)

    page.time_budget.setText("10m")
    page.time_budget.editingFinished.emit()
    assert session.config.time_budget_s == 600 and "Time budget 10 min" in page.schedule_line.text()
    page.epochs.setValue(7)  # editing the epochs picks the fixed schedule
    assert session.config.schedule == "fixed" and session.config.epochs == 7
    page.schedule.setCurrentIndex(page.schedule.findData("auto"))
    assert session.config.schedule == "auto" and session.config.epochs is None


def test_model_step_settings_fit_their_column_at_1280_and_1400_px(qtbot):
    session = StudioSession()
    page = ModelPage(session)
    qtbot.addWidget(page)
    page.advanced.expand(animate=False)
    for width in (1280, 1400):
        QWidget.resize(page, width, 800)  # (page.resize is the Resize setting)
        page.show()
        qtbot.wait(50)
        needed = page.settings_scroll.widget().minimumSizeHint().width()
        assert needed <= page.settings_scroll.viewport().width(), (width, needed)


def _train_page(qtbot, image_folder, tiny_config, tmp_path):
    s = StudioSession()
    s.project_path = tmp_path / "proj.cnnstudio"
    index = scan(image_folder(classes=("a", "b"), per_class=8))
    s.set_dataset(index, [], None)
    s.set_split(make_split(index, val_fraction=0.25, seed=0))
    s.set_config(tiny_config.replace(epochs=None, fine_tune_epochs=None))
    page = TrainPage(s)
    qtbot.addWidget(page)
    return s, page


def test_train_step_shows_the_schedule_progress_of_long_phases_and_the_finder(qtbot, image_folder, tiny_config,
                                                                              tmp_path):
    session, page = _train_page(qtbot, image_folder, tiny_config, tmp_path)
    assert "Schedule:" in page.plan.text() and "at most 100 epochs" in page.plan.text()
    page._task = object()  # as while a run is going: events arrive from the worker
    page._on_train_event(ev.TrainStarted(run_dir=str(tmp_path), backbone="small_cnn", epochs=10, steps=4,
                                         train_images=12, val_images=4))
    page._on_train_event(ev.TaskProgress(task="Computing features (training images)", done=96, total=800,
                                         detail="96 of 800 images",
                                         seconds_left=75.0))
    assert (page.progress.maximum(), page.progress.value()) == (800, 96)
    assert "Computing features (training images): 96 of 800" in page.status.text() and "left ≈ 1:15" in page.speed.text()
    page._on_train_event(ev.LearningRateFound(rates=(1e-5, 1e-4, 1e-3, 1e-2), losses=(1.0, 0.9, 0.5, 2.0),
                                              suggestion=1e-3, reason="steepest"))
    assert not page.lr_plot.isHidden() and page.lr_plot.suggestion == 1e-3
    page._on_train_event(ev.BatchEnded(phase="head", epoch=0, step=2, steps=4, logs={}, images_per_s=10.0))
    assert page.progress.maximum() == 40  # back to the epochs' bar
    page._task = None


def test_a_run_still_improving_offers_continue_training(qtbot, image_folder, tiny_config, tmp_path, trained_run):
    session, page = _train_page(qtbot, image_folder, tiny_config, tmp_path)
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    layout = RunLayout(run)
    state = read_json(layout.state)
    write_json(layout.state, {**state, "status": "completed", "still_improving": True,
                              "schedule": {"scratch": {"start": 0, "end": 2, "finished": True}}})
    assert more_epochs_for(run) == 3
    launched = []
    page._launch = lambda fn, *args, **kw: launched.append((fn.__name__, args))
    session.set_run(run)
    assert page.resume_button.isVisibleTo(page) and "+3 epochs" in page.resume_button.text()
    page.resume_button.click()
    assert launched == [("_resume", (run, 3))]
    assert isinstance(page.lr_plot, QWidget)
