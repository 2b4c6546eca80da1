"""Phases that train on cached inputs instead of running the frozen layers every epoch.

The head phase trains on the frozen backbone's features (computed once, :mod:`feature_cache`, with
the learning-rate finder on them); fine-tuning trains the upper part on the activations kept from
the head phase (:mod:`activation_cache`).
"""

from __future__ import annotations

import time
from dataclasses import replace

from cnn_studio.backbones.classifier import split_for_feature_cache, unfreeze_depth
from cnn_studio.backbones.low_precision import bfloat16_twin
from cnn_studio.core import events as ev
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.training import activation_cache, schedule
from cnn_studio.training.cache_choice import CacheChoice, choose_feature_cache
from cnn_studio.training.devices import bfloat16_frozen_pass, strategy_kind
from cnn_studio.training.feature_cache import FeatureOutput, compute_features, feature_datasets
from cnn_studio.training.fit_context import Fit, jit_compile, upper_jit_compile
from cnn_studio.training.lr_finder import feature_batches, make_optimizer, sweep
from cnn_studio.training.run_state import record_schedule


def note_in_config(layout: RunLayout, **notes: str) -> None:
    """Add ``notes`` to config.json's ``extra`` as the file holds it now (what earlier notes wrote is kept)."""
    written = read_json(layout.config)
    written["extra"] = {**written.get("extra", {}), **notes}
    write_json(layout.config, written)


def feature_cache_choice(layout: RunLayout, model, data, sink: ev.EventSink,
                          images_in_memory: int = 0) -> CacheChoice:
    """Where the frozen-phase features go: memory, disk (batch by batch) or none, said in the log and config.json.

    ``images_in_memory``: bytes of decoded images this run keeps in memory (``cache_choice.decoded_bytes``
    when ``config.cache == "memory"``), counted as taken.
    """
    width = int(model.get_layer("pool").output.shape[-1])
    count = data.train_count + data.val_count
    choice = choose_feature_cache(count, width, layout.feature_cache / "features", reserved=images_in_memory)
    sink(ev.LogMessage("info", f"Feature cache ({count} images × {width} features): {choice.reason}."))
    note_in_config(layout, feature_cache_reason=choice.reason)
    return choice


def head_on_features(fit: Fit, plan, features, first: int):
    """Compute the frozen backbone's features (with progress), pick the rate (finder), compile the head."""
    config, data = fit.config, fit.data
    feature_model, head_model = split_for_feature_cache(fit.model)
    on_disk = features is not None and features.mode == "disk"
    folder = fit.layout.feature_cache / "features"
    t0 = time.monotonic()
    fit.activations = _kept_activations(fit)
    if fit.activations is not None:  # one pass through the frozen layers serves both phases
        train_xy, val_xy = activation_cache.pooled_features(fit.activations, config.batch_size, sink=fit.sink,
                                                            cancel=fit.cancel, folder=folder if on_disk else None)
    else:
        train_xy = compute_features(feature_model, data.train,
                                    FeatureOutput(data.train_count, folder / "train.npy" if on_disk else None),
                                    task="Computing features (training images)", sink=fit.sink, cancel=fit.cancel)
        val_xy = compute_features(feature_model, data.val,
                                  FeatureOutput(data.val_count, folder / "val.npy" if on_disk else None),
                                  task="Computing features (validation images)", sink=fit.sink, cancel=fit.cancel)
    seconds = time.monotonic() - t0
    if seconds > 0:
        fit.forward_images_per_s = (len(train_xy[1]) + len(val_xy[1])) / seconds
        fit.budget.reserve_for_review(data.val_count, fit.forward_images_per_s)
    rate = plan.learning_rate
    if rate is None and strategy_kind(0) == "multi_worker":  # the sweep is a loop of this process alone
        rate = schedule.DEFAULT_LEARNING_RATE
        fit.sink(ev.LogMessage("info", f"Learning rate {rate:g} for the head: the learning-rate finder runs with "
                                       "one worker only."))
    elif rate is None:
        rate = _find_head_rate(fit, head_model, train_xy)
    ftrain, fval = feature_datasets(train_xy, val_xy, config.batch_size, config.seed)
    # a head step takes microseconds: run a whole epoch per graph call, same batches,
    # so Python overhead does not dominate (events and cancel checks come per epoch)
    head_model.compile(optimizer=make_optimizer(config.optimizer, rate), loss=fit.loss, metrics=["accuracy"],
                       steps_per_execution=data.steps_per_epoch, jit_compile=jit_compile(config))
    return head_model, fit.one_hot(ftrain), fit.one_hot(fval), rate


def _activations_wanted(fit: Fit) -> bool:
    """Whether fine-tuning can train on kept activations: a fine-tune phase, the cache on, no augmentation."""
    config = fit.config
    return (config.feature_cache and not config.augment and strategy_kind(0) != "multi_worker"
            and any(p.name == "fine_tune" for p in schedule.plan(config)))


def _kept_activations(fit: Fit) -> activation_cache.Activations | None:
    """The frozen layers' activations for the head phase to pool and the fine-tune phase to reuse, or None.

    The cut is found with the fine-tune depth unfrozen; the backbone is left frozen (``plan_split``).
    """
    if not _activations_wanted(fit):
        return None
    split = activation_cache.plan_split(fit.model, fit.config.effective_fine_tune_depth)
    if split is None:
        return None
    if bfloat16_frozen_pass(fit.config):
        split = replace(split, fast_lower=bfloat16_twin(split.lower),
                        fast_pooled=bfloat16_twin(split.pooled, "trainable_upper"))
        fit.sink(ev.LogMessage("info", "The training images go through the frozen layers once, in bfloat16: this "
                                       "CPU computes it natively (Intel AMX), about 5× faster than float32. The "
                                       "validation images, the layers that learn and the checks stay in float32."))
        note_in_config(fit.layout, frozen_pass="bfloat16 (training images)")
    return activation_cache.compute(split, fit.data, fit.layout.feature_cache, reserved=fit.images_in_memory,
                                    sink=fit.sink, cancel=fit.cancel)


def fine_tune_activations(fit: Fit, *, resuming: bool) -> bool:
    """Whether this fine-tune phase trains on kept activations (computed now when the head phase did not)."""
    if not _activations_wanted(fit) or (resuming and fit.saved_optimizer is not None):
        return False  # a resumed phase continues its saved optimizer, which knows the whole model
    if fit.activations is None:
        fit.activations = _kept_activations(fit)
        unfreeze_depth(fit.model, fit.config.effective_fine_tune_depth)  # plan_split froze it again
    return fit.activations is not None


def upper_on_activations(fit: Fit, plan, learning_rate):
    """Compile the upper part (fine-tuned layers and head) for epochs on the kept activations.

    ``learning_rate``: the optimizer's (a rate, or the phase's schedule: ``phases.phase_rate``).
    """
    config, acts = fit.config, fit.activations
    rate = plan.learning_rate
    fit.sink(ev.LogMessage("info", f"Fine-tuning trains from {acts.split.cut_layer} up on the activations kept "
                                   "from the head phase: the frozen layers below it are not run again."))
    ftrain, fval = feature_datasets(acts.train_xy, acts.val_xy, config.batch_size, config.seed)
    upper = acts.split.upper
    upper.compile(optimizer=make_optimizer(config.optimizer, learning_rate), loss=fit.loss, metrics=["accuracy"],
                  jit_compile=upper_jit_compile(config, int(acts.train_xy[0].shape[1])))
    return upper, fit.one_hot(ftrain), fit.one_hot(fval), rate


def _find_head_rate(fit: Fit, head_model, train_xy) -> float:
    """The learning-rate finder on the cached features: its suggestion, said, sent and recorded."""
    config = fit.config
    fit.sink(ev.StageChanged(task="train", stage="Finding a learning rate",
                             detail="a short sweep on the cached features"))
    batches = feature_batches(train_xy[0], train_xy[1], fit.n_classes, config.batch_size, config.seed)
    found = sweep(head_model, batches, fit.loss, optimizer=config.optimizer, cancel=fit.cancel)
    fit.sink(ev.LearningRateFound(rates=found.rates, losses=found.losses, suggestion=found.suggestion,
                                  reason=found.reason))
    fit.sink(ev.LogMessage("info", f"Learning-rate finder: {found.suggestion:.2g} for the head, {found.reason}."))
    record_schedule(fit.layout, phase="head", lr_finder=found.to_dict())
    return found.suggestion
