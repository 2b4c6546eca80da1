"""Model step and weights: Import weights file… (off the GUI thread), no silent switch to scratch,
a cancelled file dialog changes nothing, a chosen file is cleared when the backbone changes."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog
from studio_testkit import select_backbone

from cnn_studio.backbones import weights_store
from cnn_studio.training.config import TrainConfig


@pytest.fixture
def page(offline_model_page):
    return offline_model_page


def test_cancelled_file_dialog_keeps_the_choice(page, monkeypatch):
    page.session.set_config(TrainConfig(backbone="vgg16", weights="imagenet"))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    page.weights_combo.setCurrentIndex(page.weights_combo.findData("file"))
    assert page.weights_combo.currentData() == "imagenet"
    assert page.session.config.weights == "imagenet", "never switched to scratch by a cancelled dialog"
    page.import_button.click()
    assert page.session.config.weights == "imagenet" and page._import_task is None


def test_chosen_file_is_cleared_when_the_backbone_changes(page, tmp_path):
    page.session.set_config(TrainConfig(backbone="vgg16", weights="imagenet"))
    f = tmp_path / "vgg16_notop.weights.h5"
    f.write_bytes(b"x")
    page.use_weights_file(str(f))
    assert page.session.config.weights == str(f)
    select_backbone(page, "xception")
    assert page.session.config.backbone == "xception"
    assert page.session.config.weights == "imagenet", "the file was for VGG16; back to ImageNet, not scratch"
    assert "vgg16_notop" not in page.details.text()


def test_large_backbone_from_scratch_is_said_plainly(page):
    page.session.set_config(TrainConfig(backbone="vgg16", weights="none"))
    assert page.scratch_warning.isVisibleTo(page)
    assert "will not learn" in page.scratch_warning.text() and "Import weights file" in page.scratch_warning.text()
    page.session.set_config(TrainConfig(backbone="small_cnn", weights="none"))
    assert not page.scratch_warning.isVisibleTo(page)
    assert "not on this computer" not in page.details.text()


def test_import_weights_file_runs_off_the_gui_thread_and_selects_it(page, qtbot, tmp_path, monkeypatch):
    import threading

    import h5py
    import numpy as np

    widths = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    src = tmp_path / "from_usb.weights.h5"  # VGG16's 26 arrays in the .weights.h5 layout
    with h5py.File(src, "w") as f:
        layers = f.create_group("layers")
        for i in range(13):
            v = layers.create_group(f"conv{i}").create_group("vars")
            v.create_dataset("0", data=np.zeros((3, 3, widths[i], widths[i + 1]), "float32"))
            v.create_dataset("1", data=np.zeros((widths[i + 1],), "float32"))
        f.create_group("vars")
    threads = []
    monkeypatch.setattr(weights_store, "_check_loads", lambda spec, path: threads.append(threading.current_thread()))
    page.session.set_config(TrainConfig(backbone="small_cnn", weights="none"))
    task = page.import_weights_file(str(src))
    assert not page.import_button.isEnabled()
    with qtbot.waitSignal(task.signals.finished, timeout=30000):
        pass
    assert threads and threads[0] is not threading.main_thread()
    assert page.import_button.isEnabled()
    assert (page.session.config.backbone, page.session.config.weights) == ("vgg16", "imagenet")
    assert "Imported for <b>VGG16</b>" in page.import_status.text()
    assert "available offline" in page.details.text()
    assert src.exists()


def test_import_error_is_one_plain_line(page, qtbot, tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("not weights")
    task = page.import_weights_file(str(bad), "vgg16")
    with qtbot.waitSignal(task.signals.finished, timeout=30000):
        pass
    assert "is not a Keras weights file" in page.import_status.text()
    assert "Traceback" not in page.import_status.text()
