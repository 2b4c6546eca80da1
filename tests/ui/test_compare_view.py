"""Issue 8 item 4: select two or more runs in the Runs view → a compare window."""

from __future__ import annotations

import json
import shutil

from cnn_studio.ui.compare_view import DIFF_BACKGROUND, CompareView
from cnn_studio.ui.runs_view import RunsView
from PySide6.QtCore import QItemSelectionModel

from cnn_studio.core.paths import runs_dir


def _runs(trained_run):
    out = []
    for name, lr in (("first", None), ("second", 0.01)):
        dest = runs_dir() / name
        shutil.copytree(trained_run, dest, ignore=shutil.ignore_patterns("run.lock"))
        if lr is not None:
            cfg = json.loads((dest / "config.json").read_text(encoding="utf-8"))
            cfg["learning_rate"] = lr
            (dest / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
        out.append(dest)
    return out


def test_selecting_two_runs_opens_a_compare_window(qtbot, studio_home, trained_run):
    _runs(trained_run)
    view = RunsView()
    qtbot.addWidget(view)
    assert view.table.rowCount() == 2
    view.table.selectRow(0)
    assert not view.compare_button.isEnabled()  # one run: nothing to compare
    index = view.table.model().index(1, 0)
    view.table.selectionModel().select(index, QItemSelectionModel.SelectionFlag.Select
                                       | QItemSelectionModel.SelectionFlag.Rows)
    assert len(view.selected_runs()) == 2 and view.compare_button.isEnabled()
    assert not view.open_button.isEnabled()  # open one run at a time
    view.compare_button.click()
    assert len(view.compare_views) == 1
    compare = view.compare_views[0]
    qtbot.addWidget(compare)
    assert {compare.metrics_table.horizontalHeaderItem(i).text() for i in range(2)} == {"first", "second"}


def test_the_compare_window_overlays_curves_and_highlights_differences(qtbot, studio_home, trained_run):
    first, second = _runs(trained_run)
    view = CompareView([first, second])
    qtbot.addWidget(view)
    assert ("first", "val_accuracy") in view.curves and ("second", "val_loss") in view.curves
    xs, ys = view.curves[("first", "val_accuracy")].getData()
    assert list(xs) == [1, 2] and len(ys) == 2
    assert "learning_rate" in view.highlighted_settings()
    assert "backbone" not in view.highlighted_settings()
    rows = [view.settings_table.verticalHeaderItem(r).text() for r in range(view.settings_table.rowCount())]
    assert "backbone" in rows
    view.only_differences.setChecked(True)
    rows = [view.settings_table.verticalHeaderItem(r).text() for r in range(view.settings_table.rowCount())]
    assert "learning_rate" in rows and "backbone" not in rows
    lr_row = rows.index("learning_rate")
    assert view.settings_table.item(lr_row, 1).text() == "0.0100"
    assert view.settings_table.item(lr_row, 0).background().color().name() == DIFF_BACKGROUND
    metric_rows = [view.metrics_table.verticalHeaderItem(r).text() for r in range(view.metrics_table.rowCount())]
    assert {"best val accuracy", "accuracy", "best.keras", "last.keras", "size on disk"} <= set(metric_rows)


def test_a_size_tooltip_names_each_checkpoint(qtbot, studio_home, trained_run):
    _runs(trained_run)
    view = RunsView()
    qtbot.addWidget(view)
    tip = view.table.item(0, 7).toolTip()
    assert "best.keras" in tip and "last.keras" in tip and "optimizer" in tip
