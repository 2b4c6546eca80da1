"""First-hour dead ends, each driven as a user meets it: a file dropped on the Data step says why it
cannot go there; the folder dialog opens at home or beside the last dataset; the Export step ticks
only formats whose packages are installed and says how to add the rest; thumbnail captions are not
clipped; the confusion matrix marks the chosen cell without the right-answer blue."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent


def _mime(paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def test_a_file_dragged_onto_the_data_drop_zone_says_why_it_cannot_be_dropped(qtbot, tmp_path):
    from cnn_studio.ui.widgets.drop_zone import DropZone

    zone = DropZone("Drop a dataset folder (or a .csv manifest) here", accept="folders")
    qtbot.addWidget(zone)
    note = tmp_path / "notes.txt"
    note.write_text("x")
    mime = _mime([note])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    zone.dragEnterEvent(enter)
    assert enter.isAccepted()  # taken, so the zone can explain
    assert "not a folder" in zone.label.text() and "one sub-folder per class" in zone.label.text()
    move = QDragMoveEvent(QPoint(6, 6), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)
    zone.dragMoveEvent(move)
    assert not move.isAccepted()  # the no-entry cursor stays: it really cannot be dropped
    zone.dragLeaveEvent(QDragLeaveEvent())
    assert zone.label.text() == "Drop a dataset folder (or a .csv manifest) here"

    folder_mime = _mime([tmp_path])  # the event does not own its mime data: keep it alive
    folder_enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, folder_mime,
                                   Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    zone.dragEnterEvent(folder_enter)
    assert folder_enter.isAccepted() and "not a folder" not in zone.label.text()


def test_folder_dialog_opens_at_home_then_beside_the_last_dataset(qtbot, tmp_path, monkeypatch, image_folder):
    from cnn_studio.ui.pages import data_page
    from cnn_studio.ui.session import StudioSession

    asked = []
    monkeypatch.setattr(data_page.QFileDialog, "getExistingDirectory",
                        staticmethod(lambda parent, title, folder="": asked.append(folder) or ""))
    page = data_page.DataPage(StudioSession())
    qtbot.addWidget(page)
    qtbot.mouseClick(page.choose_button, Qt.MouseButton.LeftButton)
    assert asked == [str(Path.home())]
    root = image_folder()
    with qtbot.waitSignal(page.check_finished, timeout=30000):
        page.open_dataset(root)
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=30000)
    qtbot.mouseClick(page.choose_button, Qt.MouseButton.LeftButton)
    assert asked[-1] == str(Path(root).parent)


def test_export_ticks_only_formats_whose_packages_are_installed(qtbot, monkeypatch):
    import importlib.util

    from cnn_studio.ui.pages.export_page import ExportPage
    from cnn_studio.ui.session import StudioSession

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    page = ExportPage(StudioSession())
    qtbot.addWidget(page)
    onnx = page.checks["onnx"]
    assert not onnx.isChecked() and not onnx.isEnabled()
    assert page.checks["keras"].isChecked()
    note = page.format_notes["onnx"].text()
    assert "Needs onnxruntime" in note and 'pip install "cnn-studio[onnx]"' in note
    assert page.format_notes["onnx"].wordWrap()  # the hint wraps instead of being cut off
    assert 'pip install "cnn-studio[onnx]"' in onnx.toolTip()


def test_export_with_everything_installed_ticks_keras_and_onnx(qtbot):
    from cnn_studio.ui.pages.export_page import ExportPage
    from cnn_studio.ui.session import StudioSession

    from cnn_studio.export.formats import FORMATS

    if FORMATS["onnx"].missing_packages():
        pytest.skip("ONNX packages not installed here")
    page = ExportPage(StudioSession())
    qtbot.addWidget(page)
    assert page.chosen_formats() == ["keras", "onnx"]
    assert "int8_full" in [page.quantization.itemData(i) for i in range(page.quantization.count())]


def test_thumbnail_captions_fit_their_cells(qtbot, tmp_path):
    from cnn_studio.ui.widgets.image_grid import ImageGrid
    from studio_testkit import make_class_image

    grid = ImageGrid(80)
    qtbot.addWidget(grid)
    path = tmp_path / "a_rather_long_file_name_from_a_scanner_0001.png"
    make_class_image(0, 32).save(path)
    caption = f"{path.name}\nis cat\nsaid dog 92%"
    grid.add_image(path, caption)
    need = grid.caption_height(caption)
    assert grid.gridSize().height() >= grid.thumb_size + need
    assert need >= 3 * grid.fontMetrics().lineSpacing()


def test_confusion_matrix_marks_the_chosen_cell_without_the_right_answer_colour(qtbot):
    from cnn_studio.ui.widgets.confusion_matrix import SELECTION_COLOUR, ConfusionMatrix, _blend

    matrix = ConfusionMatrix()
    qtbot.addWidget(matrix)
    matrix.resize(400, 300)
    matrix.set_matrix([[8, 2], [5, 5]], ["cat", "dog"])
    matrix.show()
    qtbot.waitExposed(matrix)
    rect = matrix.visualItemRect(matrix.item(1, 0))
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert matrix.item(1, 0).isSelected()
    image = matrix.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    inside = image.pixelColor(int((rect.left() + 12) * ratio), int((rect.top() + 12) * ratio))
    mistake = _blend(5 / 10, False)
    assert abs(inside.red() - mistake.red()) < 8 and abs(inside.blue() - mistake.blue()) < 8, inside.name()
    edge = image.pixelColor(int((rect.left() + 3) * ratio), int(rect.center().y() * ratio))
    assert edge.name() == SELECTION_COLOUR, edge.name()
