"""The values a run's phases share, named: the run in progress, what was prepared for it, one ``fit_all``.

* :class:`RunContext` — one training run in progress (folder, events, cancel, time budget, skipped files);
* :class:`PreparedRun` — what :func:`cnn_studio.training.run_data.prepare` made ready (datasets, model recipe, devices);
* :class:`Fit` — what every phase of one :func:`cnn_studio.training.phases.fit_all` shares (the model among them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnn_studio.backbones import registry
from cnn_studio.backbones.activation_split import KeptActivations
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken
from cnn_studio.core.paths import RunLayout
from cnn_studio.training import activation_cache
from cnn_studio.training.config import TrainConfig
from cnn_studio.training.devices import visible_gpus
from cnn_studio.training.time_budget import Budget


@dataclass
class RunContext:
    """One training run in progress: its folder, where its events go, its cancel token and time budget."""

    layout: RunLayout
    sink: ev.EventSink
    cancel: CancelToken | None
    budget: Budget
    skipped: dict[str, str] = field(default_factory=dict)  # files dropped while decoding → reason (skipped.csv)
    kept_validation: KeptActivations | None = None  # the validation activations training kept, for the check after it


@dataclass
class PreparedRun:
    """The datasets and the model's recipe for one attempt at a run (``run_data.prepare``)."""

    data: object  # pipeline.Datasets: the raw datasets, their counts, steps and skipped files
    train_ds: object  # one-hot labelled
    val_ds: object
    class_weight: dict[int, float] | None
    spec: object  # the backbone's registry spec
    size: int  # image size in px
    n_classes: int
    policy: object  # the precision policy
    strategy: object  # the tf.distribute strategy
    tensorboard: bool
    images_in_memory: int = 0  # bytes of decoded images kept in memory (cache="memory")


@dataclass
class Fit:
    """What every phase of one ``phases.fit_all`` shares."""

    layout: RunLayout
    config: TrainConfig
    data: object
    train_ds: object
    val_ds: object
    class_weight: dict | None
    n_classes: int
    model: object
    loss: object
    sink: ev.EventSink
    cancel: CancelToken | None
    budget: Budget
    tensorboard: bool
    images_in_memory: int
    best: float
    saved_optimizer: object = None
    forward_images_per_s: float = 0.0  # measured while computing features (0: not measured)
    left_out: list[str] = field(default_factory=list)
    activations: activation_cache.Activations | None = None  # the frozen layers' output, for fine-tuning

    def one_hot(self, ds):
        import tensorflow as tf

        n = self.n_classes
        return ds.map(lambda x, y: (x, tf.one_hot(y, n)), num_parallel_calls=tf.data.AUTOTUNE)


def jit_compile(config: TrainConfig) -> bool | str:
    """``compile``'s ``jit_compile`` for ``config.jit``: "auto" (Keras: XLA on a GPU only), True or False."""
    return {"on": True, "off": False}.get(getattr(config, "jit", "auto"), "auto")


XLA_MAX_SIDE = 7  # XLA on a CPU is faster on VGG's 4×4 activations (64 px), slower on its 14×14 (224 px)


def upper_jit_compile(config: TrainConfig, side: int) -> bool | str:
    """``jit_compile`` for the upper part fine-tuned on kept activations ``side`` × ``side`` cells large: as
    :func:`jit_compile`, except that "auto" on a computer without a GPU follows what was measured
    (bench/xla_fine_tune.py): XLA for a backbone marked ``Backbone.xla_on_cpu`` on activations of at most
    :data:`XLA_MAX_SIDE` cells a side, else Keras' own kernels."""
    asked = jit_compile(config)
    if asked != "auto" or visible_gpus():
        return asked
    return bool(registry.get(config.backbone).xla_on_cpu and side <= XLA_MAX_SIDE)
