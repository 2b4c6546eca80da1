"""A kill -9 in the middle of an export leaves a run folder that opens, evaluates and exports again (issue 8)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from cnn_studio.evaluation import evaluate_run
from cnn_studio.paths import RunLayout
from cnn_studio.training.run_folder import lock_holder, open_run

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
