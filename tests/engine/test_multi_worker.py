"""The Train step's local workers: train_with_local_workers in a training child, chief + one extra worker."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split
from cnn_studio.training.multi_worker import AgreedStop, worker_log

TARGET = "cnn_studio.training.multi_worker:train_with_local_workers"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """App data (the workers' logs) in tmp_path."""
    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _grandchildren() -> list[int]:
    """This test's training child's own children (the extra workers), from /proc."""
    def parent(pid):
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None

    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    children = {p for p in pids if parent(p) == os.getpid()}
    return [p for p in pids if parent(p) in children]


def _epochs(run):
    with open(RunLayout(run).history, newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_every_worker_stops_at_the_batch_the_chief_chose(tmp_path):
    own = CancelToken()
    chief, worker = AgreedStop(tmp_path / "stop", own=own), AgreedStop(tmp_path / "stop")
    assert not chief.at_train_batch() and not worker.at_train_batch()  # batch 1
    own.cancel()
    assert not chief.cancelled  # not before the agreed batch
    assert not chief.at_train_batch() and not worker.at_train_batch()  # batch 2: the chief picks batch 3
    assert chief.at_train_batch() and worker.at_train_batch()  # batch 3, on both
    assert chief.cancelled and worker.cancelled


@pytest.mark.slow
def test_two_local_workers_from_one_job(image_folder, tiny_config, tmp_path, home):
    import keras

    index = scan(image_folder(per_class=8, size=16))
    split = make_split(index, val_fraction=0.25, seed=0)
    config = tiny_config.replace(image_size=16, epochs=2, workers=2)
    run = tmp_path / "run"
    seen: list = []
    result = run_job(TARGET, config, split, str(run), sink=seen.append, label="training",
                     log_path=tmp_path / "chief.log")

    kinds = [type(e).__name__ for e in seen]
    assert "Training with 2 workers on this computer (MultiWorkerMirroredStrategy)." in \
        [e.text for e in seen if isinstance(e, ev.LogMessage)]
    assert {"TrainStarted", "EpochEnded", "TrainFinished"} <= set(kinds)
    assert [e.epoch for e in seen if isinstance(e, ev.EpochEnded)] == [0, 1]
    assert result.epochs_done == 2
    assert _epochs(run) == [0, 1]  # history written once, by the chief
    layout = RunLayout(run)
    assert read_json(layout.state)["status"] == "completed"
    assert read_json(layout.config)["workers"] == 2
    assert keras.saving.load_model(layout.best_model).output_shape == (None, 2)
    assert worker_log(run, 1).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chief.log", "data", "home", "run"]


@pytest.mark.slow
def test_stop_ends_every_worker_and_keeps_the_run_resumable(image_folder, tiny_config, tmp_path, home):
    index = scan(image_folder(per_class=8, size=16))
    split = make_split(index, val_fraction=0.25, seed=0)
    config = tiny_config.replace(image_size=16, epochs=30, batch_size=2, workers=2)
    token = CancelToken()

    def sink(e):
        if isinstance(e, ev.BatchEnded):
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(TARGET, config, split, str(tmp_path / "run"), sink=sink, cancel=token, label="training",
                log_path=tmp_path / "chief.log")
    state = read_json(RunLayout(tmp_path / "run").state)
    assert state["status"] == "cancelled"
    assert state["epochs_done"] < 30 and RunLayout(tmp_path / "run").last_model.exists()
    assert not _grandchildren()


@pytest.mark.slow
def test_a_dead_worker_fails_the_run_naming_it_and_its_log(image_folder, tiny_config, tmp_path, home):
    index = scan(image_folder(per_class=8, size=16))
    split = make_split(index, val_fraction=0.25, seed=0)
    config = tiny_config.replace(image_size=16, epochs=30, batch_size=2, workers=2)
    killed: list[int] = []

    def sink(e):
        if isinstance(e, ev.BatchEnded) and not killed:
            for pid in _grandchildren():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    with pytest.raises(RunError) as err:
        run_job(TARGET, config, split, str(tmp_path / "run"), sink=sink, label="training",
                log_path=tmp_path / "chief.log")
    assert killed
    assert "Worker 1 of 2" in err.value.message and str(worker_log(tmp_path / "run", 1)) in err.value.hint
