"""A kill -9 in the middle of an export leaves a run folder that opens, evaluates and exports again (issue 8)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from cnn_studio.core.paths import RunLayout
from cnn_studio.evaluation.evaluate import evaluate_run
from cnn_studio.runs.run_folder import lock_holder, open_run

pytestmark = pytest.mark.slow


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def test_kill_9_while_exporting_leaves_a_folder_that_still_works(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("run.lock"))
    out = RunLayout(run).exports
    proc = subprocess.Popen([sys.executable, "-m", "cnn_studio", "export", str(run), "--format", "savedmodel",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and not _hidden(out):
        time.sleep(0.01)  # a hidden temporary appears while the SavedModel is being written and checked
    caught = proc.poll() is None and bool(_hidden(out))
    proc.kill()
    proc.wait(timeout=60)
    assert caught, "the export ended before it could be killed in the middle"

    assert lock_holder(run) is None  # the killed writer's lock does not hold the folder
    info = open_run(run)  # opening cleans what the killed writer left
    assert _hidden(out) == [] and info.class_names
    assert evaluate_run(run).accuracy >= 0.0
    again = subprocess.run([sys.executable, "-m", "cnn_studio", "export", str(run), "--format", "keras",
                            "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "model.keras").is_file()


def _ours(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".cnn-studio-export-"))


def test_a_later_export_removes_what_a_killed_one_left_in_the_users_folder_and_nothing_else(trained_run, tmp_path):
    """Issue 23: the temporaries of an export killed in a user's --out folder go at the next export; the
    user's own files (hidden ones too) stay."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("run.lock"))
    out = tmp_path / "deliveries"
    out.mkdir()
    mine = {"notes.txt": "mine", ".model.k3j_x9ab.keras": "also mine", ".saved_model.ab12cd34": "mine too"}
    for name, text in mine.items():
        (out / name).write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "cnn_studio", "export", str(run), "--format", "savedmodel",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and not _ours(out):
        time.sleep(0.01)
    caught = proc.poll() is None and bool(_ours(out))
    proc.kill()
    proc.wait(timeout=60)
    assert caught, "the export ended before it could be killed in the middle"
    assert _ours(out), "the killed export left its temporary"

    again = subprocess.run([sys.executable, "-m", "cnn_studio", "export", str(run), "--format", "keras",
                            "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _ours(out) == [], "the killed export's temporaries are gone"
    assert {n: (out / n).read_text() for n in mine} == mine, "the user's files are untouched"
    assert (out / "model.keras").is_file()
