"""Multi-band input for an RGB backbone: the band normalisation layer and the pretrained-weights adapter.

The model of a multi-band run (``classifier.build_classifier(..., bands=BandInfo)``) is::

    image (N raw bands) → Resizing → [band_select: frozen 1×1 Conv2D, one-hot, N → K] →
    band_normalize: Normalization (K means/variances) → backbone built with K input channels → head

**band_normalize** folds two steps into one per-band ``(x − mean) / sqrt(variance)``, built as a
frozen 1×1 ``DepthwiseConv2D`` (scale ``1/std``, bias ``−mean/std``: :func:`scale_and_offset`) — a
built-in layer whose weights are variables, so safe_mode loads it and every export works (a
``Normalization`` layer computes the same, but its statistics are captured constants that the
ONNX conversion turns into missing graph inputs):

1. standardise each band with the training set's statistics: ``z = (x − mean_band) / std_band``;
2. give ``z`` the scale the backbone's ImageNet weights expect from the RGB channel ``c`` the band
   stands for (``rgb_bands``: the bands mapped to R, G, B; the other bands stand for the mean of
   the three): a standardised ImageNet pixel of channel ``c`` is ``255 (m_c + s_c z)`` in 0–255
   (``m``, ``s``: ImageNet mean and std in 0–1), which the backbone's preprocess mode turns into
   ``a_c z + b_c`` (:func:`channel_affine`: caffe ``255 s_c z + 255 m_c − caffe_mean_c``; tf
   ``2 s_c z + 2 m_c − 1``; torch ``z``; unit ``s_c z + m_c``; none ``255 (m_c + s_c z)``, the
   backbone rescales inside).

Since ``a z + b = (x − (mean − b std / a)) / (std / a)``, the layer's mean is ``mean − b·std/a`` and
its variance ``(std / a)²`` (:func:`normalization_moments`).

**Pretrained weights with K channels** (:func:`adapt_input_weights`): the backbone is built twice,
with 3 channels (the ImageNet weights loaded as usual) and with K; every weight is copied, except
those of the input stage (the layers up to and including the first convolution), which are rebuilt
along their channel axis: a band mapped to R, G or B gets that channel's slice of the RGB kernel
(caffe-mode backbones — VGG, ResNet50 — were trained on BGR, so R is their kernel's channel 2),
every other band the mean of the three slices, and the whole kernel is scaled by 3/K so that the
first layer's output keeps the size it had with 3 channels. Per-channel ``Normalization`` layers
inside a backbone (EfficientNet's) are mapped the same way, without the scaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnn_studio.backbones.preprocessing import CAFFE_MEAN_BGR, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, MODES
from cnn_studio.core.errors import ConfigError

MIN_STD = 1e-6


def channel_affine(mode: str, channel: int | None) -> tuple[float, float]:
    """``(a, b)``: a standardised value ``z`` of RGB ``channel`` (0 R, 1 G, 2 B; None: their mean)
    becomes ``a z + b`` after the backbone's preprocess ``mode``.

    Examples
    --------
    >>> a, b = channel_affine("tf", 0); round(a, 3), round(b, 3)
    (0.458, -0.03)
    >>> channel_affine("torch", None)
    (1.0, 0.0)
    """
    if mode not in MODES:
        raise ConfigError(f"Preprocessing mode: expected one of {', '.join(MODES)}, received {mode!r}.")
    if channel is None:
        m, s = float(np.mean(IMAGENET_MEAN_RGB)), float(np.mean(IMAGENET_STD_RGB))
        caffe = float(np.mean(CAFFE_MEAN_BGR))
    else:
        m, s = IMAGENET_MEAN_RGB[channel], IMAGENET_STD_RGB[channel]
        caffe = CAFFE_MEAN_BGR[2 - channel]
    if mode == "caffe":
        return 255.0 * s, 255.0 * m - caffe
    if mode == "tf":
        return 2.0 * s, 2.0 * m - 1.0
    if mode == "torch":
        return 1.0, 0.0
    if mode == "unit":
        return s, m
    return 255.0 * s, 255.0 * m  # "none": the backbone takes 0–255 and rescales inside


def normalization_moments(means: Sequence[float], stds: Sequence[float], channel_map: Sequence[int | None],
                          mode: str) -> tuple[list[float], list[float]]:
    """The ``Normalization`` mean and variance per band that standardise it and apply :func:`channel_affine`.

    A band with no spread (a constant band) keeps a standard deviation of 1 (its values pass unscaled).
    """
    out_mean, out_var = [], []
    for mean, std, channel in zip(means, stds, channel_map, strict=True):
        std = float(std) if float(std) > MIN_STD * max(1.0, abs(float(mean))) else 1.0
        a, b = channel_affine(mode, channel)
        out_mean.append(float(mean) - b * std / a)
        out_var.append((std / a) ** 2)
    return out_mean, out_var


def scale_and_offset(mean: Sequence[float], variance: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, offset)`` with ``x · scale + offset = (x − mean) / sqrt(variance)``, float32 per band."""
    std = np.sqrt(np.maximum(np.asarray(variance, np.float64), 0.0))
    std = np.where(std > 0, std, 1.0)
    return (1.0 / std).astype(np.float32), (-np.asarray(mean, np.float64) / std).astype(np.float32)


def band_select_kernel(n_bands: int, selected: Sequence[int]) -> np.ndarray:
    """The one-hot ``(1, 1, N, K)`` kernel of the frozen 1×1 convolution that keeps ``selected`` (1-based) bands."""
    kernel = np.zeros((1, 1, n_bands, len(selected)), np.float32)
    for k, band in enumerate(selected):
        kernel[0, 0, int(band) - 1, k] = 1.0
    return kernel


def kernel_channel(mode: str, channel: int) -> int:
    """Which input channel of a pretrained first kernel holds RGB ``channel`` (caffe backbones are BGR)."""
    return 2 - channel if mode == "caffe" else channel


def adapt_channels(values: np.ndarray, axis: int, channel_map: Sequence[int | None], mode: str,
                   scale: bool) -> np.ndarray:
    """Rebuild a 3-channel weight along ``axis`` for the K channels of ``channel_map``.

    Channel k takes the slice of RGB channel ``channel_map[k]`` (in the kernel's own order, see
    :func:`kernel_channel`), or the mean of the three slices when it is None; ``scale`` multiplies
    the result by 3/K (convolution kernels, so the layer's output keeps its size).
    """
    values = np.asarray(values)
    if values.shape[axis] != 3:
        raise ValueError(f"expected 3 channels on axis {axis}, found shape {values.shape}")
    mean = values.mean(axis=axis, keepdims=True)
    parts = [mean if c is None else np.take(values, [kernel_channel(mode, c)], axis=axis) for c in channel_map]
    out = np.concatenate(parts, axis=axis)
    if scale:
        out = out * (3.0 / len(channel_map))
    return out.astype(values.dtype)


def _is_conv_kernel(weight) -> bool:
    return len(weight.shape) == 4


def adapt_input_weights(source, target, channel_map: Sequence[int | None], mode: str) -> list[str]:
    """Copy a pretrained 3-channel backbone's weights into the same backbone built with K channels.

    ``source`` and ``target`` come from the same constructor (layers matched by position). The
    input stage — layers up to and including the first convolution — is rebuilt by
    :func:`adapt_channels` (the convolution's kernel scaled by 3/K, per-channel normalisation
    statistics not); every other weight is copied as it is.

    Returns the names of the target layers whose weights were adapted.

    Raises
    ------
    ConfigError
        When the two backbones do not line up (a backbone this adapter does not know how to widen).
    """
    src_layers = [layer for layer in source.layers if layer.weights]
    dst_layers = [layer for layer in target.layers if layer.weights]
    if len(src_layers) != len(dst_layers):
        raise ConfigError(f"Cannot adapt {source.name}'s pretrained weights to {len(channel_map)} bands: the layers "
                          "differ.", "Train it from scratch (weights none) or pick another backbone.")
    adapted: list[str] = []
    in_stem = True
    for src, dst in zip(src_layers, dst_layers, strict=True):
        values = []
        touched = False
        for sw, dw in zip(src.get_weights(), dst.weights, strict=True):
            sw = np.asarray(sw)
            if in_stem and _is_conv_kernel(sw) and sw.shape[2] == 3:
                values.append(adapt_channels(sw, 2, channel_map, mode, scale=True))
                touched = True
            elif in_stem and sw.ndim == 1 and sw.shape[0] == 3 and tuple(dw.shape) == (len(channel_map),):
                values.append(adapt_channels(sw, 0, channel_map, mode, scale=False))
                touched = True
            else:
                values.append(sw)
            if tuple(values[-1].shape) != tuple(dw.shape):
                raise ConfigError(f"Cannot adapt {source.name}'s pretrained weights to {len(channel_map)} bands: "
                                  f"layer {dst.name} expects {tuple(dw.shape)}, the pretrained one has {sw.shape}.",
                                  "Train it from scratch (weights none) or pick another backbone.")
        dst.set_weights(values)
        if touched:
            adapted.append(dst.name)
        if in_stem and any(_is_conv_kernel(w) for w in dst.weights):
            in_stem = False
    return adapted
