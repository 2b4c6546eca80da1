"""After training, the review says when the model is no better than guessing: events, TrainResult, CLI, evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnn_studio.cli import main
from cnn_studio.core import events as ev

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def random_label_run(tmp_path_factory):
    """small_cnn trained on 2 × 20 images whose labels are random (the two folders hold the same kind of noise)."""
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    base = tmp_path_factory.mktemp("review")
    rng = np.random.default_rng(0)
    for name in ("normal", "pneumonia"):
        (base / "data" / name).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(base / "data" / name / f"{i}.png")
    split = make_split(scan(base / "data"), val_fraction=0.5, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=2, seed=0)
    events: list = []
    result = train(cfg, split, base / "run", sink=events.append)
    return result, events


def test_random_labels_are_flagged_in_the_events_and_the_result(random_label_run):
    result, events = random_label_run
    (chance,) = [e for e in events if isinstance(e, ev.ChanceLevel)]
    assert chance.verdict in ("not_better", "unproven") and chance.n_images == 20 and chance.baseline == 0.5
    assert "guessing" in chance.message and chance.hint.startswith("Try:")
    assert any(isinstance(e, ev.LogMessage) and e.level == "warning" and "guessing" in e.text for e in events)
    finished = [e for e in events if isinstance(e, ev.TrainFinished)][-1]
    assert finished.status == "completed" and "guessing" in finished.message
    assert result.better_than_chance is False and result.warnings
    assert [e for e in events if isinstance(e, ev.Calibrated)][0].n_images == 20
    review = json.loads((result.run_dir / "review.json").read_text())
    assert review["chance"]["verdict"] == chance.verdict and review["shortcuts"]["n_images"] > 0


def test_the_cli_says_so_instead_of_a_plain_success(random_label_run, capsys):
    from cnn_studio.cli.train import _finish

    result, _ = random_label_run
    assert _finish(result) == 0
    out = capsys.readouterr().out
    assert "warning: " in out and "guessing" in out and "finished with warnings" in out
    assert "done: best model" not in out


def test_evaluate_states_it_too(random_label_run, capsys):
    result, _ = random_label_run
    assert main(["evaluate", str(result.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: " in out and "guessing" in out
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["chance"]["verdict"] in ("not_better", "unproven")
    assert metrics["intervals"]["accuracy"]["n"] == 20
    assert metrics["calibration"]["n_images"] == 20 and "ece" in metrics["calibration"]
    assert "shortcuts" in metrics


def test_predict_answers_uncertain_below_the_threshold(random_label_run, tmp_path, capsys):
    result, _ = random_label_run
    folder = result.run_dir.parent / "data" / "normal"
    csv_path = tmp_path / "p.csv"
    assert main(["predict", str(result.run_dir), str(folder), "--uncertain-below", "0.999", "--csv", str(csv_path)]) == 0
    captured = capsys.readouterr()
    rows = captured.out.strip().splitlines()
    assert len(rows) == 20 and all("\tuncertain (below 0.999; best guesses: " in r for r in rows)
    assert "20 of 20 image(s) answered 'uncertain'" in captured.err
    assert csv_path.read_text().splitlines()[1].split(",")[1] == "uncertain"
    assert main(["predict", str(result.run_dir), str(folder), "--uncertain-below", "1.5"]) == 2
