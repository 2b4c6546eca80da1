"""The layers of a classifier, nested backbone flattened: paths, kinds, shapes and parameter counts.

A layer inside the nested backbone is named by its path, ``"backbone/block1_conv"``; a layer of
the outer model by its plain name (``"resize"``, ``"predictions"``). :func:`architecture_table`
lists every layer with its parameter count so a user sees where the parameters are, and that a
convolution's few weights are shared across every position of the image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cnn_studio.core.errors import ConfigError

PATH_SEP = "/"

_KINDS: dict[str, str] = {
    "Conv2D": "conv", "DepthwiseConv2D": "conv", "SeparableConv2D": "conv", "Conv2DTranspose": "conv",
    "MaxPooling2D": "pool", "AveragePooling2D": "pool",
    "Activation": "activation", "ReLU": "activation", "LeakyReLU": "activation", "ELU": "activation",
    "PReLU": "activation", "Softmax": "activation",
    "BatchNormalization": "norm", "LayerNormalization": "norm",
    "Add": "merge", "Concatenate": "merge", "Multiply": "merge", "Subtract": "merge", "Average": "merge",
    "Resizing": "resize", "Rescaling": "preprocess", "Normalization": "preprocess",
    "ZeroPadding2D": "padding", "Dropout": "dropout", "Dense": "dense",
    "GlobalAveragePooling2D": "global_pool", "GlobalMaxPooling2D": "global_pool",
}


def layer_kind(layer) -> str:
    """A short kind: "conv", "pool", "activation", "norm", "merge", "dense", ... or "other"."""
    return _KINDS.get(type(layer).__name__, "other")


def is_nested_model(layer) -> bool:
    """True for a layer that is itself a model with its own layers (the backbone)."""
    import keras

    return isinstance(layer, keras.Model)


def _walk(model) -> Iterator[tuple[str, object, object]]:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if is_nested_model(layer):
            for inner in layer.layers:
                if not isinstance(inner, keras.layers.InputLayer):
                    yield f"{layer.name}{PATH_SEP}{inner.name}", inner, layer
        else:
            yield layer.name, layer, None


def iter_layers(model) -> Iterator[tuple[str, object]]:
    """Yield ``(path, layer)`` for every layer except Input layers, nested models expanded once.

    Outer layers keep their name; layers of a nested model are ``"<model>/<layer>"``.
    """
    for path, layer, _ in _walk(model):
        yield path, layer


def resolve_layer(model, path: str):
    """The layer named by ``path`` ("backbone/block1_conv" or "resize").

    A bare name that is not an outer layer is looked up inside the nested models too.

    Raises
    ------
    ConfigError
        If no layer has that path; the message lists a few valid ones.
    """
    for p, layer in iter_layers(model):
        if p == path:
            return layer
    matches = [layer for p, layer in iter_layers(model) if p.split(PATH_SEP)[-1] == path]
    if len(matches) == 1:
        return matches[0]
    names = [p for p, _ in iter_layers(model)]
    shown = ", ".join(names[-8:])
    raise ConfigError(f"Layer: expected one of the model's layers, received {path!r}.",
                      f"Run `cnn-studio explain MODEL --list-layers` to see them all (the last ones: {shown}).")


def full_path(model, path: str) -> str:
    """The canonical path of ``path`` (a bare inner name becomes "backbone/name")."""
    layer = resolve_layer(model, path)
    for p, candidate in iter_layers(model):
        if candidate is layer:
            return p
    return path  # pragma: no cover - resolve_layer only returns layers of iter_layers


def output_shape(layer) -> tuple:
    """The layer's output shape in its own graph (batch dimension first, ``None`` when unknown)."""
    try:
        out = layer.output
    except (AttributeError, ValueError):
        try:
            out = layer._inbound_nodes[-1].output_tensors[0]  # a nested model called in the outer graph
        except (AttributeError, IndexError):
            return ()
    return tuple(out.shape)


def _param_count(layer) -> int:
    return int(sum(int(_size(w.shape)) for w in layer.weights))


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@dataclass(frozen=True)
class LayerRow:
    """One row of the architecture table."""

    name: str
    type: str
    output_shape: tuple
    params: int
    trainable: bool
    note: str = ""


@dataclass(frozen=True)
class ArchitectureTable:
    """Every layer (backbone flattened) and the parameter totals (``total == model.count_params()``)."""

    model_name: str
    rows: tuple[LayerRow, ...]
    total: int
    trainable: int
    non_trainable: int

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _conv_note(layer, shape: tuple) -> str:
    kind = type(layer).__name__
    h, w = (shape[1], shape[2]) if len(shape) == 4 else (None, None)
    where = f"all {h}x{w} output positions" if h and w else "every position of the image"
    k = getattr(layer, "kernel_size", None)
    if not k:
        return ""
    kk = f"{k[0]}x{k[1]}"
    if kind == "DepthwiseConv2D":
        return f"one {kk} kernel per input channel, shared across {where}"
    kernel = getattr(layer, "kernel", None)
    if kernel is None and kind == "SeparableConv2D":
        return f"{kk} depthwise + 1x1 pointwise kernels, shared across {where}"
    if kernel is None:
        return ""
    cin, filters = int(kernel.shape[-2]), int(kernel.shape[-1])
    note = f"{kk}x{cin} kernel x {filters} filters, shared across {where}"
    strides = getattr(layer, "strides", (1, 1))
    if tuple(strides) != (1, 1):
        note += f"; stride {strides[0]}"
    return note


def _note(layer, shape: tuple) -> str:
    kind = layer_kind(layer)
    if kind == "conv":
        return _conv_note(layer, shape)
    if kind == "pool":
        return f"{layer.pool_size[0]}x{layer.pool_size[1]} window, stride {layer.strides[0]}, no weights"
    if kind == "norm" and type(layer).__name__ == "BatchNormalization":
        return "2 learned + 2 running statistics per channel"
    if kind == "dense":
        return f"every input connected to each of {layer.units} outputs"
    if kind == "global_pool":
        return "averages each feature map to one number"
    return ""


def architecture_table(model) -> ArchitectureTable:
    """Flatten ``model`` (nested backbone included) into rows with parameter counts and notes.

    Parameters
    ----------
    model : a built ``keras.Model`` (e.g. from ``build_classifier`` or ``load_model``).

    Returns
    -------
    ArchitectureTable
        ``rows`` of :class:`LayerRow` (name = layer path), and ``total``/``trainable``/
        ``non_trainable`` parameter counts; ``total`` equals ``model.count_params()``.

    Examples
    --------
    >>> table = architecture_table(model)  # doctest: +SKIP
    >>> sum(r.params for r in table) == model.count_params()  # doctest: +SKIP
    True
    """
    rows = []
    for path, layer, parent in _walk(model):
        trainable = bool(layer.trainable and (parent is None or parent.trainable) and model.trainable)
        shape = output_shape(layer)
        rows.append(LayerRow(name=path, type=type(layer).__name__, output_shape=shape,
                             params=_param_count(layer), trainable=trainable, note=_note(layer, shape)))
    trainable = sum(_size(w.shape) for w in model.trainable_weights)
    non_trainable = sum(_size(w.shape) for w in model.non_trainable_weights)
    return ArchitectureTable(model_name=model.name, rows=tuple(rows), total=trainable + non_trainable,
                             trainable=trainable, non_trainable=non_trainable)


def shape_text(shape, sep: str = "x", empty: str = "") -> str:
    """A layer's output shape without the batch axis, ``sep`` between: (None, 32, 32, 16) → "32x32x16".

    A layer with several outputs shows its first; a shape with nothing past the batch axis gives ``empty``.
    """
    shape = tuple(shape or ())
    if shape and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return sep.join("?" if d is None else str(d) for d in shape[1:]) or empty


def format_architecture(table: ArchitectureTable) -> str:
    """The table as aligned plain text, totals last (what ``cnn-studio explain --architecture`` prints)."""
    header = ("layer", "type", "output", "params", "trains", "note")
    body = [(r.name, r.type, shape_text(r.output_shape), f"{r.params:,}", "yes" if r.trainable else "no", r.note)
            for r in table.rows]
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(5)]
    lines = []
    for row in [header, *body]:
        cells = [str(c).ljust(w) if i != 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row[:5], widths, strict=True))]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    lines.append("")
    lines.append(f"{table.model_name}: {table.total:,} parameters "
                 f"({table.trainable:,} trainable, {table.non_trainable:,} not trainable)")
    return "\n".join(lines)

