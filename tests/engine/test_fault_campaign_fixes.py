"""Cases of issue 23's fault campaign (tools/fault_campaign.py) that still failed when it was re-run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image


def _image(path):
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(path)
    return path


def test_explain_names_the_missing_config_of_a_run_folder(trained_run, tmp_path, capsys):
    """A run folder that lost config.json: explain says so (it said 'No model at RUN')."""
    from cnn_studio.cli import main

    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "config.json").unlink()
    assert main(["explain", str(run), str(_image(tmp_path / "img.png")), "--out", str(tmp_path / "cam.png")]) == 2
    err = capsys.readouterr().err
    assert "config.json is missing" in err and "No model at" not in err
    assert not (tmp_path / "cam.png").exists()


@pytest.mark.slow
def test_explain_refuses_a_keras_model_cnn_studio_did_not_make(tmp_path, capsys):
    """A .keras from elsewhere given to explain: a clear message (it was a ValueError traceback)."""
    import keras

    from cnn_studio.cli import main

    foreign = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    foreign.save(tmp_path / "foreign.keras")
    img = _image(tmp_path / "img.png")
    assert main(["explain", str(tmp_path / "foreign.keras"), str(img), "--out", str(tmp_path / "cam.png")]) == 2
    err = capsys.readouterr().err
    assert "not a model made by CNN Studio" in err and "flatten" in err
    assert not (tmp_path / "cam.png").exists()
    # its architecture can still be listed: that needs no CNN Studio layers
    assert main(["explain", str(tmp_path / "foreign.keras"), "--architecture"]) == 0


@pytest.fixture
def poisoned_loss(monkeypatch):
    """The trainer's loss times a variable the test sets to NaN/inf (as in test_nan_loss.py)."""
    import keras

    poison = keras.Variable(1.0, trainable=False, name="poison")
    base = keras.losses.CategoricalCrossentropy

    class Poisoned(base):
        def __call__(self, y_true, y_pred, sample_weight=None):
            return super().__call__(y_true, y_pred, sample_weight) * poison

    monkeypatch.setattr(keras.losses, "CategoricalCrossentropy", Poisoned)
    return poison


@pytest.mark.slow
def test_a_loss_that_diverges_after_unwritten_epochs_keeps_their_best_model(
        poisoned_loss, image_folder, tiny_config, tmp_path):
    """Checkpoints are written at most every 30 s: epochs that finished before the loss became NaN,
    all within those 30 s, were lost and the error said no epoch had finished with a sound loss
    (`train --learning-rate 10 --optimizer sgd`: inf in epoch 4 after 3 finished epochs)."""
    import math

    import keras

    from cnn_studio.core import events as ev
    from cnn_studio.core.errors import StudioError
    from cnn_studio.core.fsutil import read_json
    from cnn_studio.core.paths import RunLayout
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.callbacks import read_history
    from cnn_studio.training.trainer import train

    config = tiny_config.replace(epochs=4)  # the default checkpoint interval: nothing written before epoch 3
    run = tmp_path / "run"

    def sink(e):
        if isinstance(e, ev.EpochStarted) and e.epoch == 2:
            poisoned_loss.assign(math.nan)  # the loss breaks in the third epoch

    with pytest.raises(StudioError) as info:
        train(config, make_split(scan(image_folder(per_class=10)), val_fraction=0.3, seed=0), run, sink=sink)
    layout = RunLayout(run)
    state = read_json(layout.state)
    kept = state.get("checkpoint_epoch")
    assert kept in (1, 2), state  # the best of the two finished epochs
    assert f"after epoch {kept}" in info.value.message and "no model to keep" not in info.value.message
    assert state["status"] == "failed" and state["epochs_done"] == kept
    for path in (layout.best_model, layout.last_model):
        model = keras.saving.load_model(path, compile=False)
        assert all(np.isfinite(w).all() for w in model.get_weights()), path
    assert [int(float(r["epoch"])) for r in read_history(layout.history)] == list(range(kept))
    # the kept checkpoint continues (a fresh optimizer: the broken one's state is not kept)
    from cnn_studio.training.trainer import resume

    poisoned_loss.assign(1.0)
    assert resume(run).epochs_done == 4
