"""Which precision and which distribution strategy a run uses, chosen from the visible devices.

* One or more GPUs and ``precision="auto"`` → ``mixed_float16`` (about 2x faster on tensor cores;
  the classifier's last layer stays float32 so probabilities are exact enough).
* More than one GPU → ``tf.distribute.MirroredStrategy`` (data parallel on one machine); otherwise
  the default strategy.
* Several machines: wrap the same code in ``tf.distribute.MultiWorkerMirroredStrategy`` with a
  ``TF_CONFIG`` describing the cluster (each worker runs ``cnn-studio train`` with the same
  arguments and its own ``TF_CONFIG`` task index). Not automatic: it needs a shared file system
  for the run folder and is documented in docs/architecture.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def visible_gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def choose_precision(precision="auto") -> str:
    """The Keras dtype policy for a run: a ``TrainConfig`` or its ``precision`` setting.

    "auto" gives "mixed_float16" when a GPU is visible and "float32" otherwise; "float32" and
    "mixed_float16" are returned as asked. Apply it with :func:`precision_policy`.
    """
    precision = getattr(precision, "precision", precision)
    if precision == "auto":
        return "mixed_float16" if visible_gpus() else "float32"
    return precision


@contextlib.contextmanager
def precision_policy(policy: str) -> Iterator[None]:
    """Set Keras' global dtype policy for the duration of a build/fit, then restore it."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def distribution_strategy():
    """MirroredStrategy when more than one GPU is visible, else TensorFlow's default strategy."""
    import tensorflow as tf

    if len(visible_gpus()) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
