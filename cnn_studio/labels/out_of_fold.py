"""The label check's out-of-fold probabilities: every image judged by a model that never saw its label.

The images are decoded once (:func:`load_images`, paired with their records by the pipeline's key), cut
into stratified, group-aware folds (:func:`fold_data`), then either

* :func:`feature_probabilities`: a pretrained backbone's frozen features computed once, a softmax
  regression per fold (NumPy, seconds); or
* :func:`fold_model_probabilities`: one network (the Small CNN) trained per fold on the other folds.

Both return the probabilities and the embedding the near-duplicate and neighbour search use.
No Qt here; TensorFlow only inside the functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_studio.backbones.classifier import build_classifier, split_for_feature_cache
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import raise_if_cancelled
from cnn_studio.core.errors import DatasetError, StudioError
from cnn_studio.data.pipeline import SkipLog, make_dataset
from cnn_studio.labels.issue_maths import (
    fit_softmax,
    normalise_rows,
    pixel_embedding,
    softmax_predict,
    stratified_folds,
)
from cnn_studio.training.feature_cache import FeatureOutput, compute_features, feature_batches_of
from cnn_studio.training.lr_finder import make_optimizer

TASK = "Finding label issues"


def load_images(records, image_size: int, resize: str, batch_size: int, *, sink, cancel):
    """Decoded images of ``records`` and the record of each (unreadable ones left out): uint8
    ``(N, S, S, 3)`` for pictures, float32 ``(N, S, S, bands)`` raw values for multi-band tiles.

    Each image is paired with its record by the key the pipeline hands out with it, never by position.
    """

    skips = SkipLog()
    multiband = any(r.bands for r in records)
    dtype = np.float32 if multiband else np.uint8
    ds = make_dataset(records, image_size, batch_size, resize=resize, cache="none", skips=skips,
                      dtype="float32" if multiband else "uint8", with_keys=True)
    by_key = {os.fsencode(r.key): r for r in records}
    chunks, kept = [], []
    for x, _y, keys in ds:
        raise_if_cancelled(cancel)
        chunks.append(np.asarray(x, dtype))
        kept += [by_key[bytes(k)] for k in keys.numpy()]
        sink(ev.TaskProgress(task="Reading the images", done=min(len(kept), len(records)), total=len(records)))
    channels = max((r.bands for r in records), default=0) or 3
    images = np.concatenate(chunks) if chunks else np.zeros((0, image_size, image_size, channels), dtype)
    if len(kept) != len(records):
        raise DatasetError(f"{len(records) - len(kept)} image(s) could not be read for the label check.",
                           "Run the Data step's check and fix or remove the unreadable files first.")
    return images, kept


@dataclass(frozen=True)
class FoldData:
    """The decoded images, their labels, and the fold (0..k-1) of each."""

    images: np.ndarray
    labels: np.ndarray
    fold_of: np.ndarray
    k: int


def fold_data(images: np.ndarray, labels: np.ndarray, groups: list[str], folds: int, n_classes: int,
              seed: int) -> FoldData:
    """K (no more than the largest class, nor than the groups) and the fold of each image."""
    k = int(min(folds, max(2, int(np.bincount(labels, minlength=n_classes).max()))))
    n_groups = len({g for g in groups if g}) + sum(1 for g in groups if not g)
    if any(groups):  # a patient's slices stay in one fold; there cannot be more folds than groups
        k = max(2, min(k, n_groups))
    fold_of = stratified_folds(labels, k, seed, groups=groups if n_groups >= 2 else None)
    return FoldData(images, labels, fold_of, k)


@dataclass(frozen=True)
class FoldModel:
    """What builds the checker's network (the same for both paths) and how the fold models train."""

    spec: Any
    n_classes: int
    weights: str
    size: int
    bands: Any
    batch_size: int
    seed: int
    epochs: int = 1
    learning_rate: float = 3e-3

    def build(self):
        return build_classifier(self.spec, self.n_classes, weights=self.weights, image_size=self.size,
                                bands=self.bands)


def feature_probabilities(model: FoldModel, data: FoldData, *, sink, cancel):
    """Frozen features computed once, a softmax regression per fold → (out-of-fold probabilities, embedding)."""
    sink(ev.StageChanged("label_issues", f"Building {model.spec.label}"))
    images, labels, k = data.images, data.labels, data.k
    feature_model, _head = split_for_feature_cache(model.build())
    # the trainer's traced forward pass, with its progress
    feats, _ = compute_features(feature_model, feature_batches_of((images, labels), model.batch_size),
                                FeatureOutput(len(images)), task="Computing features", sink=sink, cancel=cancel)
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    probs = np.zeros((len(images), model.n_classes), np.float64)
    for f in range(k):
        raise_if_cancelled(cancel)
        train, test = data.fold_of != f, data.fold_of == f
        w, b = fit_softmax(z[train], labels[train], model.n_classes, seed=model.seed + f)
        probs[test] = softmax_predict(z[test], w, b)
        sink(ev.TaskProgress(task=TASK, done=f + 1, total=k, detail=f"fold {f + 1} of {k}"))
    return probs, normalise_rows(feats)


def fold_model_probabilities(model: FoldModel, data: FoldData, *, sink, cancel):
    """A network trained per fold on the other folds → (out-of-fold probabilities, pixel embedding).

    One model, traced once: each fold starts again from the same initial weights and a fresh optimizer
    state (rebuilding and re-tracing a model per fold cost ~5 s a fold on a CPU).
    """
    import keras

    keras.utils.set_random_seed(model.seed)
    net = model.build()
    optimizer = make_optimizer("adam", model.learning_rate)  # the trainer's optimizers
    net.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", jit_compile=False)
    optimizer.build(net.trainable_variables)
    start_weights = net.get_weights()
    start_state = [v.numpy() for v in optimizer.variables]
    probs = np.zeros((len(data.images), model.n_classes), np.float64)
    for f in range(data.k):
        raise_if_cancelled(cancel)
        sink(ev.TaskProgress(task=TASK, done=f, total=data.k, detail=f"training fold {f + 1} of {data.k}"))
        net.set_weights(start_weights)
        for var, value in zip(optimizer.variables, start_state, strict=True):
            var.assign(value)
        probs[data.fold_of == f] = _train_fold(net, model, data, f, sink=sink, cancel=cancel)
    sink(ev.TaskProgress(task=TASK, done=data.k, total=data.k, detail="folds done"))
    return probs, pixel_embedding(data.images)


def _train_fold(net, model: FoldModel, data: FoldData, f: int, *, sink, cancel) -> np.ndarray:
    """Fit ``net`` on every fold but ``f``; its probabilities for fold ``f``."""
    from cnn_studio.training.callbacks import EventCallback, PhaseFacts

    train, test = data.fold_of != f, data.fold_of == f
    # the trainer's callback: cancel between batches, a NaN/inf loss stops the fold; its epoch events
    # become this fold's progress line
    events = EventCallback(_fold_progress(sink, f, data.k, model.epochs), cancel,
                           PhaseFacts(f"fold {f + 1}", epochs_total=model.epochs, batch_size=model.batch_size))
    net.fit(data.images[train], data.labels[train], epochs=model.epochs, batch_size=model.batch_size,
            verbose=0, shuffle=True, callbacks=[events])
    if events.diverged is not None:
        raise StudioError(f"The label check's network stopped learning in fold {f + 1}: "
                          f"{events.diverged.describe()}.",
                          "Use the pretrained checker (a backbone with ImageNet weights), or a lower "
                          "learning rate.")
    raise_if_cancelled(cancel)
    return net.predict(data.images[test], batch_size=model.batch_size, verbose=0)


def _fold_progress(sink: ev.EventSink, fold: int, folds: int, epochs: int) -> ev.EventSink:
    """A sink that turns a fold's epoch events into the label check's progress line (others pass through)."""

    def relay(event: object) -> None:
        if isinstance(event, ev.EpochEnded):
            sink(ev.TaskProgress(task=TASK, done=fold, total=folds,
                                 detail=f"training fold {fold + 1} of {folds}, epoch {event.epoch + 1} of {epochs}"))
        elif not isinstance(event, (ev.EpochStarted, ev.BatchEnded)):
            sink(event)

    return relay
