"""Learning-rate finder: a short sweep with the rate rising exponentially, loss plotted against rate.

As users of fastai know it (Smith, "Cyclical Learning Rates", 2017): train for ``steps`` batches
while the learning rate grows from ``start`` to ``end`` by the same factor each batch, record each
batch's loss, stop once the loss has blown up (4× its lowest), then put the weights back as they
were. The loss first stays flat (rate too small to matter), then falls, then rises (too large).
The suggestion lies in the falling part: the rate where the (smoothed) loss falls fastest against
log(rate) within two decades below its minimum (and at most a third of the rate with the lowest
loss); without a clear descent, a tenth of the rate with the lowest loss (fastai's "steep" and "min/10").

The trainer's automatic schedule runs it on the cached features of the frozen backbone (the head
is a Dropout and a Dense layer: 100 batches take well under a second) to choose the head's rate;
``cnn-studio lr-find`` runs it on a dataset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, astuple, dataclass

import numpy as np

from cnn_studio.backbones import registry
from cnn_studio.backbones.classifier import build_classifier, freeze_backbone, split_for_feature_cache
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.data.pipeline import make_datasets
from cnn_studio.training.feature_cache import FeatureOutput, compute_features

START_RATE = 1e-7
END_RATE = 10.0
STEPS = 100
SMOOTHING = 0.9  # exponential moving average of the batch losses (bias-corrected)
DIVERGED = 4.0  # stop when the smoothed loss exceeds this many times its lowest
SKIP_START = 5  # the curve's first points rest on one to five batches: a lucky first batch is no minimum (fastai skips 5)
MIN_SUGGESTION, MAX_SUGGESTION = 1e-5, 0.1  # a head rate outside this is never a good idea


@dataclass(frozen=True)
class SweepRange:
    """The rates a sweep tries: ``steps`` batches, rising by the same factor each from ``start`` to ``end``."""

    start: float = START_RATE
    end: float = END_RATE
    steps: int = STEPS


@dataclass(frozen=True)
class LrFinding:
    """The sweep: ``rates`` and smoothed ``losses`` (same length), the ``suggestion`` and how it was chosen."""

    rates: tuple[float, ...]
    losses: tuple[float, ...]
    suggestion: float
    reason: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rates"], d["losses"] = list(self.rates), list(self.losses)
        return d

    @property
    def falling(self) -> tuple[int, int]:
        """Indices ``(first, lowest)`` of the falling part: from where the loss starts to fall to its minimum."""
        return 0, lowest_index(self.losses)


def make_optimizer(name: str, lr: float):
    """The Keras optimizer ``name`` (``config.OPTIMIZERS``) at learning rate ``lr``."""
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr)


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """Bias-corrected exponential moving average (fastai's), so the first points are not pulled to 0."""
    out, avg = [], 0.0
    for i, v in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** i))
    return out


def lowest_index(losses) -> int:
    """Where a (smoothed) loss curve is lowest, its first :data:`SKIP_START` points left out when it is long enough."""
    loss = np.asarray(losses, float)
    if not len(loss):
        return 0
    skip = SKIP_START if len(loss) > 2 * SKIP_START else 0
    return skip + int(np.argmin(loss[skip:]))


def suggest(rates: list[float], losses: list[float]) -> tuple[float, str]:
    """The suggested rate of a (smoothed) loss curve and the reason, in words."""
    r, loss = np.asarray(rates, float), np.asarray(losses, float)
    if len(r) < 5:
        return float(r[0] if len(r) else 1e-3), "too few batches to tell; the smallest rate tried"
    lowest = lowest_index(loss)
    min_rate = float(r[lowest])
    window = [i for i in range(1, lowest) if r[i] >= min_rate / 100]  # two decades below the minimum
    if len(window) >= 3:
        slope = np.gradient(loss[:lowest + 1], np.log(r[:lowest + 1]))
        steep = min(window, key=lambda i: slope[i])
        if slope[steep] < 0:
            rate = min(float(r[steep]), min_rate / 3)
            why = f"where the loss falls fastest (its lowest is at {min_rate:.2g})"
            return _clamped(rate, why)
    return _clamped(min_rate / 10, f"a tenth of the rate with the lowest loss ({min_rate:.2g})")


def _clamped(rate: float, why: str) -> tuple[float, str]:
    clamped = min(max(rate, MIN_SUGGESTION), MAX_SUGGESTION)
    if clamped != rate:
        return clamped, f"{why}, kept within {MIN_SUGGESTION:g}–{MAX_SUGGESTION:g}"
    return rate, why


def sweep(model, batches: Callable[[], Iterator], loss_fn, *, optimizer: str = "adam",
          rates: SweepRange | None = None, cancel: CancelToken | None = None) -> LrFinding:
    """Run the sweep on ``model`` (its weights are put back afterwards) over ``rates`` (default: :class:`SweepRange`).

    ``batches()`` returns an iterator of ``(x, y_one_hot)`` batches; it is called again when it runs
    out before ``steps`` batches.
    """
    import tensorflow as tf

    start, end, steps = astuple(rates or SweepRange())
    saved = model.get_weights()
    opt = make_optimizer(optimizer, start)
    variables = model.trainable_variables
    opt.build(variables)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rates, raw = [], []
    it = batches()
    factor = (end / start) ** (1 / max(steps - 1, 1))
    try:
        for i in range(steps):
            raise_if_cancelled(cancel)
            try:
                x, y = next(it)
            except StopIteration:
                it = batches()
                x, y = next(it)
            rate = start * factor ** i
            opt.learning_rate.assign(rate)
            value = float(step(x, y))
            if not math.isfinite(value):
                break
            rates.append(rate)
            raw.append(value)
            smoothed = smooth(raw)
            if i > 5 and smoothed[-1] > DIVERGED * min(smoothed):
                break
    finally:
        model.set_weights(saved)
    losses = smooth(raw)
    rate, why = suggest(rates, losses)
    return LrFinding(tuple(rates), tuple(losses), rate, why)


def feature_batches(features, labels, n_classes: int, batch_size: int, seed: int) -> Callable[[], Iterator]:
    """``batches`` for :func:`sweep` over cached features (in memory or memory-mapped), shuffled each pass."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, np.int64)
    eye = np.eye(n_classes, dtype=np.float32)

    def batches():
        order = rng.permutation(len(labels))
        for i in range(0, len(order), batch_size):
            idx = np.sort(order[i:i + batch_size])
            yield np.asarray(features[idx], np.float32), eye[labels[idx]]

    return batches


def find_learning_rate(config, split, *, sink=None, cancel: CancelToken | None = None) -> LrFinding:
    """The sweep for ``config`` on ``split``'s training images, as the automatic schedule runs it.

    A pretrained backbone: the frozen backbone's features are computed once (with progress) and the
    head is swept on them. Without pretrained weights: the whole network is swept on the images.
    """
    import keras
    import tensorflow as tf

    sink = sink or ev.null_sink
    config.validate()
    spec = registry.get(config.backbone)
    size = spec.image_size(config.image_size)
    n = len(split.class_names)
    keras.utils.set_random_seed(config.seed)
    sink(ev.StageChanged(task="lr-find", stage="Building model", detail=f"{spec.label} at {size}x{size} px"))
    model = build_classifier(spec, n, weights=config.weights, image_size=size, dropout=config.dropout)
    data = make_datasets(split, size, config.batch_size, resize=config.resize, cache="none", seed=config.seed,
                         dtype="uint8")
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    if config.weights_choice.pretrained:
        freeze_backbone(model)
        feature_model, head = split_for_feature_cache(model)
        x, y = compute_features(feature_model, data.train, FeatureOutput(data.train_count),
                                task="Computing features (training images)", sink=sink, cancel=cancel)
        batches = feature_batches(x, y, n, config.batch_size, config.seed)
        return sweep(head, batches, loss, optimizer=config.optimizer, cancel=cancel)

    def image_batches():
        for images, labels in data.train:
            yield images, tf.one_hot(labels, n)

    sink(ev.StageChanged(task="lr-find", stage="Sweeping the learning rate", detail=f"{STEPS} batches"))
    return sweep(model, image_batches, loss, optimizer=config.optimizer, cancel=cancel)
