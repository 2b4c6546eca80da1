"""Classify page: drop files, see labels and error cards, Grad-CAM overlays, table, CSV."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt
from studio_testkit import drop_files, make_class_image

pytestmark = pytest.mark.slow


@pytest.fixture
def page(qtbot, session):
    from cnn_studio.ui.pages.classify_page import ClassifyPage

    p = ClassifyPage(session)
    qtbot.addWidget(p)
    yield p
    p.shutdown()


@pytest.fixture
def dropped(tmp_path):
    a, b, bad = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "broken.jpg"
    make_class_image(0, 32, seed=99).save(a)
    make_class_image(1, 32, seed=98).save(b)
    bad.write_bytes(b"this is not a jpeg")
    return a, b, bad


def _classified(qtbot, page, n):
    qtbot.waitUntil(lambda: len(page.predictions) == n and not page.busy(), timeout=60000)


def test_drop_two_images_and_a_corrupt_file(qtbot, page, dropped, tmp_path):
    a, b, bad = dropped
    event = drop_files(page, [a, b, bad])
    assert event.isAccepted()
    _classified(qtbot, page, 3)
    assert page.grid.count() == 3 and page.table_model.rowCount() == 3
    labels = {p.label for p in page.predictions.values() if not p.error}
    assert labels <= {"cat", "dog"} and len(labels) >= 1
    assert all(len(p.top) == 2 for p in page.predictions.values() if not p.error)  # 2 classes → top 2
    assert page.predictions[str(bad)].error
    texts = {page.grid.item(i).data(Qt.ItemDataRole.UserRole): page.grid.item(i).text() for i in range(3)}
    assert "cannot be read" in texts[str(bad)] and "%" in texts[str(a)]
    assert "could not be read" in page.status.text()

    # the error card says why and what to do
    page.grid.image_activated.emit(str(bad))
    assert "could not be read" in page.inspect.title.text()
    assert "PNG or JPEG" in page.inspect.bars.message()

    out = page.save_csv(tmp_path / "results.csv")
    rows = list(csv.reader(open(out, encoding="utf-8")))
    assert len(rows) == 4  # header + 3 images, the unreadable one included

    page.clear()
    assert page.grid.count() == 0 and page.table_model.rowCount() == 0 and not page.save_button.isEnabled()


def test_folder_drop_and_second_drop_reuse_the_loaded_model(qtbot, page, dropped, tmp_path):
    a, b, _ = dropped
    folder = tmp_path / "more"
    folder.mkdir()
    make_class_image(1, 32, seed=7).save(folder / "c.png")
    drop_files(page, [a])
    _classified(qtbot, page, 1)
    classifier = page.classifier
    assert classifier is not None
    drop_files(page, [folder, b])
    _classified(qtbot, page, 3)
    assert page.classifier is classifier  # loaded once, kept across drops
    assert str(folder / "c.png") in page.predictions


def test_gradcam_toggle_overlays_and_class_choice(qtbot, page, dropped):
    a, b, bad = dropped
    drop_files(page, [a, b, bad])
    _classified(qtbot, page, 3)
    before = page.grid.items_for(str(a))[0].icon().pixmap(64).toImage()
    page.heat_toggle.setChecked(True)
    qtbot.waitUntil(lambda: len(page.heatmaps) == 2 and not page.busy(), timeout=60000)
    original, heat = page.heatmaps[str(a)]
    assert heat.shape == original.shape[:2] and 0 <= heat.min() and heat.max() <= 1
    after = page.grid.items_for(str(a))[0].icon().pixmap(64).toImage()
    assert after != before  # the thumbnail now shows the overlay
    assert page.heat_class.count() == 3  # "its answer", cat, dog

    first = page.heatmaps[str(a)][1].copy()
    other = 1 - page.classifier.info.class_names.index(page.predictions[str(a)].label)
    page.heat_class.setCurrentIndex(other + 1)
    page._on_heat_class_activated(other + 1)
    qtbot.waitUntil(lambda: len(page.heatmaps) == 2 and not page.busy(), timeout=60000)
    assert page.heatmaps[str(a)][1].shape == first.shape

    page.heat_toggle.setChecked(False)
    plain = page.grid.items_for(str(a))[0].icon().pixmap(64).toImage()
    assert plain == before


def test_a_model_process_that_died_is_loaded_anew_on_the_next_drop(qtbot, page, dropped):
    a, b, _ = dropped
    drop_files(page, [a])
    _classified(qtbot, page, 1)
    first = page.classifier
    first._proc.kill()
    first._proc.wait(5)
    drop_files(page, [b])
    _classified(qtbot, page, 2)
    assert page.classifier is not first and page.classifier.alive and not first.alive
    assert not page.predictions[str(b)].error
