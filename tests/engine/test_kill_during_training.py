"""A kill -9 in the middle of training leaves a run folder that `resume` continues and `evaluate` opens (issue 8)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnn_studio.core.errors import RunError
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.run_folder import lock_holder, open_run, resume_point

pytestmark = pytest.mark.slow


def _epochs_saved(layout: RunLayout) -> int:
    try:
        return int(json.loads(layout.state.read_text(encoding="utf-8")).get("epochs_done", 0))
    except (OSError, ValueError):
        return 0


def test_kill_9_while_training_then_resume_and_evaluate(tmp_path, image_folder):
    data = image_folder(classes=("a", "b"), per_class=12, size=32)
    run = tmp_path / "run"
    layout = RunLayout(run)
    cmd = [sys.executable, "-m", "cnn_studio"]
    proc = subprocess.Popen([*cmd, "train", str(data), "--backbone", "small_cnn", "--weights", "none",
                             "--image-size", "32", "--batch-size", "4", "--epochs", "60", "--fine-tune-epochs", "0",
                             "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # the CLI's progress prints a line as each epoch ends: kill during the third
        if line.startswith("epoch 2/"):
            break
    running = proc.poll() is None
    proc.kill()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert running, "training ended before it could be killed"

    assert lock_holder(run) is None  # the dead writer's lock does not hold the folder
    done, total = resume_point(run)
    assert 0 <= done < total == 60  # from the last checkpoint (0 when none was written yet)
    try:  # evaluate/predict open it as it is, or (no checkpoint written yet) say precisely what to do
        assert open_run(run).class_names == ("a", "b")
    except RunError as exc:
        assert done == 0 and "no saved model yet" in exc.message and "cnn-studio resume" in exc.hint
    resumed = subprocess.run([*cmd, "resume", str(run)], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert _epochs_saved(layout) == 60
    evaluated = subprocess.run([*cmd, "evaluate", str(run), "--json"], capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
