"""The whole app flow, driven through the main window as a user would, offscreen.

Load a generated dataset → pick the small CNN (weights=None) at 32 px in the Model step → train one
epoch and see the curves get points → evaluate → drop a picture onto the window in the Classify
step → export → save the project → reopen it in a new window with the run still there.
"""

from __future__ import annotations

import numpy as np
import pytest
from cnn_studio.ui.main_window import STEPS, MainWindow
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QSettings, Qt
from studio_testkit import click_backbone, drop_files, export_keras_verified, make_class_image

pytestmark = pytest.mark.slow


def _window(qtbot, tmp_path):
    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    return w


def test_folder_to_exported_model_and_back(qtbot, tmp_path, image_folder):
    w = _window(qtbot, tmp_path)
    w.resize(1280, 800)
    w.show()

    # 1. Data: a folder of two classes
    root = image_folder(classes=("cat", "dog"), per_class=10, size=32)
    with qtbot.waitSignal(w.data_page.check_finished, timeout=30000):
        w.open_path(root)
    qtbot.waitUntil(lambda: not w.data_page.busy and w.data_page._thumb_task is None, timeout=30000)
    assert w.session.index is not None and len(w.session.index.class_names) == 2
    assert w.sidebar.item(STEPS.index("Train")).flags() & Qt.ItemFlag.ItemIsEnabled

    # 2. Model: click the small CNN, no pretrained weights, 32 px, one epoch
    assert w.go_to(STEPS.index("Model"))
    mp = w.model_page
    click_backbone(qtbot, mp, "small_cnn")
    mp.weights_combo.setCurrentIndex(mp.weights_combo.findData("none"))
    mp.image_size.setValue(32)
    mp.batch_size.setValue(8)
    mp.epochs.setValue(1)
    mp.fine_tune_epochs.setValue(0)
    cfg = w.session.config
    assert (cfg.backbone, cfg.weights, cfg.image_size, cfg.epochs) == ("small_cnn", "none", 32, 1)

    # 3. Train: Ctrl+Return path (start_training), curves receive the epoch
    with qtbot.waitSignal(w.train_page.training_finished, timeout=180000) as done:
        w.start_training()
        assert w.current_step() == STEPS.index("Train") and w.train_page.is_training
    assert done.args == ["completed"]
    w.train_page.curves.refresh()
    x, y = w.train_page.curves.train_loss_curve.getData()
    assert list(x) == [1.0] and y[0] > 0
    run = w.session.run_dir
    assert run is not None and any(run.glob("*.keras"))
    for step in ("Evaluate", "Classify", "Export"):
        assert w.sidebar.item(STEPS.index(step)).flags() & Qt.ItemFlag.ItemIsEnabled

    # 4. Evaluate: showing the page evaluates; the confusion matrix counts every validation image
    ep = w.evaluate_page
    assert w.go_to(STEPS.index("Evaluate"))
    qtbot.waitUntil(lambda: ep.metrics is not None and not ep._busy(), timeout=120000)
    n_val = len(w.session.split.val)
    assert int(np.asarray(ep.metrics.confusion).sum()) == n_val and ep.matrix.rowCount() == 2

    # 5. Classify: a picture dropped onto the *window* while on the Classify step is classified
    assert w.go_to(STEPS.index("Classify"))
    pic = tmp_path / "new picture é.png"
    make_class_image(1, 32, seed=123).save(pic)
    event = drop_files(w, [pic])
    assert event.isAccepted()
    cp = w.classify_page
    qtbot.waitUntil(lambda: str(pic) in cp.predictions and not cp.busy(), timeout=120000)
    pred = cp.predictions[str(pic)]
    assert not pred.error and pred.label in ("cat", "dog")
    assert abs(sum(p for _, p in pred.top) - 1.0) < 1e-4
    # a picture dropped on another step goes to Classify too (once a model exists)
    w.go_to(STEPS.index("Data"))
    pic2 = tmp_path / "another.png"
    make_class_image(0, 32, seed=321).save(pic2)
    assert w.drop_target([pic2]) == "classify" and w.drop_target([root]) == "dataset"
    drop_files(w, [pic2])
    assert w.current_step() == STEPS.index("Classify")
    qtbot.waitUntil(lambda: str(pic2) in cp.predictions and not cp.busy(), timeout=120000)

    # 6. Export: .keras, verified
    export_keras_verified(qtbot, w, tmp_path / "exported", STEPS)
    assert (tmp_path / "exported" / "model.keras").exists()

    # Save the project, reopen it in a fresh window: dataset, settings and the run come back
    assert w._save(tmp_path / "farm")
    path = tmp_path / "farm.cnnstudio"
    w2 = _window(qtbot, tmp_path)
    with qtbot.waitSignal(w2.data_page.check_finished, timeout=30000):
        assert w2.open_project(path)
    qtbot.waitUntil(lambda: not w2.data_page.busy and w2.data_page._thumb_task is None, timeout=30000)
    assert w2.session.run_dir == run
    assert w2.session.config.backbone == "small_cnn" and w2.model_page.image_size.value() == 32
    assert w2.go_to(STEPS.index("Classify")), "the reopened project's run enables Classify"
    from cnn_studio.ui.workers import live_tasks

    qtbot.waitUntil(lambda: not live_tasks(), timeout=60000)  # what the reopened project started has ended
    w.session.dirty = w2.session.dirty = False
