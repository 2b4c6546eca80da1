"""Issue 23: the Train step of a reopened run shows that run's own epochs and curves (not the plan's "10 epoch(s)"
and empty plots), and a Stop during the first epoch says the same thing everywhere: no model was saved yet."""

from __future__ import annotations

import shutil

import pytest
from cnn_studio.ui.pages.train_page import NO_MODEL_YET, TrainPage
from cnn_studio.ui.session import StudioSession

from cnn_studio.core import events as ev
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.training.config import TrainConfig


def _stopped_copy(trained_run, tmp_path, total: int = 60):
    """The shared 2-epoch run, as if it had been planned for ``total`` epochs and stopped after 2."""
    run = tmp_path / "stopped_run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("run.lock"))
    layout = RunLayout(run)
    write_json(layout.config, {**read_json(layout.config), "epochs": total, "fine_tune_epochs": 0})
    write_json(layout.state, {**read_json(layout.state), "status": "cancelled"})
    return run


def test_a_reopened_stopped_run_shows_its_own_epochs_and_curves(qtbot, trained_run, tmp_path):
    run = _stopped_copy(trained_run, tmp_path)
    session = StudioSession()
    session.set_config(TrainConfig(epochs=10))
    page = TrainPage(session)
    qtbot.addWidget(page)
    assert page.curves.n_epochs == 0
    session.set_run(run)  # File → Runs… → Open
    assert page.resume_button.isVisibleTo(page) and "2 of 60 epochs done" in page.resume_button.text()
    assert page.opened_run.isVisibleTo(page) and "2 of 60 epochs done" in page.opened_run.text()
    assert "stopped" in page.opened_run.text() and run.name in page.opened_run.text()
    page.curves.refresh()
    x, _ = page.curves.val_loss_curve.getData()
    assert list(x) == [1.0, 2.0], "the curves come back from history.csv"
    assert "epoch 2 of 60" in page.status.text()
    assert page.run_dir == run


def test_the_plan_of_a_new_run_is_told_apart_from_the_opened_run(qtbot, trained_run, tmp_path, image_folder):
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split

    session = StudioSession()
    index = scan(image_folder(classes=("a", "b"), per_class=4))
    session.set_dataset(index, [], None)
    session.set_split(make_split(index, val_fraction=0.25, seed=0))
    session.set_config(TrainConfig(backbone="small_cnn", weights="none", epochs=10))
    page = TrainPage(session)
    qtbot.addWidget(page)
    assert page.plan.text().startswith("<b>") and "10 epoch(s)" in page.plan.text()
    session.set_run(_stopped_copy(trained_run, tmp_path))
    assert page.plan.text().startswith("Start training makes a new run: ") and "10 epoch(s)" in page.plan.text()


@pytest.mark.slow
def test_a_stop_in_the_first_epoch_says_no_model_everywhere(qtbot, studio_home, image_folder, tmp_path):
    from cnn_studio.ui.main_window import MainWindow
    from cnn_studio.ui.settings import StudioSettings
    from PySide6.QtCore import QSettings

    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split

    session = StudioSession()
    session.project_path = tmp_path / "proj.cnnstudio"
    index = scan(image_folder(classes=("a", "b"), per_class=8))
    session.set_dataset(index, [], None)
    session.set_split(make_split(index, val_fraction=0.25, seed=0))
    session.set_config(TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=2, epochs=50,
                                   fine_tune_epochs=0, cache="memory", seed=0))
    w = MainWindow(session, StudioSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w)
    page = w.train_page
    assert page.start()
    # the stop arrives before the first batch: TrainStarted comes before fitting (and its graph tracing) begins
    page.task.event.connect(lambda e: page.stop() if isinstance(e, ev.TrainStarted) else None)
    with qtbot.waitSignal(page.training_finished, timeout=120_000) as done:
        pass
    assert done.args == ["cancelled"]
    assert not RunLayout(page.run_dir).best_model.exists()  # (last.keras holds the untrained start, for resume)
    log = page.log.toPlainText()
    assert page.status.text() == NO_MODEL_YET and NO_MODEL_YET in log
    assert "kept" not in log and "kept" not in w.statusBar().currentMessage()
    assert w.statusBar().currentMessage() == NO_MODEL_YET


def test_a_stopped_run_can_be_continued_without_loading_its_dataset_again(qtbot, studio_home, trained_run, tmp_path):
    from cnn_studio.ui.main_window import MainWindow
    from cnn_studio.ui.settings import StudioSettings
    from PySide6.QtCore import QSettings

    w = MainWindow(settings=StudioSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w)
    assert not w.step_enabled(2)[0]  # nothing to train yet
    assert w.open_run(_stopped_copy(trained_run, tmp_path))
    assert w.step_enabled(2)[0] and w.go_to(2)
    assert w.train_page.resume_button.isVisibleTo(w.train_page)
    assert not w.train_page.start_button.isEnabled()  # a new run still needs a dataset
