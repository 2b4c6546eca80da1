"""Backbone + head = the classifier CNN Studio trains, saves and exports.

::

    image (raw RGB 0–255, any size) → Resizing(S, S) → preprocessing layers → backbone (one nested
    layer named "backbone", called with training=False) → GlobalAveragePooling2D "pool"
    → Dropout "head_dropout" → Dense softmax "predictions" (float32)

A multi-band run (``bands``: a :class:`~cnn_studio.data.bands.BandInfo`) takes its N raw bands
instead::

    image (N raw bands) → Resizing → [band_select, frozen 1×1 Conv2D: N → K selected bands]
    → band_normalize (per-band (x − mean) / std, a frozen 1×1 DepthwiseConv2D: training-set band
    statistics folded with the backbone's preprocessing) → backbone built with K input channels → ...

with pretrained weights adapted to K channels (:mod:`cnn_studio.backbones.band_adapter`).

Calling the backbone with ``training=False`` keeps its BatchNormalization layers in inference
mode even after they are unfrozen for fine-tuning (Keras' transfer-learning guide), so a few
hundred images cannot wreck the ImageNet statistics.
"""

from __future__ import annotations

import warnings

from cnn_studio.backbones import band_adapter, fine_tune, registry
from cnn_studio.backbones.fine_tune import CONV, FIXED, NORM, OTHER, FineTunePlan, LayerInfo
from cnn_studio.backbones.preprocessing import preprocessing_layers
from cnn_studio.backbones.registry import Backbone
from cnn_studio.backbones.weights import load_weights_file
from cnn_studio.backbones.weights_store import resolve_weights
from cnn_studio.core.errors import ConfigError, WeightsUnavailable
from cnn_studio.core.paths import keras_cache_dir

BACKBONE_LAYER = "backbone"


def build_backbone(spec: Backbone, image_size: int, weights: str = "none"):
    """The headless feature extractor (no top, no pooling) named ``"backbone"``, weights loaded.

    Parameters
    ----------
    spec : the :class:`~cnn_studio.backbones.registry.Backbone`.
    image_size : the square input side (at least ``spec.min_size``).
    weights : "none", "imagenet" or the path of a weights file (see :func:`resolve_weights`).

    Raises
    ------
    ConfigError
        ``image_size`` below the backbone's minimum.
    WeightsUnavailable
        ImageNet weights neither cached nor downloadable, or a weights file that does not fit.
    """
    image_size = spec.image_size(image_size)
    resolved = resolve_weights(spec, weights, image_size)
    base = spec.build_base(image_size)
    if resolved == "imagenet":
        # The file in Keras' cache, loaded by us: Keras' get_file would delete a file whose hash it
        # does not know (a user's copy) and try to download it again.
        cached = keras_cache_dir() / spec.weights_file_for(image_size)
        try:
            load_weights_file(base, cached, spec)
        except WeightsUnavailable as exc:
            raise WeightsUnavailable(
                f"The ImageNet weights file in Keras' cache does not load into {spec.label}: {exc.message}",
                f"Import the right file with \"Import weights file…\" (or `cnn-studio weights import FILE`): "
                f"CNN Studio's own copy is used before {cached}.") from exc
    elif resolved is not None:
        load_weights_file(base, resolved, spec)
    base.name = BACKBONE_LAYER
    return base


def build_band_backbone(spec: Backbone, image_size: int, weights: str, channel_map: list[int | None]):
    """The backbone for K = ``len(channel_map)`` input channels, pretrained weights adapted (see ``band_adapter``).

    Returns ``(backbone, adapted_layer_names)``; the names are empty without pretrained weights.
    """
    image_size = spec.image_size(image_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This model usually expects 1 or 3 input channels")
        base = spec.build_base(image_size, channels=len(channel_map))
    adapted: list[str] = []
    if resolve_weights(spec, weights, image_size) is not None:
        rgb = build_backbone(spec, image_size, weights)
        adapted = band_adapter.adapt_input_weights(rgb, base, channel_map, spec.preprocess)
    base.name = BACKBONE_LAYER
    return base, adapted


def _band_input(keras, bands, size: int, mode: str):
    """Input → resize → band_select → band_normalize for a multi-band run (``bands``: a BandInfo)."""
    n = int(bands.count)
    selected = list(bands.used)
    inputs = keras.Input(shape=(None, None, n), name="image")
    # float32 whatever the precision policy: raw 16-bit values do not fit float16's precision
    x = keras.layers.Resizing(size, size, name="resize", dtype="float32")(inputs)
    if selected != list(range(1, n + 1)):
        kernel = band_adapter.band_select_kernel(n, selected)
        x = keras.layers.Conv2D(len(selected), 1, use_bias=False, trainable=False, name="band_select",
                                dtype="float32", kernel_initializer=keras.initializers.Constant(kernel))(x)
    stats = [bands.stats[b - 1] for b in selected]
    mean, variance = band_adapter.normalization_moments([s.mean for s in stats], [s.std for s in stats],
                                                        bands.channel_map(), mode)
    # (x - mean) / sqrt(variance) as a frozen per-band scale and offset: a 1×1 DepthwiseConv2D whose
    # weights are variables. A Normalization layer computes the same, but its statistics are captured
    # constants that the ONNX conversion turns into missing graph inputs.
    scale, offset = band_adapter.scale_and_offset(mean, variance)
    x = keras.layers.DepthwiseConv2D(1, use_bias=True, trainable=False, name="band_normalize", dtype="float32",
                                     depthwise_initializer=keras.initializers.Constant(scale.reshape(1, 1, -1, 1)),
                                     bias_initializer=keras.initializers.Constant(offset))(x)
    return inputs, x


def build_classifier(spec: Backbone, n_classes: int, *, weights: str = "none",
                     image_size: int | None = None, dropout: float = 0.2, bands=None):
    """Build the full classifier (see module docstring).

    Parameters
    ----------
    spec : the :class:`~cnn_studio.backbones.registry.Backbone` (``registry.get("vgg16")``).
    n_classes : number of output classes (>= 2).
    weights : "imagenet", "none" or the path of a weights file for the backbone.
    image_size : the side the image is resized to inside the model (default: the backbone's).
    dropout : dropout rate before the final Dense layer.
    bands : a :class:`~cnn_studio.data.bands.BandInfo` for a multi-band run (input: its ``count``
        raw bands), or None for pictures (input: RGB 0–255).

    Raises
    ------
    WeightsUnavailable
        If ImageNet weights are needed but not cached and cannot be downloaded.
    """
    import keras

    if n_classes < 2:
        raise ConfigError(f"Number of classes: expected at least 2, received {n_classes}.")
    size = spec.image_size(image_size)
    if bands is not None and bands.count:
        base, _ = build_band_backbone(spec, size, weights, bands.channel_map())
        inputs, x = _band_input(keras, bands, size, spec.preprocess)
    else:
        base = build_backbone(spec, size, weights)
        inputs = keras.Input(shape=(None, None, 3), name="image")
        x = keras.layers.Resizing(size, size, name="resize")(inputs)
        for layer in preprocessing_layers(spec.preprocess):
            x = layer(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"cnn_studio_{spec.key}")
    return model


def input_channels_of(model) -> int:
    """The channels a classifier takes: 3 for pictures, N for a multi-band model."""
    return int(model.inputs[0].shape[-1])


def backbone_of(model):
    """The nested backbone layer of a classifier."""
    return model.get_layer(BACKBONE_LAYER)


def input_size_of(model) -> int:
    """The side images are resized to inside the model."""
    return int(model.get_layer("resize").height)


def freeze_backbone(model) -> None:
    """Freeze every backbone weight (phase 1: only the head learns)."""
    backbone_of(model).trainable = False


def unfreeze_top(model, n: int) -> int:
    """Unfreeze the top ``n`` weight-carrying layers of the backbone, keeping BatchNorm frozen.

    Returns the number of backbone layers left trainable.
    """
    import keras

    base = backbone_of(model)
    base.trainable = True
    weighted = [layer for layer in base.layers if layer.weights]
    cut = max(len(weighted) - max(n, 0), 0)
    trainable = 0
    for i, layer in enumerate(weighted):
        layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
        trainable += int(layer.trainable)
    return trainable


_CONV_CLASSES = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Dense")


def _kind(layer) -> str:
    import keras

    if isinstance(layer, keras.layers.BatchNormalization):
        return NORM
    if not any(w.trainable for w in layer.weights):
        return FIXED
    inner = [layer, *getattr(layer, "layers", ())]  # ConvNeXt's stem and downsampling are Sequential
    return CONV if any(type(x).__name__ in _CONV_CLASSES for x in inner) else OTHER


def backbone_layers(base, spec: Backbone) -> tuple[list[LayerInfo], int]:
    """Every layer of a backbone with weights (bottom to top) as :class:`LayerInfo`, and its total weight count.

    Measure an unfrozen backbone: Keras marks a frozen layer's variables non-trainable.
    """
    names = [layer.name for layer in base.layers]
    blocks = dict(zip(names, fine_tune.assign_blocks(spec, names), strict=True))
    out = [LayerInfo(layer.name, blocks[layer.name], sum(_size(w) for w in layer.weights if w.trainable), _kind(layer))
           for layer in base.layers if layer.weights]
    return out, int(sum(_size(w) for w in base.weights))


def _size(variable) -> int:
    n = 1
    for d in variable.shape:
        n *= int(d)
    return n


def spec_of(model) -> Backbone:
    """The :class:`~cnn_studio.backbones.registry.Backbone` of a classifier built by :func:`build_classifier` (from its name ``cnn_studio_KEY``)."""
    return registry.get(model.name.removeprefix("cnn_studio_"))


def fine_tune_plan(spec: Backbone, image_size: int | None, depth: str) -> FineTunePlan:
    """Which backbone layers fine-tuning at ``depth`` retrains and how many weights (builds the backbone, no weights)."""
    base = spec.build_base(image_size)
    layers, total = backbone_layers(base, spec)
    return fine_tune.plan(layers, depth, total)


def unfreeze_depth(model, depth: str) -> FineTunePlan:  # the trainer's fine-tune phase
    """Unfreeze the backbone layers of :func:`fine_tune.plan` at ``depth``; BatchNorm always stays frozen.

    Returns the plan that was applied (its ``layers`` are exactly the backbone layers left trainable).
    """
    base = backbone_of(model)
    base.trainable = True  # every layer (and its variables) back to trainable before measuring
    layers, total = backbone_layers(base, spec_of(model))
    chosen = fine_tune.plan(layers, depth, total)
    keep = set(chosen.layers)
    for layer in base.layers:
        if layer.weights:
            layer.trainable = layer.name in keep
    return chosen


def measure_layer_tables(keys: tuple[str, ...] | None = None) -> dict[str, tuple[int, tuple[tuple, ...]]]:
    """Build each backbone (no weights) and measure its layers: the content of ``layer_tables.TABLES``."""
    out = {}
    for key in keys or registry.keys():
        spec = registry.get(key)
        layers, total = backbone_layers(spec.build_base(), spec)
        out[key] = (total, tuple((x.name, x.block, x.params, x.kind) for x in layers))
    return out


def trainable_layer_count(model) -> int:
    """Backbone layers with trainable weights (0 when frozen)."""
    base = backbone_of(model)
    if not base.trainable:
        return 0
    return sum(1 for layer in base.layers if layer.trainable and layer.trainable_weights)


def split_for_feature_cache(model):
    """(feature_model, head_model): image → pooled features, and features → probabilities.

    The head model reuses the classifier's own "head_dropout" and "predictions" layers, so
    training it on cached features trains the full model's head (weights are shared).
    """
    import keras

    pool = model.get_layer("pool")
    feature_model = keras.Model(model.inputs, pool.output, name="features")
    width = pool.output.shape[-1]
    feats = keras.Input(shape=(width,), name="features")
    x = model.get_layer("head_dropout")(feats)
    out = model.get_layer("predictions")(x)
    head_model = keras.Model(feats, out, name="head")
    return feature_model, head_model
