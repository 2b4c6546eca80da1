"""Issue 8: every run is listed with how it ended (`cnn-studio runs`), and can be deleted unless it runs."""

from __future__ import annotations

import json
import shutil

import pytest

from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.listing import delete_run, list_runs, summarize


@pytest.fixture
def runs_folder(trained_run, tmp_path):
    folder = tmp_path / "runs"
    for name in ("done", "stopped", "crashed", "damaged", "busy"):
        shutil.copytree(trained_run, folder / name, ignore=shutil.ignore_patterns("run.lock"))
    for name, status in (("stopped", "cancelled"), ("crashed", "running"), ("busy", "running")):
        layout = RunLayout(folder / name)
        write_json(layout.state, {**read_json(layout.state), "status": status})
    (folder / "damaged" / "state.json").write_bytes(b'{"status": "compl')
    (folder / "not a run").mkdir()
    return folder


def test_every_run_is_listed_with_its_status_and_facts(runs_folder, trained_run):
    from test_run_integrity import _hold_lock

    child = _hold_lock(runs_folder / "busy")
    try:
        runs = {r.name: r for r in list_runs(runs_folder)}
    finally:
        child.kill()
        child.wait()
    assert set(runs) == {"done", "stopped", "crashed", "damaged", "busy"}
    assert {n: r.status for n, r in runs.items()} == {"done": "finished", "stopped": "stopped", "crashed": "crashed",
                                                      "damaged": "damaged", "busy": "running"}
    done = runs["done"]
    assert done.backbone == "small_cnn" and done.epochs_done == done.total_epochs == 2
    assert done.best_val_accuracy is not None and 0 <= done.best_val_accuracy <= 1
    assert done.size_bytes > 10_000 and done.date and done.has_model
    assert done.dataset == str(trained_run.parent / "data")
    assert "state.json" in runs["damaged"].problem
    assert f"process {child.pid}" in runs["busy"].problem
    assert summarize(trained_run).status == "finished"
    assert [r.name for r in list_runs(runs_folder / "done")] == ["done"]  # a run folder itself


def test_cli_runs_prints_a_table_and_json(runs_folder, capsys):
    from cnn_studio.cli import main

    assert main(["runs", str(runs_folder)]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "finished" in out and "small_cnn" in out and "crashed" in out
    assert main(["runs", str(runs_folder), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in listed} >= {"done", "stopped"}
    assert {"status", "dataset", "backbone", "epochs_done", "best_val_accuracy", "date", "size_bytes"} <= set(listed[0])
    assert main(["runs", str(runs_folder / "nowhere")]) == 2


def test_delete_refuses_a_running_run_and_removes_a_finished_one(runs_folder):
    from test_run_integrity import _hold_lock

    child = _hold_lock(runs_folder / "busy")
    try:
        with pytest.raises(RunError, match="in use"):
            delete_run(runs_folder / "busy")
    finally:
        child.kill()
        child.wait()
    delete_run(runs_folder / "done")
    assert not (runs_folder / "done").exists()
    with pytest.raises(RunError, match="not a run folder"):
        delete_run(runs_folder / "not a run")
