"""Frozen-phase feature cache: run the frozen backbone once, then train the head on its features.

While the backbone is frozen and no augmentation is on, every epoch would push the same images
through the same (expensive) backbone to get the same pooled features. We compute them once
(batched, cancellable, with progress) and fit the head on the arrays: the head model shares its
Dropout and Dense layers with the full classifier, so the full model is trained too. Dropout
still acts at training time, so the two paths learn the same thing; epochs after the first cost
only the head's few matrix multiplications.

Where the features go is decided by the trainer (``cache_choice.choose_feature_cache``, the
same rule as the decoded images): in memory (numpy arrays) when N × width float32 fit
comfortably, else written batch by batch into a ``.npy`` file (``path``) that the head's epochs
read batch by batch (a memory map: only the batches in use are in memory), else not at all
(the head phase then runs the full model on the images, as with augmentation).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.data.pipeline import without_autotune
from cnn_studio.training.eta import EtaProgress


@dataclass(frozen=True)
class FeatureOutput:
    """The features array :func:`compute_features` fills: how many rows at most, and its file (None: in memory).

    With ``path`` the features are written there batch by batch (a ``.npy`` file, opened as a
    read-only memory map when done) instead of being gathered in memory; ``count`` sizes the file
    and the progress (files the pipeline could not decode make the result shorter, never longer).
    """

    count: int
    path: str | Path | None = None


def compute_features(feature_model, dataset, output: FeatureOutput, *, task: str = "Computing features",
                     sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None):
    """Run ``feature_model`` over a batched ``(images, labels)`` dataset → (features, labels) arrays.

    The features are what the model gives per image: pooled features, or a frozen part's
    activations (:mod:`~cnn_studio.training.activation_cache`); the dataset may also be any
    iterable of ``(array, labels)`` batches. ``output``: their count and where they go.
    """
    count, path = output.count, output.path
    shape = tuple(int(d) for d in feature_model.output_shape[1:])  # (width,), or (h, w, c) for activations
    out = None
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(max(count, 0), *shape))
    feats, labels = [], []
    done = 0
    forward = _graph_forward(feature_model)
    progress = EtaProgress(sink, task, count)  # "0 of N, starting" before the first (slowest: traced) batch
    for images, y in dataset:
        raise_if_cancelled(cancel)
        batch = np.asarray(forward(images), dtype=np.float32)
        if out is not None:
            if done + len(batch) > len(out):
                raise RuntimeError(f"More images than expected ({done + len(batch)} > {len(out)}) for {path}.")
            out[done:done + len(batch)] = batch
        else:
            feats.append(batch)
        labels.append(np.asarray(y))
        done += len(labels[-1])
        progress.update(done)
    y_all = np.concatenate(labels) if labels else np.zeros((0,), np.int32)
    if out is not None:
        out.flush()
        del out
        return np.load(path, mmap_mode="r")[:done], y_all
    if not feats:
        return np.zeros((0, *shape), np.float32), y_all
    return np.concatenate(feats), y_all


def _graph_forward(feature_model):
    """``feature_model(images, training=False)`` as a TensorFlow graph function.

    Called eagerly, Keras runs the backbone op by op from Python (profiled: VGG16's convolutions
    went through TensorFlow's eager fallback, 7 of the 10 s the features of 240 images took on a
    2-core CPU); traced once, the same work runs as one graph. The last, smaller batch traces once
    more (``reduce_retracing`` then makes the batch dimension unknown). NumPy batches (cached
    activations) are made tensors first: passed as they are, each would be traced again.
    """
    import tensorflow as tf

    traced = tf.function(lambda images: feature_model(images, training=False), reduce_retracing=True)
    return lambda images: traced(tf.convert_to_tensor(images))  # a NumPy batch too (one trace per shape)


def remove_feature_files(folder: str | Path) -> None:
    """Delete the features written to disk (once the head phase no longer needs them)."""
    shutil.rmtree(folder, ignore_errors=True)


def _from_disk(xy, batch_size: int, seed: int, shuffle: bool):
    """Batches of a memory-mapped feature array, read batch by batch (labels stay in memory)."""
    import tensorflow as tf

    features, labels = xy
    labels = np.asarray(labels, np.int32)
    shape = list(features.shape[1:])

    def gather(idx):
        idx = np.sort(idx)  # reads in file order; a batch's order does not matter to training
        return np.asarray(features[idx], np.float32), labels[idx]

    ds = tf.data.Dataset.range(len(labels))
    if shuffle:
        ds = ds.shuffle(max(len(labels), 1), seed=seed, reshuffle_each_iteration=True)

    def load(idx):
        x, y = tf.numpy_function(gather, [idx], (tf.float32, tf.int32), stateful=False)
        x.set_shape([None, *shape])
        y.set_shape([None])
        return x, y

    return without_autotune(ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


def feature_batches_of(xy, batch_size: int):
    """``(features, labels)`` arrays (memory-mapped or not) as in-order batches, read one at a time."""
    x, y = xy
    for i in range(0, len(y), batch_size):
        yield np.asarray(x[i:i + batch_size], np.float32), np.asarray(y[i:i + batch_size])


def feature_datasets(train_xy, val_xy, batch_size: int, seed: int):
    """tf.data datasets over cached features (or activations): train reshuffled each epoch, val in order.

    In-memory arrays become tensors; memory-mapped ones (``FeatureOutput(count, path)``) are read
    batch by batch.
    """
    import tensorflow as tf

    if isinstance(train_xy[0], np.memmap) or isinstance(val_xy[0], np.memmap):
        return _from_disk(train_xy, batch_size, seed, True), _from_disk(val_xy, batch_size, seed, False)
    train = (tf.data.Dataset.from_tensor_slices(train_xy)
             .shuffle(max(len(train_xy[1]), 1), seed=seed, reshuffle_each_iteration=True)
             .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    val = tf.data.Dataset.from_tensor_slices(val_xy).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return without_autotune(train), without_autotune(val)
