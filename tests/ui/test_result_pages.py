"""Evaluate, Classify and Export pages driven like a user, on a real tiny trained run."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.conftest import make_class_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real run folder: small_cnn trained 2 epochs on a generated 2-class folder."""
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    root = tmp_path_factory.mktemp("data") / "data"
    for label, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            make_class_image(label, 32, seed=i).save(root / name / f"{name}_{i}.png")
    split = make_split(scan(root), val_fraction=0.3, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=2,
                      learning_rate=3e-3, seed=0)
    run = tmp_path_factory.mktemp("runs") / "run"
    train(cfg, split, run)
    return run


@pytest.fixture
def session(qtbot, trained_run):
    from cnn_studio.ui.session import StudioSession

    s = StudioSession()
    s.set_run(trained_run)
    return s


def test_evaluate_page_shows_metrics_and_confusion_cell_images(qtbot, session):
    from cnn_studio.ui.pages.evaluate_page import EvaluatePage

    page = EvaluatePage(session)
    qtbot.addWidget(page)
    with qtbot.waitSignal(session.run_changed):
        session.set_run(session.run_dir)  # as after training
    task = page.evaluate(force=True)
    with qtbot.waitSignal(task.signals.finished, timeout=60000):
        pass
    m = page.metrics
    assert m is not None and page.per_class.rowCount() == 2
    assert "right" in page.summary.text() and page.matrix.rowCount() == 2
    assert (session.run_dir / "metrics.json").exists()
    true, pred = 0, 0
    count = m.confusion[true][pred]
    qtbot.mouseClick(page.matrix.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.matrix.visualItemRect(page.matrix.item(true, pred)).center())
    assert page.cell_images.count() == count
    assert f"{count} images of 'cat'" in page.cell_label.text()


def test_evaluate_page_architecture_tab(qtbot, session):
    from cnn_studio.ui.pages.evaluate_page import EvaluatePage

    page = EvaluatePage(session)
    qtbot.addWidget(page)
    task = page.load_architecture()
    with qtbot.waitSignal(task.signals.finished, timeout=60000):
        pass
    assert page.arch_table.rowCount() > 5
    assert "parameters" in page.arch_text.text()
    assert not page.filters.pixmap().isNull()


def _drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def test_classify_page_drop_two_images_and_a_corrupt_file(qtbot, session, tmp_path):
    from cnn_studio.ui.pages.classify_page import ClassifyPage

    page = ClassifyPage(session)
    qtbot.addWidget(page)
    a, b, bad = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "broken.jpg"
    make_class_image(0, 32, seed=99).save(a)
    make_class_image(1, 32, seed=98).save(b)
    bad.write_bytes(b"this is not a jpeg")
    _drop(page, [a, b, bad])
    qtbot.waitUntil(lambda: len(page.predictions) == 3 and not page.busy(), timeout=60000)
    assert page.grid.count() == 3
    labels = {p.label for p in page.predictions.values() if not p.error}
    assert labels <= {"cat", "dog"}
    assert page.predictions[str(bad)].error
    texts = [page.grid.item(i).text() for i in range(3)]
    assert any("cannot be read" in t for t in texts) and any("%" in t for t in texts)

    page.heat_toggle.setChecked(True)
    qtbot.waitUntil(lambda: len(page.heatmaps) == 2 and not page.busy(), timeout=60000)
    original, heat = page.heatmaps[str(a)]
    assert heat.shape == original.shape[:2] and 0 <= heat.min() and heat.max() <= 1

    out = page.save_csv(tmp_path / "results.csv")
    rows = list(csv.reader(open(out, encoding="utf-8")))
    assert len(rows) == 4

    page.grid.image_activated.emit(str(a))
    qtbot.waitUntil(lambda: page.inspect.result is not None and not page.inspect.busy(), timeout=60000)
    assert page.inspect.layer_box.count() > 0 and not page.inspect.picture.pixmap().isNull()
    page.inspect._on_layer_box_activated(0)
    qtbot.waitUntil(lambda: not page.inspect.maps.pixmap().isNull() and not page.inspect.busy(), timeout=60000)
    assert "feature maps" in page.inspect.maps_caption.text()


def test_export_page_exports_keras_and_tflite_verified(qtbot, session, tmp_path):
    from cnn_studio.ui.pages.export_page import ExportPage

    page = ExportPage(session)
    qtbot.addWidget(page)
    for key, box in page.checks.items():
        box.setChecked(key in ("keras", "tflite"))
    page.folder.setText(str(tmp_path / "out"))
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.table.rowCount() == 2 and page.export_button.isEnabled(), timeout=120000)
    verified = [page.table.item(r, 2).text() for r in range(2)]
    assert all(v.startswith("✓") for v in verified), verified
    assert (tmp_path / "out" / "model.keras").exists() and (tmp_path / "out" / "model.tflite").exists()
    assert "2 of 2" in page.status.text()
    assert page.card.toPlainText().strip()
