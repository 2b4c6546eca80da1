"""Training for real on tiny generated data: learning, events, phases, feature cache, cancel, resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import DatasetError, RunError
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split

pytestmark = pytest.mark.slow


@pytest.fixture
def split(image_folder):
    return make_split(scan(image_folder(per_class=16, size=32)), val_fraction=0.25, seed=0)


def _history(run_dir):
    with open(RunLayout(run_dir).history, newline="") as f:
        return list(csv.DictReader(f))


def test_scratch_training_learns_and_writes_the_run_folder(split, tiny_config, tmp_path):
    from cnn_studio.training.trainer import train

    events = []
    cfg = tiny_config.replace(epochs=4, learning_rate=3e-3)
    result = train(cfg, split, tmp_path / "run", sink=events.append)
    losses = [float(r["loss"]) for r in _history(result.run_dir)]
    assert len(losses) == 4 and losses[-1] < losses[0] * 0.8, losses

    kinds = [type(e).__name__ for e in events if not isinstance(e, (ev.StageChanged, ev.LogMessage))]
    assert kinds[0] == "TrainStarted" and kinds[1] == "PhaseStarted" and kinds[-1] == "TrainFinished"
    assert kinds.index("EpochStarted") < kinds.index("BatchEnded") < kinds.index("EpochEnded")
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == [0, 1, 2, 3]
    assert events[-1].status == "completed"
    layout = RunLayout(result.run_dir)
    for p in (layout.config, layout.split, layout.labels, layout.best_model, layout.last_model, layout.state):
        assert p.exists(), p
    assert read_json(layout.state)["status"] == "completed"
    assert layout.labels.read_text().split() == ["cat", "dog"]
    assert not [p for p in layout.root.iterdir() if p.name.startswith(".")], "temporary files left"
    # TensorBoard event files, one per epoch of scalars, readable with `tensorboard --logdir RUN`
    event_files = list(layout.tensorboard.rglob("events.out.tfevents.*"))
    assert event_files and sum(f.stat().st_size for f in event_files) > 0


def test_head_then_fine_tune_with_feature_cache(split, tiny_config, tmp_path):
    import keras

    from cnn_studio.backbones.classifier import backbone_of, build_classifier, trainable_layer_count
    from cnn_studio.data.pipeline import make_datasets
    from cnn_studio.training.trainer import train

    # a weights file stands in for pretrained weights, so the run has a frozen "head" phase
    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    cfg = tiny_config.replace(weights=str(weights), epochs=3, fine_tune_epochs=1, fine_tune_layers=2,
                              learning_rate=1e-2, dropout=0.0)
    events = []
    result = train(cfg, split, tmp_path / "run", sink=events.append)
    phases = [e for e in events if isinstance(e, ev.PhaseStarted)]
    # fine-tuning trains on the frozen layers' activations kept from the head phase (training/activation_cache.py)
    assert [(p.name, p.first_epoch, p.uses_feature_cache) for p in phases] == [("head", 0, True), ("fine_tune", 3, True)]
    assert phases[0].trainable_layers == 0
    # what PhaseStarted said is what the saved model has: (some of) the top 2 weight layers, no BatchNorm
    last = keras.saving.load_model(result.last_model, safe_mode=True)
    weighted = [layer for layer in backbone_of(last).layers if layer.weights]
    trainable = [layer for layer in weighted if layer.trainable and layer.trainable_weights]
    assert phases[1].trainable_layers == trainable_layer_count(last) == len(trainable) >= 1
    assert set(trainable) <= set(weighted[-2:])
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    assert any(isinstance(e, ev.TaskProgress) and "features" in e.task for e in events)
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == [0, 1, 2, 3]
    rows = _history(result.run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    head_losses = [float(r["loss"]) for r in rows[:3]]
    assert head_losses[-1] < head_losses[0], head_losses

    # the head fit on cached features is the head of the saved full model: evaluating best.keras
    # on the validation images gives the validation loss logged for its epoch
    best = keras.saving.load_model(result.best_model, safe_mode=True)
    best_epoch = min(rows, key=lambda r: float(r["val_loss"]))
    val = make_datasets(split, 32, 8, cache="none").val
    probs, labels = [], []
    for x, y in val:
        probs.append(best(x, training=False).numpy())
        labels.append(y.numpy())
    probs, labels = np.concatenate(probs), np.concatenate(labels)
    loss = float(np.mean(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0))))
    assert abs(loss - float(best_epoch["val_loss"])) < 1e-3, (loss, best_epoch)


def test_cancel_keeps_best_model_and_resume_finishes(split, tiny_config, tmp_path):
    from cnn_studio.training.trainer import resume, train

    token = CancelToken()
    events = []

    def sink(e):
        events.append(e)
        if isinstance(e, ev.EpochEnded) and e.epoch == 0:
            token.cancel()

    run = tmp_path / "run"
    with pytest.raises(Cancelled):
        train(tiny_config.replace(epochs=3), split, run, sink=sink, cancel=token)
    layout = RunLayout(run)
    assert layout.best_model.exists()
    state = read_json(layout.state)
    assert state["status"] == "cancelled" and state["epochs_done"] == 1
    assert events[-1].status == "cancelled" and not any(
        isinstance(e, ev.EpochStarted) and e.epoch == 1 and events.index(e) > 0 for e in events[-3:])

    result = resume(run)
    assert result.epochs_done == 3
    epochs = [int(r["epoch"]) for r in _history(run)]
    assert epochs == [0, 1, 2], epochs
    with pytest.raises(RunError, match="already completed"):
        resume(run)


def test_cancel_mid_epoch_stops_after_that_batch(split, tiny_config, tmp_path):
    import keras

    from cnn_studio.runs.listing import NO_MODEL_YET
    from cnn_studio.training.trainer import train

    token = CancelToken()
    finished = []

    def sink(e):
        if isinstance(e, ev.BatchEnded) and e.step == 1:  # the first batch always reports
            token.cancel()
        if isinstance(e, ev.TrainFinished):
            finished.append(e)

    with pytest.raises(Cancelled):
        train(tiny_config.replace(epochs=5, batch_size=2), split, tmp_path / "run", sink=sink, cancel=token)
    # no epoch ended: the engine's last word says no model was saved (not "the best model so far is kept")
    assert finished[-1].message == NO_MODEL_YET
    layout = RunLayout(tmp_path / "run")
    last = keras.saving.load_model(layout.last_model, safe_mode=True)
    # "batch 1 ended" is reported as batch 2 begins: that batch runs, no more
    assert int(last.optimizer.iterations.numpy()) == 2
    assert not layout.best_model.exists()  # no epoch finished, so none can be "best"
    state = read_json(layout.state)
    assert state["status"] == "cancelled" and state["epochs_done"] == 0 and state["checkpoint_epoch"] == 0


def test_cancel_mid_epoch_keeps_the_best_finished_epoch(split, tiny_config, tmp_path):
    import keras

    from cnn_studio.training.trainer import train

    token = CancelToken()
    events = []

    def sink(e):
        events.append(e)
        if isinstance(e, ev.BatchEnded) and e.epoch == 1 and e.step == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        train(tiny_config.replace(epochs=5, batch_size=2, learning_rate=1e-2), split, tmp_path / "run",
              sink=sink, cancel=token)
    layout = RunLayout(tmp_path / "run")
    # the cut-short epoch does not count: no EpochEnded, no history row, epochs_done stays 1
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == [0]
    assert [int(r["epoch"]) for r in _history(layout.root)] == [0]
    state = read_json(layout.state)
    assert state["status"] == "cancelled" and state["epochs_done"] == state["checkpoint_epoch"] == 1
    saved = [(e.kind, e.epoch) for e in events if isinstance(e, ev.CheckpointSaved)]
    assert ("best", 0) in saved and ("last", 0) in saved
    # best.keras is epoch 0's model; last.keras also has the batch trained before the Stop
    best = keras.saving.load_model(layout.best_model, safe_mode=True)
    last = keras.saving.load_model(layout.last_model, safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    assert not np.allclose(best.predict(x, verbose=0), last.predict(x, verbose=0))
    assert events[-1].status == "cancelled" and events[-1].best_model == str(layout.best_model)


def test_refuses_non_empty_folder_and_missing_class(split, tiny_config, tmp_path):
    from cnn_studio.data.records import Split
    from cnn_studio.training.trainer import train

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.docx").write_text("precious")
    with pytest.raises(RunError, match="not empty"):
        train(tiny_config, split, busy)
    assert (busy / "thesis.docx").read_text() == "precious"
    lopsided = Split(class_names=split.class_names, train=split.train,
                     val=tuple(r for r in split.val if r.label == 0))
    with pytest.raises(DatasetError, match="dog"):
        train(tiny_config, lopsided, tmp_path / "run2")


def test_frozen_phase_without_feature_cache_saves_a_loadable_model(split, tiny_config, tmp_path):
    import keras

    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.training.trainer import train

    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    events = []
    result = train(tiny_config.replace(weights=str(weights), feature_cache=False), split, tmp_path / "run",
                   sink=events.append)
    phase = next(e for e in events if isinstance(e, ev.PhaseStarted))
    assert (phase.name, phase.uses_feature_cache, phase.trainable_layers) == ("head", False, 0)
    assert not any(isinstance(e, ev.TaskProgress) and "features" in e.task for e in events)
    model = keras.saving.load_model(result.best_model, safe_mode=True)
    assert model.predict(np.zeros((1, 48, 48, 3), "float32"), verbose=0).shape == (1, 2)  # any input size


def test_out_of_memory_becomes_a_studio_error_with_a_hint(tiny_config):
    import tensorflow as tf

    from cnn_studio.core.errors import StudioError
    from cnn_studio.training.trainer import _friendly

    err = _friendly(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"), tiny_config)
    assert isinstance(err, StudioError) and "batch size" in err.hint
