"""Export page: keras + TFLite exports are written, verified and listed, with the model card."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.slow


@pytest.fixture
def page(qtbot, session):
    from cnn_studio.ui.pages.export_page import ExportPage

    p = ExportPage(session)
    qtbot.addWidget(p)
    return p


def test_exports_keras_and_tflite_verified(qtbot, page, tmp_path):
    assert page.folder.text().endswith("export")  # a default next to the run
    for key, box in page.checks.items():
        box.setChecked(key in ("keras", "tflite"))
    page.quantization.setCurrentIndex(page.quantization.findData("float16"))
    page.folder.setText(str(tmp_path / "out"))
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert not page.export_button.isEnabled()  # no double export while one runs
    qtbot.waitUntil(lambda: page.table.rowCount() == 2 and page.export_button.isEnabled(), timeout=120000)
    cells = [[page.table.item(r, c).text() for c in range(page.table.columnCount())] for r in range(2)]
    assert all(row[2].startswith("✓") for row in cells), cells
    assert any("float16" in row[0] for row in cells)
    assert (tmp_path / "out" / "model.keras").exists() and (tmp_path / "out" / "model_float16.tflite").exists()
    assert [row[1] for row in cells] == ["model.keras", "model_float16.tflite"]
    assert "2 of 2" in page.status.text() and page.open_button.isEnabled()
    assert page.card.toPlainText().strip()
    assert [rec.fmt for rec in page.records] == ["keras", "tflite"]
    # the table fits its pane: the notes column takes what is left and wraps, nothing runs off to the right
    from PySide6.QtWidgets import QHeaderView

    header = page.table.horizontalHeader()
    assert header.sectionResizeMode(5) == QHeaderView.ResizeMode.Stretch
    assert header.sectionResizeMode(0) == QHeaderView.ResizeMode.ResizeToContents


def test_nothing_ticked_says_what_to_do(qtbot, page):
    for box in page.checks.values():
        box.setChecked(False)
    assert page.export() is None
    assert "Tick at least one format" in page.status.text()


def test_without_a_run_export_is_off(qtbot):
    from cnn_studio.ui.pages.export_page import ExportPage
    from cnn_studio.ui.session import StudioSession

    page = ExportPage(StudioSession())
    qtbot.addWidget(page)
    assert not page.export_button.isEnabled() and "Train a model first" in page.status.text()
