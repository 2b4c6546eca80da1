"""What a layer sees: feature maps of one image, the first layer's filters, and a layer tap.

:class:`LayerTap` runs a classifier and also returns the output of one layer, even a layer deep
inside the nested "backbone" model, where ``keras.Model(model.inputs, layer.output)`` fails
because the layer belongs to the backbone's own graph. It runs the outer layers before the
backbone, then a two-output copy of the backbone ``Model(inner.inputs, [layer.output,
inner.output])``, then the outer layers after it. Grad-CAM differentiates through the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_studio.core.errors import ConfigError
from cnn_studio.explain.architecture import (
    PATH_SEP,
    full_path,
    is_nested_model,
    iter_layers,
    layer_kind,
    output_shape,
    resolve_layer,
)
from cnn_studio.explain.colormap import apply_colormap


def _outer_layers(model) -> list:
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _is_chain(model, layers: list) -> bool:
    """True when each outer layer takes exactly the previous one's output (as our classifier does)."""
    try:
        prev = list(model.inputs)
        for layer in layers:
            nodes = layer._inbound_nodes
            if len(nodes) != 1 or len(prev) != 1:
                return False
            ins = list(nodes[0].input_tensors)
            if len(ins) != 1 or ins[0] is not prev[0]:
                return False
            prev = list(nodes[0].output_tensors)
        return len(prev) == 1 and prev[0] is model.outputs[0]
    except AttributeError:
        return False


class LayerTap:
    """Callable ``tap(images) -> (layer_output, model_output)`` for the layer at ``path``.

    ``tap(images, logits=True)`` returns the pre-softmax scores of a final softmax Dense layer
    (what Grad-CAM differentiates; the softmax saturates) when ``gives_logits`` is true, else the
    model's output. Works on tensors inside a
    ``tf.GradientTape``.

    Raises
    ------
    ConfigError
        If the path names no layer, or the model is not a chain of layers around one nested model.
    """

    def __init__(self, model, path: str) -> None:
        import keras

        self.model = model
        self.path = full_path(model, path)
        self.layer = resolve_layer(model, self.path)
        self.layers = _outer_layers(model)
        head, _, tail = self.path.partition(PATH_SEP)
        outer = model.get_layer(head)
        self.index = self.layers.index(outer)
        if not _is_chain(model, self.layers):
            if tail:
                raise ConfigError(
                    f"Cannot look inside {model.name}: its outer layers are not a simple chain.",
                    "Explanations work on models made by CNN Studio; retrain the model in CNN Studio.")
            self._direct = keras.Model(_single(model.inputs), [outer.output, model.outputs[0]])
            self.gives_logits = False
            return
        self._direct = None
        self.gives_logits = _is_softmax_dense(self.layers[-1])
        self.inner = keras.Model(_single(outer.inputs),
                                 [outer.get_layer(tail).output, outer.outputs[0]]) if tail else None

    def __call__(self, images, *, logits: bool = False):
        if self._direct is not None:
            return tuple(self._direct(images, training=False))
        x = images
        tapped = None
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == self.index and self.inner is not None:
                tapped, x = self.inner(x, training=False)
                continue
            if i == last and logits and _is_softmax_dense(layer):
                from keras import ops

                x = ops.add(ops.matmul(ops.cast(x, layer.kernel.dtype), layer.kernel), layer.bias)
            else:
                x = layer(x, training=False)
            if i == self.index:
                tapped = x
        return tapped, x


def _single(inputs: list):
    """A lone input tensor rather than a one-element list (Keras warns when a list-input model gets a tensor)."""
    return inputs[0] if len(inputs) == 1 else inputs


def _is_softmax_dense(layer) -> bool:
    import keras

    act = getattr(layer, "activation", None)
    return (isinstance(layer, keras.layers.Dense) and layer.use_bias
            and getattr(act, "__name__", "") == "softmax")


def as_batch(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` or ``(1, H, W, C)`` → float32 ``(1, H, W, C)``: RGB 0–255 (C = 3), or a multi-band
    model's C raw bands."""
    arr = np.asarray(image, np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] != 1:
        raise ConfigError(f"Image: expected an array of shape (H, W, 3) (RGB) or (H, W, bands), received shape "
                          f"{np.shape(image)}.")
    return arr


@dataclass(frozen=True)
class LayerInfo:
    """A layer whose output is a stack of 2-D feature maps."""

    name: str
    kind: str
    output_shape: tuple
    strides: tuple | None = None
    padding: str | None = None
    kernel_size: tuple | None = None


def list_feature_layers(model) -> list[LayerInfo]:
    """Every layer with a 4-D (batch, h, w, channels) output, backbone layers as "backbone/<name>".

    Nested models themselves are not listed (their layers are).
    """
    out = []
    for path, layer in iter_layers(model):
        shape = output_shape(layer)
        if len(shape) != 4 or is_nested_model(layer):
            continue
        strides = getattr(layer, "strides", None)
        kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        out.append(LayerInfo(name=path, kind=layer_kind(layer), output_shape=shape,
                             strides=tuple(strides) if strides is not None else None,
                             padding=getattr(layer, "padding", None),
                             kernel_size=tuple(kernel) if kernel is not None else None))
    return out


@dataclass(frozen=True)
class FeatureMaps:
    """Feature maps of one image at ``layer``: ``maps`` float32 (C, h, w), each scaled to [0, 1]."""

    layer: str
    maps: np.ndarray
    total_channels: int
    channels: tuple[int, ...]


def _normalise(maps: np.ndarray) -> np.ndarray:
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    return ((maps - lo) / span).astype(np.float32)


def feature_maps(model, image: np.ndarray, layer_name: str, *, max_channels: int = 16) -> FeatureMaps:
    """The output of ``layer_name`` for one image, its ``max_channels`` most active channels.

    Parameters
    ----------
    model : the classifier.
    image : raw RGB 0–255, ``(H, W, 3)`` (e.g. ``pipeline.load_image``).
    layer_name : a path from :func:`list_feature_layers` ("backbone/block1_conv"); a bare inner
        name works when unambiguous.
    max_channels : how many channels to return, the most active first (by mean absolute value).

    Raises
    ------
    ConfigError
        If the layer does not exist or its output is not a stack of 2-D maps.
    """
    tap = LayerTap(model, layer_name)
    out, _ = tap(as_batch(image))
    arr = np.asarray(out)
    if arr.ndim != 4:
        raise ConfigError(f"Layer {tap.path}: expected 2-D feature maps, received output shape {arr.shape}.",
                          "Choose a convolution, pooling or activation layer (see --list-layers).")
    maps = np.moveaxis(arr[0], -1, 0).astype(np.float32)
    order = np.argsort(-np.abs(maps).mean(axis=(1, 2)), kind="stable")[: max(1, max_channels)]
    return FeatureMaps(layer=tap.path, maps=_normalise(maps[order]), total_channels=int(maps.shape[0]),
                       channels=tuple(int(c) for c in order))


def grid(maps: np.ndarray, cols: int | None = None, *, cell: int = 64, gap: int = 2,
         colormap: str | None = "viridis") -> np.ndarray:
    """Tile maps ``(C, h, w)`` in [0, 1] into one uint8 RGB image (nearest-neighbour upscaled).

    Parameters
    ----------
    cols : maps per row (default: a near-square grid).
    cell : each map is enlarged by a whole factor to at least ``cell`` pixels high.
    gap : white pixels between maps.
    colormap : a :mod:`colormap` name, or ``None`` for grey.
    """
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    n, h, w = maps.shape
    cols = max(1, min(cols or int(np.ceil(np.sqrt(n))), n))
    rows = int(np.ceil(n / cols))
    k = max(1, int(np.ceil(cell / max(h, 1))))
    ch, cw = h * k, w * k
    canvas = np.full((rows * ch + (rows - 1) * gap, cols * cw + (cols - 1) * gap, 3), 255, np.uint8)
    for i in range(n):
        big = np.repeat(np.repeat(maps[i], k, axis=0), k, axis=1)
        tile = (apply_colormap(big, colormap) if colormap
                else np.repeat(np.round(np.clip(big, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2))
        r, c = divmod(i, cols)
        canvas[r * (ch + gap): r * (ch + gap) + ch, c * (cw + gap): c * (cw + gap) + cw] = tile
    return canvas


def first_layer_filters(model, channels: tuple[int, int, int] | None = None) -> np.ndarray:
    """The learned filters of the first convolution on RGB input: float32 ``(N, k, k, 3)`` in [0, 1].

    The frozen 1x1 colour conversion some backbones carry ("preprocess_caffe") and a multi-band
    model's frozen band layers ("band_select", "band_normalize") are skipped. Each filter is scaled
    to [0, 1] on its own. A multi-band model's first convolution takes K bands: ``channels`` names
    the three of its input channels shown as R, G, B (0-based, e.g. from the run's RGB bands).

    Raises
    ------
    ConfigError
        If the model has no such convolution, or its K input channels need ``channels``.
    """
    import keras

    for path, layer in iter_layers(model):
        name = path.split(PATH_SEP)[-1]
        if not isinstance(layer, keras.layers.Conv2D) or name.startswith(("preprocess", "band_")):
            continue
        kernel = np.asarray(layer.kernel)
        if kernel.ndim == 4 and channels is not None and max(channels) < kernel.shape[2]:
            kernel = kernel[:, :, list(channels), :]
        elif kernel.ndim == 4 and kernel.shape[2] != 3:
            raise ConfigError(f"The first convolution of {model.name} takes {kernel.shape[2]} bands, not RGB.",
                              "Give the three bands to show as red, green and blue.")
        if kernel.ndim == 4 and kernel.shape[2] == 3:
            filters = np.moveaxis(kernel, -1, 0).astype(np.float32)
            lo = filters.min(axis=(1, 2, 3), keepdims=True)
            hi = filters.max(axis=(1, 2, 3), keepdims=True)
            return ((filters - lo) / np.where(hi - lo > 1e-12, hi - lo, 1.0)).astype(np.float32)
    raise ConfigError(f"{model.name} has no convolution on RGB input whose filters could be shown.")
