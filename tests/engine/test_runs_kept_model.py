"""Issue 23: a run's summary says what the model it kept scored (not the best epoch's figure), and ignores a
figure measured before that model was saved again (a continued run)."""

from __future__ import annotations

import json
import os
import shutil

from cnn_studio.core.fsutil import write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.listing import summarize


def test_kept_model_comes_from_evaluate_then_the_review_and_never_from_an_older_model(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("run.lock"))
    layout = RunLayout(run)
    reviewed = summarize(run).kept_model
    assert reviewed["subset"] == "val" and reviewed["verdict"] in ("better", "unproven", "not_better")
    assert reviewed["n_images"] == len(json.loads(layout.split.read_text())["val"])
    write_json(layout.metrics, {"accuracy": 0.75, "subset": "test", "n_images": 12, "chance": {"verdict": "unproven"}})
    assert summarize(run).kept_model == {"accuracy": 0.75, "subset": "test", "n_images": 12, "verdict": "unproven",
                                         "message": ""}
    later = layout.metrics.stat().st_mtime + 10  # training continued after both were written
    os.utime(layout.best_model, (later, later))
    assert summarize(run).kept_model == {}
