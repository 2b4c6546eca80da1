"""Issue 23: every key window and dialog fits a 1280×800 screen (its title bar and borders included), whatever
it shows: each step of the main window with a run open, the label review with many classes, the Runs list and
the comparison of two runs, About this computer."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from PySide6.QtCore import QSettings, QSize
from PySide6.QtWidgets import QApplication, QWidget
from studio_testkit import planted_issues

from cnn_studio.core.paths import runs_dir


def fits(widget: QWidget) -> QSize:
    from cnn_studio.ui.widgets.screen_fit import FRAME, SMALLEST_SCREEN

    QApplication.processEvents()
    need, room = widget.minimumSizeHint(), SMALLEST_SCREEN - FRAME
    assert need.width() <= room.width() and need.height() <= room.height(), \
        f"{type(widget).__name__} needs {need.width()}×{need.height()}; a 1280×800 screen has {room.width()}×{room.height()}"
    return need


def test_every_step_of_the_main_window_fits(qtbot, studio_home, session, tmp_path):
    from cnn_studio.ui.main_window import MainWindow
    from cnn_studio.ui.settings import StudioSettings

    w = MainWindow(session, StudioSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w)
    w.skip_runs_offer()
    w.show()
    for step in range(w.stack.count()):
        w.stack.setCurrentIndex(step)
        fits(w)


def test_label_review_with_many_classes_fits(qtbot, tmp_path):
    from cnn_studio.ui.review_queue import ReviewQueue

    from cnn_studio.labels.corrections import Corrections

    issues = planted_issues(tmp_path / "data")
    more = tuple(f"class {i}" for i in range(4))  # one row of nearest images per class
    issues = dataclasses.replace(issues, class_names=issues.class_names + more, suspects=tuple(
        dataclasses.replace(s, neighbours={**s.neighbours, **dict.fromkeys(more, s.neighbours["cat"])})
        for s in issues.suspects))
    dlg = ReviewQueue(issues, Corrections(path=tmp_path / "corrections.csv"))
    qtbot.addWidget(dlg)
    dlg.show()
    fits(dlg)
    assert dlg.relabel_button.isVisible() and dlg.next_button.isVisible()


def test_runs_compare_and_computer_dialogs_fit(qtbot, studio_home, trained_run, monkeypatch):
    from cnn_studio.ui.computer_dialog import ComputerDialog
    from cnn_studio.ui.runs_view import RunsView

    for name in ("first", "second"):
        shutil.copytree(trained_run, runs_dir() / name, ignore=shutil.ignore_patterns("run.lock"))
    view = RunsView()
    qtbot.addWidget(view)
    view.show()
    fits(view)
    view.table.selectAll()
    compare = view.compare_selected()
    assert compare is not None
    fits(compare)
    dialog = ComputerDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    fits(dialog)


@pytest.mark.parametrize("asked", [(5000, 5000), (300, 200)])
def test_a_window_is_never_made_larger_than_its_screen(qtbot, asked):
    from cnn_studio.ui.widgets.screen_fit import resize_to_fit, room

    w = QWidget()
    qtbot.addWidget(w)
    size = resize_to_fit(w, *asked)
    free = room(w)
    assert size == QSize(min(asked[0], free.width()), min(asked[1], free.height())) and w.size() == size
