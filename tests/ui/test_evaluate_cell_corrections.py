"""Evaluate step: from a confusion-matrix cell, relabel / exclude / keep an image (keys and buttons), undo,
saved in the review queue's corrections file; leaving the step reads the dataset again with the new labels."""

from __future__ import annotations

import csv
import shutil

import pytest
from cnn_studio.ui.main_window import MainWindow
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QSettings, Qt

from cnn_studio.labels.corrections import default_path

pytestmark = pytest.mark.slow


def _click(qtbot, view, rect) -> None:
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return {r["path"]: r["new_label"] for r in csv.DictReader(f)}


def test_cell_view_corrects_labels_with_undo_and_the_data_step_reads_them(qtbot, tmp_path, studio_home, trained_run):
    w = MainWindow(settings=StudioSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    root = trained_run.parent / "data"  # the run's own dataset
    with qtbot.waitSignal(w.data_page.check_finished, timeout=20000):
        w.data_page.open_dataset(root)
    run = shutil.copytree(trained_run, tmp_path / "run")  # Evaluate writes metrics.json: the shared run stays as it is
    assert w.open_run(run) and w.go_to(3)
    page = w.evaluate_page
    qtbot.waitUntil(lambda: page.metrics is not None and not page._busy(), timeout=60000)
    page.tabs.setCurrentIndex(1)
    m = page.metrics
    true, pred = next((t, p) for t in range(2) for p in range(2) if m.confusion[t][p] >= 2)
    given, other = m.class_names[true], m.class_names[1 - true]
    _click(qtbot, page.matrix, page.matrix.visualItemRect(page.matrix.item(true, pred)))
    bar = page.label_actions
    assert not bar.keep_button.isEnabled() and "Click an image" in bar.state.text()
    assert "next training uses the corrected labels" in bar.note.text()

    grid = page.cell_images
    first, second = grid.paths()[:2]
    _click(qtbot, grid, grid.visualItemRect(grid.item(0)))
    assert bar.path == first and bar.keep_button.isEnabled() and given in bar.state.text()
    grid.setFocus()
    qtbot.keyClick(grid, Qt.Key.Key_K)  # keep: saved, marked, on to the next image
    csv_path = default_path(root)
    assert _rows(csv_path) == {first: "kept"}
    assert "✓" in grid.item(0).text() and bar.path == second
    qtbot.keyClick(grid, Qt.Key.Key_E)
    assert _rows(csv_path)[second] == "excluded" and "✕" in grid.item(1).text()
    qtbot.keyClick(grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the exclusion
    assert second not in _rows(csv_path) and bar.path == second and "✕" not in grid.item(1).text()
    assert bar.target.currentText() == other
    qtbot.mouseClick(bar.relabel_button, Qt.MouseButton.LeftButton)
    assert _rows(csv_path) == {first: "kept", second: other}
    assert "✎" in grid.item(1).text() and "1 relabelled" in bar.note.text()

    with qtbot.waitSignal(w.data_page.check_finished, timeout=20000):
        assert w.go_to(2)  # leaving Evaluate: the Data step reads the dataset again
    labels = {r.path: w.session.index.class_names[r.label] for r in w.session.index.records}
    assert labels[second] == other and labels[first] == given
    assert w.session.split.info["corrections"]["relabelled"] == 1  # what the next training splits and learns
    qtbot.waitUntil(lambda: not w.data_page.busy and w.data_page._thumb_task is None, timeout=20000)
