"""Adversarial images by the Fast Gradient Sign Method (FGSM), on pictures or on a multi-band model's bands.

A multi-band model is perturbed on its raw bands put on a 0–255 scale per band (:class:`BandScale`:
the training set's 0.5–99.5 percentile window of each band), so that an epsilon means the same share
of each band's range as it does of a picture's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnn_studio.data.bands import BandInfo, composite
from cnn_studio.explain.feature_maps import LayerTap


@dataclass(frozen=True)
class BandScale:
    """Raw band values ↔ a 0–255 scale per band (``low`` → 0, ``high`` → 255), for perturbing multi-band images."""

    low: np.ndarray
    span: np.ndarray
    rgb: tuple[int, int, int]

    @classmethod
    def of(cls, bands: BandInfo) -> BandScale:
        low = np.array([s.low for s in bands.stats], np.float32)
        high = np.array([s.high for s in bands.stats], np.float32)
        fallback = np.array([max(s.max - s.min, 1e-6) for s in bands.stats], np.float32)
        span = np.where(high > low, high - low, fallback).astype(np.float32)
        return cls(low, span, bands.rgb)

    def to_units(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.low) / self.span * 255.0).astype(np.float32)

    def from_units(self, u: np.ndarray) -> np.ndarray:
        return (u / 255.0 * self.span + self.low).astype(np.float32)

    def picture(self, x: np.ndarray) -> np.ndarray:
        """The RGB composite of one image, float 0–255 (for the example PNGs)."""
        windows = list(zip(self.low.tolist(), (self.low + self.span).tolist(), strict=True))
        return composite(x, self.rgb, windows).astype(np.float32)


def fgsm(model, images: np.ndarray, labels: Sequence[int], epsilon: float, *, scale: BandScale | None = None) -> np.ndarray:
    """White-box Fast Gradient Sign Method on raw pixels: ``clip(x + epsilon·255·sign(∇x loss), 0, 255)``.

    Parameters
    ----------
    model : the classifier (raw RGB 0–255 in).
    images : float ``(N, H, W, 3)`` raw pixels.
    labels : the true class of each image.
    epsilon : step as a fraction of the 0–255 range (0.01 → at most 2.55 grey levels per pixel).

    scale : for a multi-band model: each band moves by at most ``epsilon`` × its range, unclipped.

    Returns
    -------
    numpy.ndarray
        float32 adversarial images, same shape, in [0, 255] (raw band values with ``scale``).
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(images, np.float32))
    y = tf.convert_to_tensor(np.asarray(labels, np.int64))
    tap = LayerTap(model, model.layers[-1].name)
    with tf.GradientTape() as tape:
        tape.watch(x)
        _, out = tap(x, logits=True)
        out = tf.cast(out, tf.float32)
        if tap.gives_logits:  # from logits: the gradient survives a saturated softmax
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out)
        else:
            loss = -tf.math.log(tf.clip_by_value(tf.gather(out, y, batch_dims=1), 1e-12, 1.0))
    grad = tape.gradient(loss, x)
    if scale is not None:
        return (x + float(epsilon) * tf.constant(scale.span) * tf.sign(grad)).numpy().astype(np.float32)
    adv = x + float(epsilon) * 255.0 * tf.sign(grad)
    return tf.clip_by_value(adv, 0.0, 255.0).numpy().astype(np.float32)
