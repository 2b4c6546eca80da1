"""The frozen layers' activations, computed once and shared by the head and the fine-tune phase.

Fine-tuning trains the layers from the fine-tune depth up; everything below them stays frozen, so
pushing the images through those layers every epoch gives the same activations each time (profiled
on VGG16 "block5" at 64 px: the 13 frozen layers are ~90 % of an epoch's forward work, and the
backward pass never reaches them). When the schedule has a fine-tune phase, no augmentation is on
and the feature cache is on, the head phase therefore runs the images once through the frozen
lower part (:func:`cnn_studio.backbones.activation_split.split_below_trainable`) and keeps those
activations; the head's pooled features come from them (the few frozen layers above the cut, a
small fraction of the work), and the fine-tune phase trains the upper part on the same
activations. Weights are shared with the classifier, so the model the run saves is the one trained.

Where they go is decided like the features (``cache_choice.choose_feature_cache``): in memory, on
disk batch by batch (a memory-mapped ``.npy``, removed when fine-tuning ends), or not at all (then
each phase runs the images through the whole model, as with augmentation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_studio.backbones.activation_split import ActivationSplit, KeptActivations, split_below_trainable
from cnn_studio.backbones.classifier import freeze_backbone, unfreeze_depth
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken
from cnn_studio.training.cache_choice import choose_feature_cache
from cnn_studio.training.feature_cache import (
    FeatureOutput,
    compute_features,
    feature_batches_of,
    remove_feature_files,
)


@dataclass
class Activations:
    """The cut, the activations of the training and validation images, and how fast the upper part runs."""

    split: ActivationSplit
    train_xy: tuple
    val_xy: tuple
    upper_images_per_s: float = 0.0  # frozen upper part, forward only (measured on the pooled features)


def plan_split(model, depth: str) -> ActivationSplit | None:
    """The cut for fine-tuning ``depth`` (its layers unfrozen to find it); the backbone is frozen again."""
    unfreeze_depth(model, depth)
    try:
        return split_below_trainable(model)
    finally:
        freeze_backbone(model)


def folder_of(cache_root: str | Path) -> Path:
    """Where activations go when they are kept on disk (below the run's feature cache folder)."""
    return Path(cache_root) / "activations"


def compute(split: ActivationSplit, data, cache_root: str | Path, *, reserved: int = 0,
            sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> Activations | None:
    """Run the training and validation images through the lower part once (with progress), or None.

    None when the activations fit neither memory nor disk (the log says so).
    """
    count = data.train_count + data.val_count
    values = math.prod(split.shape)
    folder = folder_of(cache_root)
    choice = choose_feature_cache(count, values, folder, reserved=reserved)
    shape = "×".join(str(d) for d in split.shape)
    sink(ev.LogMessage("info", f"Activation cache ({count} images × {shape} values below {split.cut_layer}, "
                               f"the first layer fine-tuning trains): {choice.reason}."))
    if choice.mode == "none":
        return None
    on_disk = choice.mode == "disk"
    train_xy = compute_features(split.fast_lower or split.lower, data.train,
                                FeatureOutput(data.train_count, folder / "train.npy" if on_disk else None),
                                task="Computing features (training images)", sink=sink, cancel=cancel)
    val_xy = compute_features(split.lower, data.val,
                              FeatureOutput(data.val_count, folder / "val.npy" if on_disk else None),
                              task="Computing features (validation images)", sink=sink, cancel=cancel)
    return Activations(split, train_xy, val_xy)


def pooled_features(acts: Activations, batch_size: int, *, folder: str | Path | None = None,
                    sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> tuple[tuple, tuple]:
    """The head's pooled features of the training and validation images, from the activations.

    ``folder``: write them there (``train.npy``, ``val.npy``) instead of keeping them in memory.
    """
    t0 = time.monotonic()
    out = []
    split = acts.split
    for name, stem, xy, model in (("training", "train", acts.train_xy, split.fast_pooled or split.pooled),
                                  ("validation", "val", acts.val_xy, split.pooled)):
        path = Path(folder) / f"{stem}.npy" if folder is not None else None
        out.append(compute_features(model, feature_batches_of(xy, batch_size),
                                    FeatureOutput(len(xy[1]), path),
                                    task=f"Pooling features ({name} images)", sink=sink, cancel=cancel))
    seconds = time.monotonic() - t0
    if seconds > 0:
        acts.upper_images_per_s = (len(acts.train_xy[1]) + len(acts.val_xy[1])) / seconds
    return out[0], out[1]


def validation_part(acts: Activations | None) -> KeptActivations | None:
    """The validation images' activations for the check after training, when they are kept in memory (None
    when they were written to disk, which :func:`release` removes, or there are none)."""
    if acts is None or not acts.val_xy or isinstance(acts.val_xy[0], np.memmap):
        return None
    return KeptActivations(acts.split.cut_layer, acts.val_xy[0], np.asarray(acts.val_xy[1]))


def release(acts: Activations | None, cache_root: str | Path) -> None:
    """Forget the activations and delete those kept on disk."""
    if acts is not None:
        acts.train_xy = acts.val_xy = ()
    remove_feature_files(folder_of(cache_root))
