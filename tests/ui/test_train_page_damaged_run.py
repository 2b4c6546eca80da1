"""Train step: a run whose config.json is damaged offers no Continue and says why (issue 23)."""

from __future__ import annotations

import shutil

from cnn_studio.ui.pages.train_page import TrainPage
from cnn_studio.ui.session import StudioSession


def test_a_damaged_config_hides_continue_and_names_the_file(qtbot, trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "config.json").write_text("{}", encoding="utf-8")
    session = StudioSession()
    page = TrainPage(session)
    qtbot.addWidget(page)
    session.set_run(run)  # it raised RunError from resume_point inside the run_changed slot
    assert not page.resume_button.isVisibleTo(page)
    assert "config.json" in page.status.text() and "continue" in page.status.text().lower()
    assert (run / "config.json").read_text(encoding="utf-8") == "{}"  # nothing rewritten
    opened = TrainPage(session)  # a page made for an already-damaged run opens too
    qtbot.addWidget(opened)
    assert not opened.resume_button.isVisibleTo(opened) and "config.json" in opened.status.text()
