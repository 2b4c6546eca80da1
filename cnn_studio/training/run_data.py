"""Data preparation for one attempt at a run, then its phases: :func:`fit_run`.

TensorFlow loaded and seeded, devices and precision chosen, the datasets made (cache, shuffle
buffer, multi-band notes), TrainStarted sent; then :func:`cnn_studio.training.phases.fit_all`, and
every file the pipeline dropped is named and kept in skipped.csv.
"""

from __future__ import annotations

import importlib.util
import math

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.core import tf_runtime
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.augment import multiband_augment
from cnn_studio.data.bands import read_band_info
from cnn_studio.data.pipeline import make_datasets
from cnn_studio.data.records import Split
from cnn_studio.runs.run_folder import open_run, read_labels, read_state, write_skipped
from cnn_studio.training import schedule
from cnn_studio.training.cache_choice import decoded_bytes, human_bytes, shuffle_buffer
from cnn_studio.training.config import TrainConfig
from cnn_studio.training.devices import choose_precision, distribution_strategy, precision_line, strategy_kind
from cnn_studio.training.fit_context import PreparedRun, RunContext
from cnn_studio.training.phases import fit_all
from cnn_studio.training.result import TrainResult


def _class_weights(split: Split, mode: str) -> dict[int, float] | None:
    if mode != "balanced":
        return None
    n = len(split.class_names)
    counts = [0] * n
    for r in split.train:
        counts[r.label] += 1
    total = sum(counts)
    return {i: total / (n * c) for i, c in enumerate(counts) if c}


def _report_skipped(layout: RunLayout, skips, into: dict[str, str], sink: ev.EventSink) -> None:
    """Name every file the pipeline dropped (a LogMessage each) and keep the list in skipped.csv."""
    entries = dict(getattr(skips, "entries", {}) or {})
    new = {p: r for p, r in entries.items() if p not in into}
    into.update(entries)
    write_skipped(layout, into)
    for path, reason in sorted(new.items()):
        sink(ev.LogMessage("warning", f"Skipped {path}: {reason}"))
    if new:
        sink(ev.LogMessage("warning", f"{len(into)} file(s) could not be decoded and were left out of training; "
                                      f"the list is in {layout.skipped}."))


def fit_run(run: RunContext, config: TrainConfig, split: Split, start_epoch: int) -> TrainResult:
    """Prepare the data, train the phases from ``start_epoch`` and say what the run folder holds now."""
    layout = run.layout
    prepared = prepare(run, config, split, start_epoch)
    best = math.inf
    state = read_state(layout)
    if state.get("best_value") is not None:
        best = float(state["best_value"])
    try:
        if config.cache == "memory":
            prepared.images_in_memory = decoded_bytes([*split.train, *split.val], prepared.size)
        fit_all(run, config, prepared, start_epoch=start_epoch, best=best)
    finally:
        _report_skipped(layout, prepared.data.skips, run.skipped, run.sink)

    done = int(read_state(layout).get("epochs_done", 0))

    info = open_run(layout.root)
    return TrainResult(run_dir=layout.root, status="completed", best_model=layout.best_model,
                       last_model=layout.last_model, epochs_done=done,
                       class_names=read_labels(layout.labels), history=info.history(), skipped=dict(run.skipped))


def prepare(run: RunContext, config: TrainConfig, split: Split, start_epoch: int) -> PreparedRun:
    """TensorFlow, devices and datasets for this attempt; ends with TrainStarted."""
    sink = run.sink
    sink(ev.StageChanged(task="train", stage="Loading TensorFlow"))
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    tensorboard_available = importlib.util.find_spec("tensorboard") is not None
    if not tensorboard_available and start_epoch == 0:
        sink(ev.LogMessage("info", "TensorBoard logs are off (the tensorboard package is not installed); "
                                   "history.csv has every epoch's metrics."))
    spec = registry.get(config.backbone)
    size = spec.image_size(config.image_size)  # recorded in config.json (older runs: the default)
    n_classes = len(split.class_names)
    gpus = tf_runtime.gpu_devices()
    policy = choose_precision(config.precision, gpus)
    strategy = distribution_strategy()
    device = tf_runtime.device_line(gpus)
    if strategy.num_replicas_in_sync > 1:
        device += f" {strategy.num_replicas_in_sync} replicas train together ({strategy_kind(len(gpus))})."

    data = _datasets(run.layout, config, split, size, sink, start_epoch)

    def one_hot(ds):
        return ds.map(lambda x, y: (x, tf.one_hot(y, n_classes)), num_parallel_calls=tf.data.AUTOTUNE)

    train_ds, val_ds = one_hot(data.train), one_hot(data.val)
    class_weight = _class_weights(split, config.class_weight)
    sink(ev.LogMessage("info", schedule.describe(config)))
    sink(ev.TrainStarted(run_dir=str(run.layout.root), backbone=spec.key, epochs=config.total_epochs,
                         steps=data.steps_per_epoch, train_images=data.train_count, val_images=data.val_count,
                         device=device, batch_size=config.batch_size, precision=precision_line(policy, gpus)))
    return PreparedRun(data, train_ds, val_ds, class_weight, spec, size, n_classes, policy, strategy,
                       tensorboard_available)


def _datasets(layout: RunLayout, config: TrainConfig, split: Split, size: int, sink: ev.EventSink,
              start_epoch: int):
    """The pipeline's datasets for this run (uint8 batches), with what is worth saying about them."""
    sink(ev.StageChanged(task="train", stage="Preparing data",
                         detail=f"{len(split.train)} training and {len(split.val)} validation images"))
    cache_dir = layout.feature_cache / "images" if config.cache == "disk" else None
    bands = read_band_info(layout.bands)
    if bands is not None:
        sink(ev.LogMessage("info", f"Multi-band images: {bands.describe()}."))
        dropped = multiband_augment(config.augment)[1]
        if dropped and start_epoch == 0:
            sink(ev.LogMessage("info", f"Augmentation on multi-band images is geometric only: {', '.join(dropped)} "
                                       "left out (they are defined on 0-255 pictures, not on raw band values)."))
    buffer = shuffle_buffer(config.cache, split.train, size)
    if buffer is not None:
        sink(ev.LogMessage("info", f"Shuffling: the {len(split.train):,} training images are put in a random order "
                                   f"once, and each epoch reshuffles {buffer:,} at a time (about "
                                   f"{human_bytes(buffer * decoded_bytes(split.train[:1], size))} of memory; "
                                   "all of them would not fit with the images cached outside memory)."))
    return make_datasets(split, size, config.batch_size, resize=config.resize, augment=config.augment,
                         cache=config.cache, cache_dir=cache_dir, seed=config.seed, shuffle_buffer=buffer,
                         dtype="uint8")  # the model casts its raw-pixel input itself
