"""Help → About this computer shows the doctor report; a known-crashing PySide6 is named at start."""

from __future__ import annotations

import pytest
from cnn_studio.ui.app import warn_known_bad_versions
from cnn_studio.ui.computer_dialog import ComputerDialog
from cnn_studio.ui.main_window import MainWindow
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from cnn_studio.computer import doctor


def _window(qtbot, tmp_path):
    w = MainWindow(settings=StudioSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w)
    return w


def test_dialog_lists_every_check_and_copies_the_text(qtbot, studio_home):
    report = doctor.run_doctor(gpu=False, qt=False)
    dialog = ComputerDialog()
    qtbot.addWidget(dialog)
    dialog.show_report(report)
    assert dialog.table.rowCount() == len(report.checks)
    names = [dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())]
    assert names == [c.name for c in report.checks]
    assert "Everything CNN Studio needs works" in dialog.summary.text()
    assert dialog.copy_button.isEnabled()
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == report.to_text()


def test_a_problem_is_shown_with_what_to_do(qtbot):
    report = doctor.DoctorReport([doctor.Check("Python", doctor.OK, "fine"),
                                  doctor.Check("System libraries for Qt", doctor.PROBLEM, "libxcb-cursor.so.0 missing",
                                               "sudo apt-get install libxcb-cursor0")])
    dialog = ComputerDialog()
    qtbot.addWidget(dialog)
    dialog.show_report(report)
    assert "does not work" in dialog.summary.text()
    assert dialog.table.item(1, 0).text().endswith("problem")
    assert dialog.table.item(1, 3).text() == "sudo apt-get install libxcb-cursor0"


@pytest.mark.slow
def test_help_menu_runs_the_real_check_in_a_child_process(qtbot, tmp_path, studio_home):
    w = _window(qtbot, tmp_path)
    assert w.computer_action.text() == "About this &computer…"
    w.computer_action.trigger()
    dialogs = [d for d in w.findChildren(ComputerDialog)]
    assert len(dialogs) == 1
    dialog = dialogs[0]
    assert dialog.busy.isVisible() or dialog.report is not None  # opens at once, fills in later
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=180000)
    names = [c.name for c in dialog.report.checks]
    assert {"Python", "Versions", "GPU", "Runs folder"} <= set(names)
    assert dialog.report.facts["runs_folder"] == str(studio_home / "runs")
    assert dialog.table.rowCount() == len(names)
    dialog.close()


def test_known_crashing_pyside_is_named_at_start(qtbot, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "package_versions", lambda: {"PySide6-Essentials": "6.12.0", "pyqtgraph": "0.14.0"})
    monkeypatch.setattr(doctor, "python_version", lambda: (3, 11))
    w = _window(qtbot, tmp_path)
    w.show()
    problems = warn_known_bad_versions(w)
    assert [p.name for p in problems] == ["PySide6 version"]
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "known to crash" in boxes[0].text() and "<6.12" in boxes[0].text()
    assert "none_dealloc" in w.statusBar().currentMessage()
    assert "PySide6-Essentials>=6.9,<6.12" in capsys.readouterr().err
    boxes[0].close()


def test_tested_versions_start_without_a_warning(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "package_versions", lambda: {"PySide6-Essentials": "6.11.3", "pyqtgraph": "0.14.0"})
    w = _window(qtbot, tmp_path)
    assert warn_known_bad_versions(w) == []
    assert not [b for b in w.findChildren(QMessageBox) if b.isVisible()]
