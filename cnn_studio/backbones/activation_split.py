"""Cut a classifier below its first trainable backbone layer: a frozen lower part and a trainable upper part.

Fine-tuning "block5" of VGG16 trains three convolutions and the head; the thirteen layers below
them are frozen, so every epoch pushes the same images through them to get the same activations.
:func:`split_below_trainable` cuts the classifier where the trainable part begins:

* ``lower``: image → the activations that enter the first trainable layer (resize, preprocessing
  and the frozen layers, run once per image);
* ``upper``: those activations → probabilities (the trainable layers, the frozen layers above them,
  pooling and the head), which trains the classifier's own layers (weights are shared);
* ``pooled``: those activations → the pooled features the head reads (the head phase's input).

Only a cut that every path of the backbone crosses works (a skip connection that jumps over it
would need a second tensor): then Keras cannot build the upper model and the function returns None,
and the caller trains on the images as before. BatchNorm layers run in inference mode on both
sides, as in the classifier (``base(x, training=False)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_studio.backbones.classifier import backbone_of


@dataclass(frozen=True)
class ActivationSplit:
    """The three models of a cut (see the module docstring) and where it is."""

    lower: object
    upper: object
    pooled: object
    cut_layer: str  # the first trainable backbone layer (the upper part starts with it)
    fast_lower: object = None  # faster twins of ``lower`` and ``pooled`` for the training images (low_precision)
    fast_pooled: object = None

    @property
    def shape(self) -> tuple[int, ...]:
        """One image's activations at the cut (height, width, channels)."""
        return tuple(int(d) for d in self.lower.output.shape[1:])


@dataclass(frozen=True)
class KeptActivations:
    """The validation images' activations at the cut below ``cut_layer``, kept from training: one row per
    validation record, in the split's order, with its label. The check after training
    (:mod:`cnn_studio.evaluation.review`) runs the best model's layers from the cut up on them instead of
    decoding the images and running the whole model again: the layers below the cut were frozen all run
    long, so the answers are the same."""

    cut_layer: str
    values: np.ndarray
    labels: np.ndarray


def first_trainable(base) -> object | None:
    """The first backbone layer (in graph order) that has trainable weights, or None."""
    return next((layer for layer in base.layers if layer.trainable and layer.trainable_weights), None)


def split_below_trainable(model) -> ActivationSplit | None:
    """The cut below the backbone's first trainable layer, or None when there is none to make.

    None when no backbone layer is trainable, when the cut is at the backbone's input (nothing
    frozen to save), when the first trainable layer takes several tensors, or when a path of the
    backbone crosses the cut (a skip connection).
    """
    first = first_trainable(backbone_of(model))
    if first is None:
        return None
    split = split_at(model, first.name)
    frozen = split.lower.get_layer("frozen_lower").layers if split is not None else []
    if split is None or any(layer.trainable_weights for layer in frozen if layer.trainable):
        return None  # a trainable layer below the cut (not in graph order): not a clean split
    return split


def split_at(model, layer_name: str) -> ActivationSplit | None:
    """The cut below the backbone layer ``layer_name`` (what :func:`split_below_trainable` found on the
    model in training, found again on the same model loaded from its file), or None when there is none
    to make there (no such layer, the backbone's input, several input tensors, a path around it)."""
    import keras

    base = backbone_of(model)
    first = next((layer for layer in base.layers if layer.name == layer_name), None)
    if first is None or isinstance(first.input, (list, tuple)):
        return None
    cut = first.input
    if cut is base.inputs[0]:
        return None
    try:
        base_lower = keras.Model(base.inputs[0], cut, name="frozen_lower")
        base_upper = keras.Model(cut, base.outputs[0], name="trainable_upper")
    except ValueError:  # the output needs a tensor the cut does not give (a path around it)
        return None
    fed = base._inbound_nodes[0].input_tensors[0]  # what the classifier feeds the backbone
    lower = keras.Model(model.inputs[0], base_lower(fed), name="lower")
    acts = keras.Input(shape=tuple(cut.shape[1:]), name="activations")
    pooled_out = model.get_layer("pool")(base_upper(acts, training=False))
    pooled = keras.Model(acts, pooled_out, name="pooled")
    out = model.get_layer("predictions")(model.get_layer("head_dropout")(pooled_out))
    upper = keras.Model(acts, out, name="upper")
    return ActivationSplit(lower=lower, upper=upper, pooled=pooled, cut_layer=first.name)
