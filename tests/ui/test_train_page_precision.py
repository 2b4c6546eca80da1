"""The Train step shows, next to the device line, the precision a real training chose and why."""

from __future__ import annotations

from cnn_studio.ui.pages.train_page import TrainPage
from cnn_studio.ui.session import StudioSession

from cnn_studio.core import events as ev
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.training import devices
from cnn_studio.training.trainer import train


def test_precision_line_from_a_real_training_start(qtbot, image_folder, tiny_config, tmp_path):
    prepared = prepare(image_folder(per_class=6, size=16), PrepareOptions(val_fraction=0.34, corrections=None))
    seen = []
    train(tiny_config.replace(image_size=16), prepared.split, tmp_path / "run", sink=seen.append)
    started = next(e for e in seen if isinstance(e, ev.TrainStarted))
    gpus = devices.tf_runtime.gpu_devices()
    assert started.precision == devices.precision_line(devices.choose_precision("auto", gpus), gpus)
    if not gpus:  # on a CPU there is no precision to explain
        assert started.precision == ""

    page = TrainPage(StudioSession())
    qtbot.addWidget(page)
    page.show()
    for e in seen:  # the events as the training sent them, in order
        page._on_train_event(e)
    assert page.precision.text() == started.precision
    assert page.device.text().startswith(started.device)
    log = page.log.toPlainText()
    assert started.device in log and started.precision in log
    if not gpus:
        assert "float32" not in log and "tensor cores" not in log
    assert page.device.geometry().top() == page.precision.geometry().top()  # side by side
