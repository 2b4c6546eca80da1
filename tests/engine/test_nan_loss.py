"""Issue 23: a loss that becomes NaN/inf stops training with a clear error; the last good checkpoint is kept and
the run folder says it failed and why (before, training ran on and ended 'completed' with loss=nan)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.errors import StudioError
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout

pytestmark = pytest.mark.slow


@pytest.fixture
def poisoned_loss(monkeypatch):
    """The trainer's loss times a variable the test sets to NaN/inf (say, from a sink at an epoch's start)."""
    import keras

    poison = keras.Variable(1.0, trainable=False, name="poison")
    base = keras.losses.CategoricalCrossentropy

    class Poisoned(base):
        def __call__(self, y_true, y_pred, sample_weight=None):
            return super().__call__(y_true, y_pred, sample_weight) * poison

    monkeypatch.setattr(keras.losses, "CategoricalCrossentropy", Poisoned)
    return poison


def _split(image_folder):
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split

    return make_split(scan(image_folder(per_class=10)), val_fraction=0.3, seed=0)


def test_nan_loss_stops_training_keeps_the_last_good_checkpoint_and_marks_the_run_failed(
        poisoned_loss, image_folder, tiny_config, tmp_path):
    import keras

    from cnn_studio.training.trainer import train

    config = tiny_config.replace(epochs=4, extra={"checkpoint_interval_s": 0})
    run = tmp_path / "run"
    seen: list = []

    def sink(e):
        seen.append(e)
        if isinstance(e, ev.EpochStarted) and e.epoch == 1:
            poisoned_loss.assign(math.nan)  # the loss breaks in the second epoch

    with pytest.raises(StudioError) as info:
        train(config, _split(image_folder), run, sink=sink)
    err = info.value
    assert "epoch 2" in err.message and "NaN" in err.message and "after epoch 1" in err.message
    assert "learning rate is too high" in err.hint and "--learning-rate 0.0001" in err.hint
    assert not any(isinstance(e, ev.EpochStarted) and e.epoch >= 2 for e in seen), "stopped within epoch 2"
    layout = RunLayout(run)
    state = read_json(layout.state)
    assert state["status"] == "failed" and "NaN" in state["message"]
    assert state["checkpoint_epoch"] == 1
    model = keras.saving.load_model(layout.last_model, compile=False)  # (compiled with the test's own loss)
    assert all(np.isfinite(w).all() for w in model.get_weights()), "the kept checkpoint is the good one"
    finished = [e for e in seen if isinstance(e, ev.TrainFinished)]
    assert finished and finished[-1].status == "failed" and "NaN" in finished[-1].message


def test_cli_exits_non_zero_when_the_loss_is_infinite_from_the_start(poisoned_loss, image_folder, tmp_path, capsys):
    from cnn_studio.cli import main

    poisoned_loss.assign(math.inf)
    run = tmp_path / "run"
    code = main(["train", str(image_folder(per_class=10)), "--backbone", "small_cnn", "--weights", "none",
                 "--image-size", "32", "--epochs", "2", "--batch-size", "8", "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the loss became infinite" in err and "learning rate" in err
    state = read_json(RunLayout(run).state)
    assert state["status"] == "failed" and "infinite" in state["message"]
    assert not RunLayout(run).last_model.exists(), "no broken model is saved"
