"""Two local workers (MultiWorkerMirroredStrategy on 127.0.0.1) give a run of the same shape as one worker."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout

pytestmark = pytest.mark.slow


def _train(data, out, *extra):
    cmd = [sys.executable, "-m", "cnn_studio", "train", str(data), "--backbone", "small_cnn", "--weights", "none",
           "--image-size", "32", "--epochs", "2", "--batch-size", "8", "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)


def _epochs(run):
    with open(RunLayout(run).history, newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_two_local_workers_write_one_run_like_a_single_worker(image_folder, tmp_path):
    import keras

    data = image_folder(per_class=8, size=32)
    two = _train(data, tmp_path / "two", "--workers", "2")
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    one = _train(data, tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]

    assert "Worker 0 of 2 (chief, writes" in two.stdout and "MultiWorkerMirroredStrategy" in two.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "one", "two"]  # the chief alone wrote a run
    assert _epochs(tmp_path / "two") == _epochs(tmp_path / "one") == [0, 1]
    for run in ("one", "two"):
        layout = RunLayout(tmp_path / run)
        assert read_json(layout.state)["status"] == "completed"
        model = keras.saving.load_model(layout.best_model)
        assert model.output_shape == (None, 2)
    assert read_json(RunLayout(tmp_path / "two").config)["workers"] == 2
