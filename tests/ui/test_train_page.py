"""Train page: a real tiny run finishes with curves and a run folder; Stop cancels and keeps what was done."""

from __future__ import annotations

import pytest
from cnn_studio.ui.pages.train_page import TrainPage, new_run_dir
from cnn_studio.ui.session import StudioSession

from cnn_studio.core import events as ev
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split


def _session(image_folder, config, tmp_path):
    s = StudioSession()
    s.project_path = tmp_path / "proj.cnnstudio"  # runs go next to the project, inside tmp_path
    index = scan(image_folder(classes=("a", "b"), per_class=8))
    s.set_dataset(index, [], None)
    s.set_split(make_split(index, val_fraction=0.25, seed=0))
    s.set_config(config)
    return s


def test_start_disabled_without_data(qtbot):
    page = TrainPage(StudioSession())
    qtbot.addWidget(page)
    assert not page.start_button.isEnabled()
    assert "Data step" in page.start_button.toolTip()
    assert page.start() is False


def test_plan_names_the_weights_once_and_counts_every_epoch(qtbot, image_folder, tiny_config, tmp_path):
    session = _session(image_folder, tiny_config.replace(epochs=3, fine_tune_epochs=2), tmp_path)
    page = TrainPage(session)
    qtbot.addWidget(page)
    text = page.plan.text()
    assert "Small CNN (from scratch)</b> ·" in text and "(from scratch) (from scratch)" not in text
    assert "5 epoch(s)" in text
    session.set_config(tiny_config.replace(backbone="mobilenet_v2", weights="scratch", image_size=32))
    assert "<b>MobileNetV2</b> (from scratch) ·" in page.plan.text()
    session.set_config(tiny_config.replace(backbone="mobilenet_v2", weights="imagenet", image_size=32))
    assert "<b>MobileNetV2</b> (ImageNet weights) ·" in page.plan.text()


@pytest.mark.slow
def test_training_run_finishes_with_curves(qtbot, image_folder, tiny_config, tmp_path, studio_home):
    session = _session(image_folder, tiny_config.replace(epochs=2), tmp_path)
    page = TrainPage(session)
    qtbot.addWidget(page)
    assert page.start_button.isEnabled()
    with qtbot.waitSignal(page.training_finished, timeout=120000) as done:
        qtbot.mouseClick(page.start_button, qtbot_left())
        assert page.is_training and not page.start_button.isEnabled() and page.stop_button.isEnabled()
    assert done.args == ["completed"]
    page.curves.refresh()
    x, y = page.curves.train_loss_curve.getData()
    assert list(x) == [1.0, 2.0] and all(v > 0 for v in y)
    vx, _ = page.curves.val_acc_curve.getData()
    assert len(vx) == 2
    assert session.run_dir == page.run_dir and (page.run_dir / "best.keras").exists()
    assert page.run_dir.parent == tmp_path / "proj_runs"
    assert session.run_info() is not None
    assert page.evaluate_button.isVisibleTo(page) and "Epoch 2/2" in page.log.toPlainText()
    assert page.start_button.isEnabled()
    # it trained in a child process, whose TensorFlow messages went to a log file of its own
    assert len(list((studio_home / "logs").glob(f"train-{page.run_dir.name}.log"))) == 1


@pytest.mark.slow
def test_stop_cancels_training(qtbot, image_folder, tiny_config, tmp_path):
    session = _session(image_folder, tiny_config.replace(epochs=50, batch_size=2), tmp_path)
    page = TrainPage(session)
    qtbot.addWidget(page)
    returned = []
    assert page.start()
    page.task.returned.connect(returned.append)

    def stop_on_first_batch(e):
        if isinstance(e, ev.BatchEnded) and page.stop_button.isEnabled():
            qtbot.mouseClick(page.stop_button, qtbot_left())

    page.task.event.connect(stop_on_first_batch)
    with qtbot.waitSignal(page.training_finished, timeout=120000) as done:
        pass
    assert done.args == ["cancelled"] and returned == []
    assert page.status.text().startswith("Stopped") and page.speed.text() == ""
    assert page.curves.n_epochs < 50


def test_new_run_dir_without_project_uses_app_data(studio_home):
    s = StudioSession()
    p = new_run_dir(s)
    assert p.parent == studio_home / "runs" and p.name.endswith(s.config.backbone)


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


@pytest.mark.slow
def test_stopped_run_continues_where_it_stopped(qtbot, image_folder, tiny_config, tmp_path):
    from cnn_studio.runs.run_folder import resume_point

    total = 30
    session = _session(image_folder, tiny_config.replace(epochs=total, batch_size=2), tmp_path)
    page = TrainPage(session)
    qtbot.addWidget(page)
    assert not page.resume_button.isVisibleTo(page)
    assert page.start()

    def stop_after_two_epochs(e):
        if isinstance(e, ev.EpochEnded) and e.epoch >= 1 and page.stop_button.isEnabled():
            page.stop()

    page.task.event.connect(stop_after_two_epochs)
    with qtbot.waitSignal(page.training_finished, timeout=120000) as done:
        pass
    assert done.args == ["cancelled"]
    left = resume_point(session.run_dir)
    assert left is not None and 2 <= left[0] < total and left[1] == total
    assert page.resume_button.isVisibleTo(page) and f"{left[0]} of {total}" in page.resume_button.text()

    with qtbot.waitSignal(page.training_finished, timeout=180000) as done:
        qtbot.mouseClick(page.resume_button, qtbot_left())
        assert page.is_training and not page.resume_button.isVisibleTo(page)
    assert done.args == ["completed"]
    page.curves.refresh()
    x, _ = page.curves.train_loss_curve.getData()
    assert list(x) == [float(i) for i in range(1, total + 1)]  # the earlier epochs, then the continued ones
    assert resume_point(session.run_dir) is None and not page.resume_button.isVisibleTo(page)
    assert "Continuing the run" in page.log.toPlainText()
