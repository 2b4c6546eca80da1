"""Grad-CAM and Grad-CAM++: which parts of the image made the model choose a class.

The heat map is computed at the resolution of a late convolution (by default the last one, found
inside the nested backbone), from the gradient of the class's pre-softmax score. It is then
enlarged and laid over the user's own, original picture (:func:`explain_file`). For a multi-band
file the model gets its raw bands and the heat map is laid over an RGB composite of the three
bands the user picks (``rgb``, 1-based; default the run's RGB bands, else the file's B04/B03/B02 or 1/2/3).

References: Selvaraju et al., "Grad-CAM", ICCV 2017; Chattopadhay et al., "Grad-CAM++", WACV 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_studio.core.errors import ConfigError
from cnn_studio.data.bands import composite, default_rgb_bands, is_multiband_key, probe_bands, read_bands
from cnn_studio.data.decode import decode_key
from cnn_studio.data.pipeline import resize_image
from cnn_studio.explain.architecture import iter_layers, output_shape
from cnn_studio.explain.colormap import apply_colormap
from cnn_studio.explain.feature_maps import LayerTap, as_batch

METHODS = ("gradcam", "gradcam++")
_CAM_TYPES = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Activation", "ReLU", "LeakyReLU", "ELU",
              "PReLU", "Add", "Concatenate", "Multiply", "BatchNormalization"}


@dataclass(frozen=True)
class GradCam:
    """A class-activation heat map: ``heatmap`` float32 (h, w) in [0, 1] at the layer's resolution."""

    heatmap: np.ndarray
    class_index: int
    class_prob: float
    layer_name: str
    method: str = "gradcam"


def find_last_conv_layer(model) -> str:
    """Path of the last layer with a 4-D output that is a convolution, activation or merge.

    Looks inside the nested "backbone" model, e.g. ``"backbone/block4_relu"`` or
    ``"backbone/out_relu"``.

    Raises
    ------
    ConfigError
        If the model has no such layer (it is not a CNN).
    """
    found = None
    for path, layer in iter_layers(model):
        if type(layer).__name__ in _CAM_TYPES and len(output_shape(layer)) == 4:
            found = path
    if found is None:
        raise ConfigError(f"{model.name} has no convolution layer to explain.",
                          "Grad-CAM needs a convolutional network; choose a CNN backbone.")
    return found


def gradcam(model, image: np.ndarray, *, class_index: int | None = None, layer: str | None = None,
            method: str = "gradcam") -> GradCam:
    """Grad-CAM (or Grad-CAM++) heat map of ``class_index`` for one image.

    Parameters
    ----------
    model : the classifier (raw RGB 0–255 in, class probabilities out).
    image : raw RGB 0–255 ``(H, W, 3)`` at the model's input size (``pipeline.load_image``).
    class_index : the class to explain; ``None`` explains the predicted class.
    layer : layer path (see ``feature_maps.list_feature_layers``); default :func:`find_last_conv_layer`.
    method : "gradcam" or "gradcam++".

    Returns
    -------
    GradCam
        The heat map (all zeros when nothing speaks for the class), the class and its probability.

    Examples
    --------
    >>> cam = gradcam(model, load_image("leaf.jpg", 224))  # doctest: +SKIP
    >>> cam.heatmap.shape, cam.layer_name  # doctest: +SKIP
    ((7, 7), 'backbone/out_relu')
    """
    if method not in METHODS:
        raise ConfigError(f"Explanation method: expected one of {', '.join(METHODS)}, received {method!r}.")
    tap = LayerTap(model, layer or find_last_conv_layer(model))
    maps, classes, probs = _cams(tap, as_batch(image), class_index, method)
    return GradCam(heatmap=maps[0], class_index=int(classes[0]), class_prob=float(probs[0]), layer_name=tap.path,
                   method=method)


def gradcam_batch(model, images: np.ndarray, *, layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heat maps of the predicted class for a batch of images, in one pass.

    ``images``: raw ``(N, H, W, C)`` at the model's input size. Returns ``(maps, classes)``: float32
    ``(N, h, w)`` maps, each in [0, 1] (what :func:`gradcam` gives image by image), and the classes they
    explain. The images do not affect each other's maps (the backbone runs in inference mode).
    """
    tap = LayerTap(model, layer or find_last_conv_layer(model))
    maps, classes, _ = _cams(tap, np.asarray(images, np.float32), None, "gradcam")
    return maps, classes


def _cams(tap: LayerTap, batch: np.ndarray, class_index: int | None, method: str):
    """Heat maps ``(N, h, w)`` in [0, 1], the classes explained and their probabilities, for ``batch``.

    ``class_index`` None explains each image's predicted class. The gradient of the sum of the images'
    class scores gives each image its own gradient: nothing mixes images in inference mode.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        acts, scores = tap(x, logits=True)
        scores = tf.cast(scores, tf.float32)
        probs = tf.nn.softmax(scores) if tap.gives_logits else scores
        n_classes = int(scores.shape[-1])
        if class_index is None:
            classes = tf.argmax(probs, axis=-1, output_type=tf.int32)
        elif 0 <= int(class_index) < n_classes:
            classes = tf.fill([tf.shape(scores)[0]], int(class_index))
        else:
            raise ConfigError(f"Class index: expected 0 to {n_classes - 1}, received {int(class_index)}.")
        score = tf.reduce_sum(tf.gather(scores, classes, axis=1, batch_dims=1))
    grads = tape.gradient(score, acts)
    if acts.shape.rank != 4 or grads is None:
        raise ConfigError(f"Layer {tap.path} does not produce 2-D maps that the class depends on.",
                          "Choose a convolution layer of the backbone (see --list-layers).")
    a, g = tf.cast(acts, tf.float32), tf.cast(grads, tf.float32)
    if method == "gradcam":
        weights = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
    else:
        g2, g3 = g * g, g * g * g
        denom = 2.0 * g2 + tf.reduce_sum(a, axis=(1, 2), keepdims=True) * g3
        alpha = g2 / tf.where(tf.abs(denom) > 1e-12, denom, tf.ones_like(denom))
        weights = tf.reduce_sum(alpha * tf.nn.relu(g), axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(a * weights, axis=-1)).numpy()
    peaks = cams.reshape(len(cams), -1).max(axis=1) if cams.size else np.zeros(len(cams))
    ok = (peaks > 0) & np.isfinite(peaks)
    maps = np.where(ok[:, None, None], cams / np.where(ok, peaks, 1.0)[:, None, None], 0.0).astype(np.float32)
    classes = classes.numpy()
    return maps, classes, tf.gather(probs, classes, axis=1, batch_dims=1).numpy()


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear enlargement of a heat map to ``size`` = (H, W); float32 in [0, 1]."""

    h, w = int(size[0]), int(size[1])
    img = Image.fromarray(np.asarray(heatmap, np.float32), mode="F")
    out = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), np.float32)
    return np.clip(out, 0.0, 1.0)


def overlay(image_uint8: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.4,
            colormap: str = "jet") -> np.ndarray:
    """Blend a coloured heat map over an RGB image: uint8 ``(H, W, 3)``.

    ``heatmap`` is enlarged to the image's size if needed; ``alpha`` is the heat map's weight.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"Overlay alpha: expected a number from 0 to 1, received {alpha}.")
    img = np.asarray(image_uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    heat = np.asarray(heatmap, np.float32)
    if heat.shape != img.shape[:2]:
        heat = upsample(heat, img.shape[:2])
    colour = apply_colormap(heat, colormap).astype(np.float32)
    blended = (1.0 - alpha) * img[..., :3].astype(np.float32) + alpha * colour
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def heatmap_on_original(heatmap: np.ndarray, original_size: tuple[int, int], image_size: int,
                        resize: str = "stretch") -> np.ndarray:
    """Map a heat map of the model's square input back onto the original ``(H, W)`` picture.

    Undoes the pipeline's resize policy: "stretch" rescales, "crop" puts the map on the central
    square (zero outside it), "pad" drops the padding bands.
    """
    h, w = int(original_size[0]), int(original_size[1])
    if resize == "stretch":
        return upsample(heatmap, (h, w))
    if resize == "crop":
        side = min(h, w)
        out = np.zeros((h, w), np.float32)
        top, left = (h - side) // 2, (w - side) // 2
        out[top:top + side, left:left + side] = upsample(heatmap, (side, side))
        return out
    if resize == "pad":
        s = image_size
        square = upsample(heatmap, (s, s))
        scale = s / max(h, w)
        ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (s - ch) // 2, (s - cw) // 2
        return upsample(square[top:top + ch, left:left + cw], (h, w))
    raise ConfigError(f"Resize policy: expected stretch, pad or crop, received {resize!r}.")


@dataclass(frozen=True)
class ExplainOptions:
    """What to explain in one picture, and how a multi-band file is shown.

    ``class_index``: the class to explain (None: the predicted one); ``method``, ``layer``: see
    :func:`gradcam`; ``rgb``: for a multi-band file, the three 1-based bands of the composite the heat
    map is laid over (default: the run's RGB bands, else :func:`~cnn_studio.data.bands.default_rgb_bands`).
    """

    class_index: int | None = None
    method: str = "gradcam"
    layer: str | None = None
    rgb: Sequence[int] | None = None


def explain_file(classifier, path: str | Path, options: ExplainOptions | None = None, *, alpha: float = 0.4,
                 colormap: str = "jet", **fields) -> tuple[np.ndarray, GradCam, np.ndarray]:
    """Explain one image file and draw the heat map over the user's original picture.

    Parameters
    ----------
    classifier : a :class:`~cnn_studio.predict.predictor.Classifier` (the model, and how its pipeline
        sized images: ``image_size``, ``resize``; a multi-band run's ``bands``).
    path : an image file (any format ``decode_file`` reads) or a record key (a slice of a volume).
    options : :class:`ExplainOptions` (class, method, layer, RGB bands); any of its fields may be
        given as keywords (``fields``) instead.
    alpha, colormap : see :func:`overlay`.

    Returns
    -------
    (original uint8 (H, W, 3), GradCam, overlay uint8 (H, W, 3))

    Raises
    ------
    ImageReadError
        If the file cannot be decoded.
    """
    original, _, cam, heat = explain_picture(classifier, path, options, **fields)
    return original, cam, overlay(original, heat, alpha=alpha, colormap=colormap)


def explain_picture(classifier, path: str | Path, options: ExplainOptions | None = None,
                    **fields) -> tuple[np.ndarray, np.ndarray, GradCam, np.ndarray]:
    """Decode ``path``, size it as the model's pipeline does, and run :func:`gradcam` on it.

    ``classifier`` and ``options`` as for :func:`explain_file`. A multi-band file gives the model its
    raw bands; ``original`` is then the RGB composite of the 1-based bands ``rgb`` (default:
    ``bands.rgb`` of the run's :class:`~cnn_studio.data.bands.BandInfo`, else
    :func:`~cnn_studio.data.bands.default_rgb_bands`), windowed by the training statistics when the
    classifier has ``bands``.

    Returns
    -------
    (original uint8 (H, W, 3), model input float32 (S, S, C), GradCam,
    heat map over the original float (H, W) in [0, 1])
    """

    o = replace(options or ExplainOptions(), **fields)
    model, image_size, resize = classifier.model, classifier.image_size, classifier.resize
    bands = getattr(classifier, "bands", None)
    key = str(path)
    if is_multiband_key(key):
        raw = read_bands(key)
        rgb = o.rgb
        if rgb is None:
            rgb = bands.rgb if bands is not None else default_rgb_bands(probe_bands(key).band_names, raw.shape[2])
        windows = bands.windows if bands is not None and len(bands.stats) == raw.shape[2] else None
        original = composite(raw, rgb, windows)
        model_input = np.asarray(resize_image(raw, image_size, resize), np.float32)
    else:
        original = decode_key(key, reduce_to=image_size)  # a large picture is reduced while it is read
        model_input = np.round(np.clip(np.asarray(resize_image(original, image_size, resize)), 0, 255)).astype(
            np.float32)
    cam = gradcam(model, model_input, class_index=o.class_index, layer=o.layer, method=o.method)
    return original, model_input, cam, heatmap_on_original(cam.heatmap, original.shape[:2], image_size, resize)
