"""Qt test fixtures: dialogs never block, and no test may leave an engine task running."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _non_blocking_dialogs(monkeypatch):
    """Message boxes are shown, not exec()'d, so a test that triggers one does not hang."""
    from cnn_studio.ui import messages

    monkeypatch.setattr(messages, "BLOCKING", False)
    yield


@pytest.fixture(autouse=True)
def _no_dangling_tasks(qapp):
    """Fail a test that leaves an EngineTask alive (napari's ``_dangling_qthreads`` idea)."""
    from cnn_studio.ui import workers

    before = set(workers.live_tasks())
    yield
    left = [t for t in workers.live_tasks() if t not in before]
    if left:
        ok = workers.cancel_all_and_wait(30000)
        names = ", ".join(t.name for t in left)
        pytest.fail(f"test left {len(left)} engine task(s) running: {names} (stopped: {ok})")


@pytest.fixture
def studio_home(tmp_path, monkeypatch):
    """App data (logs, runs, settings) in tmp_path instead of the user's home."""
    home = tmp_path / "studio_home"
    monkeypatch.setenv("CNN_STUDIO_HOME", str(home))
    return home


@pytest.fixture
def session(qtbot, trained_run):
    """A StudioSession whose current run is :func:`trained_run`."""
    from cnn_studio.ui.session import StudioSession

    s = StudioSession()
    s.set_run(trained_run)
    return s


@pytest.fixture
def offline_model_page(qtbot, tmp_path, monkeypatch):
    """A Model step with its own empty app data and Keras cache; its jobs run in this process's worker thread."""
    from cnn_studio.ui.pages.model_page import ModelPage
    from cnn_studio.ui.session import StudioSession

    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "app"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CNN_STUDIO_IN_PROCESS", "1")
    page = ModelPage(StudioSession())
    qtbot.addWidget(page)
    return page
