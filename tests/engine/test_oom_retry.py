"""Out of memory is not a crash: the run continues from its last checkpoint with half the batch size."""

from __future__ import annotations

import csv

import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.errors import StudioError
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split

pytestmark = pytest.mark.slow


@pytest.fixture
def split(image_folder):
    return make_split(scan(image_folder(per_class=16, size=32)), val_fraction=0.25, seed=0)


def _oom():
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor (simulated)")


def test_out_of_memory_retries_the_epoch_with_half_the_batch(split, tiny_config, tmp_path):
    from cnn_studio.training.trainer import train

    seen: list = []
    raised = []

    def sink(e):
        seen.append(e)
        # the first attempt runs out of memory in its second epoch, after epoch 1 was checkpointed
        if isinstance(e, ev.BatchEnded) and e.epoch == 1 and not raised:
            raised.append(e)
            raise _oom()

    config = tiny_config.replace(epochs=3, extra={"review": False, "checkpoint_interval_s": 0})
    result = train(config, split, tmp_path / "run", sink=sink)

    assert raised and result.epochs_done == 3
    started = [e for e in seen if isinstance(e, ev.TrainStarted)]
    assert [e.batch_size for e in started] == [8, 4]
    assert all(e.device.startswith("Training on the CPU") for e in started)
    warnings = [e.text for e in seen if isinstance(e, ev.LogMessage) and "Out of memory" in e.text]
    assert len(warnings) == 1 and "batch size 8" in warnings[0] and "batch size 4" in warnings[0]
    assert "from epoch 2" in warnings[0]
    # the retry continued from the checkpoint: epoch 0 ran once, epoch 1 twice (cut, then in full)
    epochs = [e.epoch for e in seen if isinstance(e, ev.EpochStarted)]
    assert epochs == [0, 1, 1, 2]
    layout = RunLayout(tmp_path / "run")
    recorded = read_json(layout.config)
    assert recorded["batch_size"] == 4 and recorded["extra"]["batch_size_asked"] == 8
    with open(layout.history, newline="") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert read_json(layout.state)["status"] == "completed"


def test_out_of_memory_at_the_floor_ends_the_run_with_what_to_do(split, tiny_config, tmp_path):
    from cnn_studio.training.trainer import OOM_MIN_BATCH_SIZE, train

    sizes = []

    def sink(e):
        if isinstance(e, ev.TrainStarted):
            sizes.append(e.batch_size)
        if isinstance(e, ev.BatchEnded):
            raise _oom()

    config = tiny_config.replace(extra={"review": False, "checkpoint_interval_s": 0})
    with pytest.raises(StudioError, match="Out of memory") as info:
        train(config, split, tmp_path / "run", sink=sink)
    assert sizes == [8, 4] and OOM_MIN_BATCH_SIZE == 4
    assert "image size" in info.value.hint
