"""File → Runs… lists the runs made outside the app's runs folder that training remembered (issue 23)."""

from __future__ import annotations

import shutil

from cnn_studio.ui.runs_view import RunsView

from cnn_studio.core.paths import runs_dir
from cnn_studio.runs.registry import remember


def test_the_runs_view_lists_remembered_runs_and_leaves_out_vanished_ones(qtbot, studio_home, trained_run, tmp_path):
    shutil.copytree(trained_run, runs_dir() / "inside", ignore=shutil.ignore_patterns("run.lock"))
    for name in ("elsewhere", "vanished"):
        shutil.copytree(trained_run, tmp_path / "projects" / name, ignore=shutil.ignore_patterns("run.lock"))
        remember(tmp_path / "projects" / name)
    shutil.rmtree(tmp_path / "projects" / "vanished")
    view = RunsView()
    qtbot.addWidget(view)
    names = sorted(view.table.item(r, 0).text() for r in range(view.table.rowCount()))
    assert names == ["elsewhere", "inside"]
    assert "vanished" not in view.problem_label.text()
