"""The Keras bridge on a one-Dense model and numpy data (Keras' own callback-test style)."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.training.config import TrainConfig

pytestmark = pytest.mark.slow


def _model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def test_events_in_order_with_logs_and_throughput():
    from cnn_studio.training.callbacks import EventCallback, PhaseFacts

    events = []
    x, y = _data()
    cb = EventCallback(events.append, None, PhaseFacts("head", epochs_total=2, batch_size=8), throttle_s=0.0)
    _model().fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), callbacks=[cb], verbose=0)
    kinds = [type(e).__name__ for e in events]
    assert kinds == (["EpochStarted"] + ["BatchEnded"] * 8 + ["EpochEnded"]) * 2
    ends = [e for e in events if isinstance(e, ev.EpochEnded)]
    assert [e.epoch for e in ends] == [0, 1] and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(ends[0].logs)
    assert ends[0].seconds > 0 and ends[0].images_per_s > 0 and ends[0].phase == "head" and ends[0].epochs == 2
    batches = [e for e in events if isinstance(e, ev.BatchEnded)]
    assert [b.step for b in batches[:8]] == list(range(1, 9)) and batches[0].steps == 8
    assert batches[0].images_per_s > 0
    assert set(batches[7].logs) == {"loss", "accuracy"}  # the last batch carries the epoch's train logs
    # mid-epoch batches carry Keras' running mean of the loss; after the last batch it is the epoch's loss
    assert all(b.logs["loss"] > 0 for b in batches[:7])
    assert batches[6].logs["loss"] != batches[7].logs["loss"] or batches[0].logs["loss"] != batches[7].logs["loss"]
    assert abs(batches[7].logs["loss"] - ends[0].logs["loss"]) < 1e-6


def test_batch_events_are_throttled_but_first_and_last_always_report():
    from cnn_studio.training.callbacks import EventCallback, PhaseFacts

    events = []
    x, y = _data()
    cb = EventCallback(events.append, None, PhaseFacts("head", epochs_total=1, batch_size=2), throttle_s=3600)
    _model().fit(x, y, batch_size=2, epochs=1, callbacks=[cb], verbose=0)
    assert [e.step for e in events if isinstance(e, ev.BatchEnded)] == [1, 32]


def test_cancel_stops_after_the_current_batch_and_the_epoch_does_not_count():
    from cnn_studio.training.callbacks import EventCallback, PhaseFacts

    events = []
    token = CancelToken()

    def sink(e):
        events.append(e)
        if isinstance(e, ev.BatchEnded) and e.step == 3:
            token.cancel()

    x, y = _data()
    model = _model()
    cb = EventCallback(sink, token, PhaseFacts("head", epochs_total=2, batch_size=8), throttle_s=0.0)
    model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), callbacks=[cb], verbose=0)
    # "batch 3 ended" is reported as batch 4 begins; that batch runs, then training stops
    assert int(model.optimizer.iterations.numpy()) == 4
    assert cb.interrupted
    assert not [e for e in events if isinstance(e, ev.EpochEnded)]


def test_cancel_between_epochs_stops_before_the_next_epoch():
    from cnn_studio.training.callbacks import EventCallback, PhaseFacts

    events = []
    token = CancelToken()

    def sink(e):
        events.append(e)
        if isinstance(e, ev.EpochEnded):
            token.cancel()

    x, y = _data()
    model = _model()
    cb = EventCallback(sink, token, PhaseFacts("head", epochs_total=3, batch_size=8))
    model.fit(x, y, batch_size=8, epochs=3, validation_data=(x, y), callbacks=[cb], verbose=0)
    assert [e.epoch for e in events if isinstance(e, ev.EpochStarted)] == [0]
    assert int(model.optimizer.iterations.numpy()) == 8 and not cb.interrupted


def test_cancel_during_validation_stops_it():
    import keras

    from cnn_studio.training.callbacks import EventCallback, PhaseFacts

    token = CancelToken()
    x, y = _data()
    model = _model()
    cb = EventCallback(ev.null_sink, token, PhaseFacts("head", epochs_total=1, batch_size=8))
    seen = []
    cancel_in_val = keras.callbacks.LambdaCallback(on_test_batch_end=lambda b, logs: (seen.append(b), token.cancel()))
    model.fit(x, y, batch_size=8, epochs=1, validation_data=(x, y), callbacks=[cancel_in_val, cb], verbose=0)
    assert seen == [0, 1] and cb.interrupted  # 8 validation batches; stopped after the next one


def test_atomic_checkpoints_every_epoch(tmp_path):
    import keras

    from cnn_studio.runs.run_folder import open_run
    from cnn_studio.training.callbacks import AtomicCheckpoints, CheckpointRules

    layout = RunLayout(tmp_path)
    write_json(tmp_path / "config.json", TrainConfig().to_dict())  # open_run needs a real config
    events = []
    model = _model()
    interrupted = [False]
    cp = AtomicCheckpoints(model, layout, events.append, skip_epoch=lambda: interrupted[0],
                           rules=CheckpointRules(min_interval_s=0))
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), callbacks=[cp], verbose=0)
    saved = [(e.kind, e.epoch) for e in events]
    assert saved[:2] == [("last", 0), ("best", 0)] and ("last", 1) in saved
    assert all(e.monitor == "val_loss" for e in events if e.kind == "best")
    state = read_json(layout.state)
    assert state["epochs_done"] == state["checkpoint_epoch"] == 2 and state["best_value"] == cp.best
    history = open_run(tmp_path).history()
    assert [h["epoch"] for h in history] == [0, 1] and "val_accuracy" in history[0]
    reloaded = keras.saving.load_model(layout.last_model, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left"

    # an epoch cut short: its weights go to last.keras, but no row and no change of epochs_done
    events.clear()
    interrupted[0] = True
    model.fit(x, y, batch_size=8, epochs=3, initial_epoch=2, callbacks=[cp], verbose=0)
    assert [(e.kind, e.epoch) for e in events] == [("last", 1)]
    assert read_json(layout.state)["epochs_done"] == 2 and len(open_run(tmp_path).history()) == 2

    # rows of epochs at or after the one being written (left by a killed run) are replaced
    interrupted[0] = False
    cp = AtomicCheckpoints(model, layout, events.append, rules=CheckpointRules(min_interval_s=0, initial_epoch=1))
    model.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, validation_data=(x, y), callbacks=[cp], verbose=0)
    assert [h["epoch"] for h in open_run(tmp_path).history()] == [0, 1]


def test_atomic_checkpoints_throttled_keep_the_best_weights_in_memory(tmp_path):
    import keras

    from cnn_studio.training.callbacks import AtomicCheckpoints, CheckpointRules

    layout = RunLayout(tmp_path)
    events = []
    model = _model()
    x, y = _data()
    cp = AtomicCheckpoints(model, layout, events.append, rules=CheckpointRules(min_interval_s=3600))
    # validation on a fixed batch whose loss gets worse after epoch 0: best stays epoch 0
    snapshots = []
    keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(model.get_weights()))
    model.fit(x, y, batch_size=8, epochs=3, validation_data=(x, 1 - y), callbacks=[keep, cp], verbose=0)
    # one write, at the end of fit: last = the final weights, best = the best epoch's weights
    assert [e.kind for e in events] == ["last", "best"]
    best_epoch = next(e.epoch for e in events if e.kind == "best")
    assert best_epoch == 0  # so best.keras had to come from the weights kept in memory
    assert read_json(layout.state)["checkpoint_epoch"] == 3
    best = keras.saving.load_model(layout.best_model, safe_mode=True)
    for got, want in zip(best.get_weights(), snapshots[best_epoch], strict=True):
        np.testing.assert_allclose(got, want)
    last = keras.saving.load_model(layout.last_model, safe_mode=True)
    for got, want in zip(last.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want)
