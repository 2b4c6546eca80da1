"""Frozen-phase feature cache: run the frozen backbone once, then train the head on its features.

While the backbone is frozen and no augmentation is on, every epoch would push the same images
through the same (expensive) backbone to get the same pooled features. We compute them once
(batched, cancellable, with progress) and fit the head on the arrays: the head model shares its
Dropout and Dense layers with the full classifier, so the full model is trained too. Dropout
still acts at training time, so the two paths learn the same thing; epochs after the first cost
only the head's few matrix multiplications.
"""

from __future__ import annotations

import numpy as np

from cnn_studio import events as ev
from cnn_studio.cancel import CancelToken, raise_if_cancelled


def compute_features(feature_model, dataset, *, count: int, task: str = "Computing features",
                     sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None):
    """Run ``feature_model`` over a batched ``(images, labels)`` dataset → (features, labels) arrays."""
    feats, labels = [], []
    done = 0
    for images, y in dataset:
        raise_if_cancelled(cancel)
        feats.append(np.asarray(feature_model(images, training=False), dtype=np.float32))
        labels.append(np.asarray(y))
        done += len(labels[-1])
        sink(ev.TaskProgress(task=task, done=min(done, count), total=count))
    if not feats:
        width = feature_model.output_shape[-1]
        return np.zeros((0, width), np.float32), np.zeros((0,), np.int32)
    return np.concatenate(feats), np.concatenate(labels)


def feature_datasets(train_xy, val_xy, batch_size: int, seed: int):
    """tf.data datasets over cached features: train reshuffled each epoch, val in order."""
    import tensorflow as tf

    train = (tf.data.Dataset.from_tensor_slices(train_xy)
             .shuffle(max(len(train_xy[1]), 1), seed=seed, reshuffle_each_iteration=True)
             .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    val = tf.data.Dataset.from_tensor_slices(val_xy).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return train, val
