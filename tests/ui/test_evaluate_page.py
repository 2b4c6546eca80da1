"""Evaluate page driven like a user, on a real tiny trained run (small_cnn, 2 classes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.slow


@pytest.fixture
def page(qtbot, session):
    from cnn_studio.ui.pages.evaluate_page import EvaluatePage

    p = EvaluatePage(session)
    qtbot.addWidget(p)
    return p


def _wait(qtbot, task, timeout=60000):
    assert task is not None
    with qtbot.waitSignal(task.signals.finished, timeout=timeout):
        pass


def test_metrics_table_summary_and_confusion_cell_images(qtbot, page, session):
    _wait(qtbot, page.evaluate(force=True))
    m = page.metrics
    assert m is not None and (session.run_dir / "metrics.json").exists()
    model = page.per_class.model()
    assert model.rowCount() == 2
    assert {model.index(r, 0).data() for r in range(2)} == {"cat", "dog"}
    assert sum(int(model.index(r, 5).data()) for r in range(2)) == m.n_images
    assert f"right {m.accuracy:.0%} of the time" in page.summary.text()
    assert page.matrix.rowCount() == 2 and page.matrix.columnCount() == 2
    assert page.top_losses.count() == len(m.top_losses)

    for true, pred in ((0, 0), (1, 0)):
        count = m.confusion[true][pred]
        qtbot.mouseClick(page.matrix.viewport(), Qt.MouseButton.LeftButton,
                         pos=page.matrix.visualItemRect(page.matrix.item(true, pred)).center())
        assert page.cell_images.count() == count
        assert f"{count} images of '{m.class_names[true]}'" in page.cell_label.text()
        truth = {p["path"] for p in m.predictions if p["true"] == true and p["pred"] == pred}
        assert set(page.cell_images.paths()) == truth

    _wait(qtbot, page.evaluate(force=True))  # new results: the cell shown belonged to the old ones
    assert page.cell_images.count() == 0 and page.cell_label.text() == "Click a cell to see its images."


def test_loads_saved_metrics_instead_of_evaluating_again(qtbot, page, session):
    _wait(qtbot, page.evaluate(force=True))
    path = session.run_dir / "metrics.json"
    data = json.loads(path.read_text())
    data["accuracy"] = 0.123  # a marker only the saved file has
    path.write_text(json.dumps(data))
    try:
        _wait(qtbot, page.evaluate(force=False))
        assert page.metrics.accuracy == pytest.approx(0.123)
        assert "right 12% of the time" in page.summary.text()
    finally:
        _wait(qtbot, page.evaluate(force=True))  # leave a true metrics.json for the other tests


def test_showing_the_page_evaluates_automatically(qtbot, page):
    page.show()
    qtbot.waitUntil(lambda: page.metrics is not None and not page._busy(), timeout=60000)
    assert page.per_class.model().rowCount() == 2


def test_architecture_tab_lists_layers_and_filters(qtbot, page):
    _wait(qtbot, page.load_architecture())
    assert page.arch_table.rowCount() > 5
    assert "parameters" in page.arch_text.text()
    assert not page.filters.pixmap().isNull()


def test_robustness_tab_table_plot_and_saved_report(qtbot, page, session):
    _wait(qtbot, page.run_robustness(force=True), timeout=120000)
    report = page.robustness
    assert report is not None and (session.run_dir / "robustness.json").exists()
    assert page.robust_table.rowCount() == len(report["rows"]) > 0
    curves = page.robust_plot.getPlotItem().listDataItems()
    assert len(curves) == len({r["perturbation"] for r in report["rows"]})
    assert "unchanged images" in page.robust_text.text()
    assert page.robust_examples.count() == len(report["examples"])
    for path in page.robust_examples.paths():  # stored relative to the run; shown from the run folder
        assert Path(path).is_absolute() and Path(path).exists(), path
