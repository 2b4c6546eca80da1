"""Runs made with ``train --out ELSEWHERE`` are remembered and listed by ``cnn-studio runs`` (issue 23)."""

from __future__ import annotations

import json
import shutil

import pytest

from cnn_studio.runs.listing import list_runs
from cnn_studio.runs.registry import registry_path, remember, remembered_runs


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CNN_STUDIO_HOME", str(home))
    return home


def test_remembered_runs_are_listed_and_vanished_ones_dropped_silently(home, trained_run, tmp_path, capsys):
    from cnn_studio.cli import main

    inside = home / "runs" / "inside"
    shutil.copytree(trained_run, inside, ignore=shutil.ignore_patterns("run.lock"))
    elsewhere = tmp_path / "projects" / "x-ray" / "run1"
    gone = tmp_path / "usb" / "run2"
    for run in (elsewhere, gone):
        shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("run.lock"))
        remember(run)
    remember(elsewhere)  # once is enough
    assert registry_path().read_text(encoding="utf-8").splitlines() == [str(elsewhere), str(gone)]
    shutil.rmtree(gone)
    assert remembered_runs() == [elsewhere]
    assert {r.name for r in list_runs()} == {"inside", "run1"}
    assert {r.name for r in list_runs(inside.parent / "nothing-here")} == set()  # a named folder: only it
    assert main(["runs", "--json"]) == 0
    captured = capsys.readouterr()
    assert {r["path"] for r in json.loads(captured.out)} == {str(inside), str(elsewhere)}
    assert "run2" not in captured.err


@pytest.mark.slow
def test_a_run_trained_with_out_elsewhere_is_found_by_runs(home, image_folder, tmp_path, capsys):
    from cnn_studio.cli import main

    data = image_folder(per_class=6)
    out = tmp_path / "elsewhere" / "my-run"
    assert main(["train", str(data), "--backbone", "small_cnn", "--weights", "none", "--image-size", "32",
                 "--epochs", "1", "--batch-size", "8", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["runs"]) == 0
    listed = capsys.readouterr().out
    assert "my-run" in listed and str(data) in listed
