"""Train step: "Workers on this computer" → TrainConfig.workers → a real two-worker run in the training child."""

from __future__ import annotations

import pytest
from cnn_studio.ui.pages import train_page
from cnn_studio.ui.pages.train_page import TrainPage
from cnn_studio.ui.session import StudioSession

from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split
from cnn_studio.training.multi_worker import worker_log, workers_line


def _session(image_folder, config, tmp_path):
    s = StudioSession()
    s.project_path = tmp_path / "proj.cnnstudio"
    index = scan(image_folder(classes=("a", "b"), per_class=8, size=16))
    s.set_dataset(index, [], None)
    s.set_split(make_split(index, val_fraction=0.25, seed=0))
    s.set_config(config)
    return s


def test_workers_setting_is_carried_into_the_config(qtbot, image_folder, tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(train_page, "max_local_workers", lambda: 4)
    session = _session(image_folder, tiny_config, tmp_path)
    page = TrainPage(session)
    qtbot.addWidget(page)
    assert page.workers.value() == 1 and page.workers.maximum() == 4
    assert "several GPUs" in page.workers.toolTip() and "usually slower" in page.workers.toolTip()
    page.workers.setValue(3)
    assert session.config.workers == 3 and "3 workers on this computer" in page.plan.text()
    session.set_config(session.config.replace(workers=1))  # a project opened with 1 worker
    assert page.workers.value() == 1 and "workers on this computer" not in page.plan.text()


@pytest.mark.slow
def test_two_workers_train_from_the_train_step(qtbot, image_folder, tiny_config, tmp_path, studio_home, monkeypatch):
    monkeypatch.setattr(train_page, "max_local_workers", lambda: 2)
    session = _session(image_folder, tiny_config.replace(image_size=16, epochs=1), tmp_path)
    page = TrainPage(session)
    qtbot.addWidget(page)
    page.workers.setValue(2)
    with qtbot.waitSignal(page.training_finished, timeout=120000) as done:
        assert page.start()
        assert not page.workers.isEnabled()
    assert done.args == ["completed"], page.log.toPlainText()
    log = page.log.toPlainText()
    assert workers_line(2) in log and "Epoch 1/1" in log
    assert (page.run_dir / "best.keras").exists() and session.run_dir == page.run_dir
    assert worker_log(page.run_dir, 1).exists() and page.workers.isEnabled()
