"""How much of a backbone fine-tuning retrains, in the user's words. Pure Python: no TensorFlow import.

A *depth* is one of:

``"all"``
    every layer with trainable weights except BatchNormalization.
``"none"`` / ``"0"``
    nothing (fine-tuning would only train the head again).
``"N blocks"`` (``"1 block"``, ``"2 blocks"`` ...)
    the top N blocks of the backbone; blocks are read from the layer names (:func:`assign_blocks`):
    VGG/Xception/small CNN ``block5``; ResNet and DenseNet stages ``conv2`` … ``conv5``; MobileNetV2/V3
    ``block_16`` (the unnamed ``expanded_conv`` is ``block_0``); EfficientNet stages ``block1`` …
    ``block7``; ConvNeXt ``stage_0`` … ``stage_3``; InceptionV3 ``mixed0`` … ``mixed10`` (a layer
    belongs to the ``mixedN`` concatenation it feeds; ``mixed0`` includes the stem). Layers before the
    first named block form ``stem``; an unnamed layer after a block (``Conv_1``, ``top_conv``,
    ``post_bn``) belongs to the block before it.
``"blockN"`` (any block name)
    that block and every block above it.
``"N conv"``
    the top N convolution (or Dense) layers, counting only layers with weights: BatchNormalization
    never counts and stays frozen (in inference mode). Other trainable layers between them
    (ConvNeXt's LayerNorm and layer scale) train too.
``"N layers"``
    the meaning of the old ``fine_tune_layers`` setting, kept for runs written before depths existed:
    the top N layers with weights, BatchNormalization counted but kept frozen.

:func:`plan` turns a depth and the backbone's layers (:class:`LayerInfo`, measured from a built model
by ``classifier.backbone_layers`` or read from the generated ``resources/layer_tables.json``) into a
:class:`FineTunePlan`: which layers train and how many of the backbone's weights that is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cnn_studio.backbones import layer_tables
from cnn_studio.backbones.registry import Backbone
from cnn_studio.core.errors import ConfigError

CONV, NORM, OTHER, FIXED = "conv", "norm", "other", "fixed"  # LayerInfo.kind
DEFAULT_DEPTH = "1 block"  # what a new run fine-tunes (the CLI, the Model step); TrainConfig's None is older runs'
DEPTH_EXAMPLES = (DEFAULT_DEPTH, "2 blocks", "6 conv", "all")
DEPTH_HELP = ('how much of the backbone fine-tuning retrains: "all", "N blocks" (e.g. "2 blocks"; VGG16 has '
              'block1..block5), a block name and all above it (e.g. "block5"), or "N conv" (the top N '
              'convolution layers; BatchNorm never counts and stays frozen)')

# (family or key) → ((regex on a layer name, block name template), ...); first match wins
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "VGG": ((r"^(block\d+)_", "{0}"),),
    "xception": ((r"^(block\d+)_", "{0}"),),
    "Custom": ((r"^(block\d+)_", "{0}"),),
    "ResNet": ((r"^(conv\d)_", "{0}"),),
    "DenseNet": ((r"^(conv\d)[_/]", "{0}"), (r"^pool(\d)_", "conv{0}")),
    "mobilenet_v2": ((r"^block_(\d+)_", "block_{0}"), (r"^expanded_conv_", "block_0")),
    "MobileNet": ((r"^expanded_conv_(\d+)_", "block_{0}"), (r"^expanded_conv_", "block_0")),
    "EfficientNet": ((r"^(block\d)[a-z]_", "{0}"),),
    "ConvNeXt": ((r"_stage_(\d+)_", "stage_{0}"), (r"_downsampling_block_(\d+)", "stage_{0}")),
}
_MIXED = re.compile(r"^mixed\d+$")
TABLES = layer_tables.tables()  # generated: tools/make_layer_tables.py


@dataclass(frozen=True)
class LayerInfo:
    """One backbone layer with weights: its block, trainable-weight count and kind (conv/norm/other/fixed)."""

    name: str
    block: str
    params: int
    kind: str


@dataclass(frozen=True)
class Depth:
    kind: str  # "all" | "blocks" | "from_block" | "conv" | "layers"
    n: int = 0
    block: str = ""

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        if self.kind == "from_block":
            return self.block
        unit = {"blocks": "block" if self.n == 1 else "blocks", "conv": "conv", "layers": "layers"}[self.kind]
        return f"{self.n} {unit}"


@dataclass(frozen=True)
class FineTunePlan:
    """What fine-tuning at ``depth`` retrains: the layers, their weights, and the backbone's total."""

    depth: str
    layers: tuple[str, ...]
    blocks: tuple[str, ...]
    conv_layers: int
    trainable_params: int
    total_params: int

    def summary(self) -> str:
        """'retrains 3 conv layers (block5), 7.08 M of 14.71 M weights'."""
        if not self.layers:
            return f"retrains no backbone layers (0 of {_millions(self.total_params)} weights)"
        blocks = f" ({', '.join(self.blocks)})" if 0 < len(self.blocks) <= 3 else (
            f" ({len(self.blocks)} blocks)" if self.blocks else "")
        return (f"retrains {self.conv_layers} conv layer{'s' if self.conv_layers != 1 else ''}{blocks}, "
                f"{_millions(self.trainable_params)} of {_millions(self.total_params)} weights")


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f} M"


def parse_depth(text: str | int) -> Depth:
    """Read a depth ("2 blocks", "6 conv", "block5", "all", "none"); raises :class:`ConfigError`."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = f"{text} conv"
    s = " ".join(str(text).strip().lower().replace("-", " ").split())
    if s in ("all", "everything", "full"):
        return Depth("all")
    if s in ("none", "0", "nothing", "head", "head only"):
        return Depth("conv", 0)
    m = re.fullmatch(r"(\d+)\s*(blocks?|stages?|conv|convs|conv layers?|convolutions?|layers?)", s)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if unit.startswith(("block", "stage")):
            return Depth("blocks", n)
        if unit.startswith("layer"):
            return Depth("layers", n)
        return Depth("conv", n)
    if re.fullmatch(r"[a-z_]*\d+[a-z_0-9]*", s):
        return Depth("from_block", block=s)
    raise ConfigError(f"Fine-tune depth: expected \"all\", \"N blocks\", \"N conv\" or a block name such as "
                      f"\"block5\", received {str(text)!r}.", "For example \"1 block\" or \"6 conv\".")


def assign_blocks(spec: Backbone, names: list[str]) -> list[str]:
    """The block of each layer name (all layers of the backbone, in order); see the module docstring."""
    if spec.key == "inception_v3":
        out, current = [""] * len(names), None
        for i in range(len(names) - 1, -1, -1):  # a layer belongs to the next mixedN concatenation
            if _MIXED.match(names[i]):
                current = names[i]
            out[i] = current or _last_mixed(names)
        return out
    rules = _RULES.get(spec.key) or _RULES.get(spec.family) or ()
    out, current = [], "stem"
    for name in names:
        for pattern, template in rules:
            m = re.search(pattern, name)
            if m:
                current = template.format(*m.groups())
                break
        out.append(current)
    return out


def _last_mixed(names: list[str]) -> str:
    return next((n for n in reversed(names) if _MIXED.match(n)), "top")


def plan(layers: list[LayerInfo] | tuple[LayerInfo, ...], depth: str | Depth, total_params: int) -> FineTunePlan:
    """The layers that train at ``depth`` (``layers`` bottom to top, every backbone layer with weights)."""
    d = depth if isinstance(depth, Depth) else parse_depth(depth)
    trainable = [x for x in layers if x.kind in (CONV, OTHER)]
    if d.kind == "all":
        chosen = trainable
    elif d.kind == "layers":  # the old fine_tune_layers: top N weighted layers, BatchNorm counted, kept frozen
        weighted = list(layers)
        cut = max(len(weighted) - max(d.n, 0), 0)
        keep = {x.name for x in weighted[cut:]}
        chosen = [x for x in trainable if x.name in keep]
    elif d.kind == "conv":
        convs = [i for i, x in enumerate(layers) if x.kind == CONV]
        if d.n <= 0:
            chosen = []
        else:
            start = convs[-min(d.n, len(convs))] if convs else len(layers)
            chosen = [x for x in layers[start:] if x.kind in (CONV, OTHER)]
    else:
        order = list(dict.fromkeys(x.block for x in trainable))  # bottom to top
        if d.kind == "blocks":
            keep = set(order[len(order) - min(max(d.n, 0), len(order)):]) if d.n > 0 else set()
        else:
            if d.block not in order:
                raise ConfigError(f"Fine-tune depth: no block named {d.block!r} in this backbone; expected one of "
                                  f"{', '.join(order)}.", "Or give a number: \"2 blocks\", \"6 conv\".")
            keep = set(order[order.index(d.block):])
        chosen = [x for x in trainable if x.block in keep]
    return FineTunePlan(
        depth=str(d), layers=tuple(x.name for x in chosen),
        blocks=tuple(dict.fromkeys(x.block for x in chosen)),
        conv_layers=sum(1 for x in chosen if x.kind == CONV),
        trainable_params=sum(x.params for x in chosen), total_params=total_params)


def table_layers(spec: Backbone) -> tuple[tuple[LayerInfo, ...], int]:
    """The precomputed layers and total weight count of a backbone (generated, see ``layer_tables``)."""
    total, rows = TABLES[spec.key]
    return tuple(LayerInfo(*row) for row in rows), total


def table_plan(spec: Backbone, depth: str | Depth) -> FineTunePlan:
    """:func:`plan` from the precomputed table: what the Model step shows, with no TensorFlow in the UI."""
    layers, total = table_layers(spec)
    return plan(layers, depth, total)


def block_names(spec: Backbone) -> tuple[str, ...]:
    """The backbone's blocks, bottom to top (from the table)."""
    layers, _ = table_layers(spec)
    return tuple(dict.fromkeys(x.block for x in layers if x.kind in (CONV, OTHER)))
