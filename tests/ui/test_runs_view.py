"""Issue 8: the Runs view lists every run; opening one makes it the session's run; the last run is offered again."""

from __future__ import annotations

import shutil

from cnn_studio.ui.main_window import MainWindow
from cnn_studio.ui.runs_view import COLUMNS, RunsView
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QSettings

from cnn_studio.core.paths import RunLayout, runs_dir


def _runs(trained_run, names=("first", "second")):
    for name in names:
        shutil.copytree(trained_run, runs_dir() / name, ignore=shutil.ignore_patterns("run.lock"))
    return [runs_dir() / n for n in names]


def _window(qtbot, tmp_path):
    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    return w


def test_the_view_lists_every_run_with_its_facts(qtbot, studio_home, trained_run, tmp_path):
    first, _second = _runs(trained_run)
    extra = tmp_path / "elsewhere"
    shutil.copytree(trained_run, extra / "third", ignore=shutil.ignore_patterns("run.lock"))
    view = RunsView([extra])
    qtbot.addWidget(view)
    assert view.table.rowCount() == 3
    headers = [view.table.horizontalHeaderItem(i).text() for i in range(view.table.columnCount())]
    assert headers == list(COLUMNS)
    row = {view.table.item(r, 0).text(): [view.table.item(r, c).text() for c in range(len(COLUMNS))]
           for r in range(3)}
    assert row["first"][2] == "small_cnn" and row["first"][3] == "finished" and row["first"][4] == "2 / 2"
    assert "% (" in row["first"][5] and row["first"][7].endswith("MB")
    assert view.select(first)
    with qtbot.waitSignal(view.run_opened) as opened:
        view.open_button.click()
    assert opened.args == [first]


def test_delete_asks_and_removes_the_run(qtbot, studio_home, trained_run, monkeypatch):
    first, _ = _runs(trained_run)
    view = RunsView()
    qtbot.addWidget(view)
    view.use_trash = False
    view.select(first)
    monkeypatch.setattr(view, "ask_delete", lambda run: False)
    assert not view.delete_selected() and first.exists()
    monkeypatch.setattr(view, "ask_delete", lambda run: True)
    assert view.delete_selected() and not first.exists()
    assert view.table.rowCount() == 1


def test_file_runs_opens_a_run_for_every_step(qtbot, studio_home, trained_run, tmp_path):
    first, _ = _runs(trained_run)
    w = _window(qtbot, tmp_path)
    assert w.runs_action in w.menuBar().actions()[0].menu().actions()
    w.runs_action.trigger()  # as the menu and Ctrl+Shift+R do (triggered passes `checked`)
    view = w.runs_view
    assert view is not None and view.isVisible()
    view.select(first)
    view.open_selected()
    assert w.session.run_dir == first
    assert w.settings.last_run() == first.resolve()
    assert w.current_step() == 3  # Evaluate
    assert all(w.step_enabled(i)[0] for i in (3, 4, 5))


def test_after_a_crash_the_last_run_is_offered_again(qtbot, studio_home, trained_run, tmp_path):
    first, _ = _runs(trained_run)
    w = _window(qtbot, tmp_path)
    w.settings.set_last_run(first)  # what the app remembered before it died
    w.offer_runs_on_start()
    view = w.runs_view
    assert view is not None and view.isVisible() and view.reopen_button.isVisible()
    assert first.name in view.banner.text()
    view.reopen_button.click()
    assert w.session.run_dir == first and not view.reopen_button.isVisible()


def test_no_runs_no_offer(qtbot, studio_home, tmp_path):
    w = _window(qtbot, tmp_path)
    w.offer_runs_on_start()
    assert w.runs_view is None
    assert not RunLayout(runs_dir()).is_run()


def test_a_folder_named_on_the_command_line_is_not_covered_by_the_runs_view(qtbot, studio_home, trained_run,
                                                                             image_folder):
    """Issue 23: `cnn-studio FOLDER` opens FOLDER; the "reopen the last run" offer would hide it."""
    from cnn_studio.ui import workers
    from cnn_studio.ui.app import create_window
    from PySide6.QtWidgets import QApplication

    first, _ = _runs(trained_run)
    folder = image_folder()
    shown = []
    for path in (None, str(folder)):
        w = create_window(path, open_sample=False)
        qtbot.addWidget(w)
        w.settings.set_last_run(first)
        w.show()
        qtbot.waitUntil(lambda: not workers.live_tasks(), timeout=60_000)
        QApplication.processEvents()  # the offer is queued from showEvent
        shown.append(w.runs_view is not None and w.runs_view.isVisible())
        w.close()
    assert shown == [True, False], "offered when nothing was named, not when a folder was"


def test_the_kept_models_accuracy_is_listed_and_a_chance_level_run_is_amber(qtbot, studio_home, trained_run):
    """Issue 23: the list showed the best epoch's val. accuracy (83.3%) while Evaluate said 75.0% for the model
    kept, and a run no better than guessing as a green "finished"."""
    from cnn_studio.ui.runs_view import AMBER, STATUS_COLOURS

    from cnn_studio.core.fsutil import read_json, write_json

    evaluated, guessing = _runs(trained_run, ("evaluated", "guessing"))
    for run in (evaluated, guessing):
        # the shared run may have been evaluated by the page tests: "guessing" is a run only reviewed at the end of
        # training (its review.json is the kept model's figure), "evaluated" gets its own metrics.json below
        RunLayout(run).metrics.unlink(missing_ok=True)
        RunLayout(run).history.write_text("epoch,loss,val_accuracy,val_loss\n0,0.7,0.5,0.7\n1,0.5,0.8333,0.6\n")
    write_json(RunLayout(evaluated).metrics, {"accuracy": 0.75, "subset": "test", "n_images": 12,
                                              "chance": {"verdict": "better", "message": "Better than guessing."}})
    review = read_json(RunLayout(guessing).review)
    review["chance"].update(verdict="not_better", accuracy=0.5, n=6,
                            message="The model is not better than guessing (50% with 2 classes).")
    write_json(RunLayout(guessing).review, review)
    view = RunsView()
    qtbot.addWidget(view)
    col = COLUMNS.index("Kept model's accuracy")
    rows = {view.table.item(r, 0).text(): r for r in range(view.table.rowCount())}
    cell = view.table.item(rows["evaluated"], col)
    assert cell.text() == "75.0% (12 test images)", "the kept model's figure, not the best epoch's 83.3%"
    status = view.table.item(rows["evaluated"], 3)
    assert status.text() == "finished" and status.foreground().color().name() == STATUS_COLOURS["finished"]
    status = view.table.item(rows["guessing"], 3)
    assert status.text() == "finished · not better than guessing"
    assert status.foreground().color().name() == AMBER and "not better than guessing" in status.toolTip()
    assert view.table.item(rows["guessing"], col).text() == "50.0% (6 val images)"
