"""A bfloat16 twin of a model, for work where bfloat16 was measured faster and float32 is not needed.

The twin has the same layers and weights; the layers of one nested part (the backbone, or the frozen
part of it) compute in bfloat16 (Keras' mixed policy: weights kept in float32, cast as they are used),
while the resizing and preprocessing in front of it and the head after it stay float32 and the output
is float32. Two uses, both decided by :func:`cnn_studio.training.devices.bfloat16_frozen_pass`:

* the one pass of the training images through the frozen layers (``ActivationSplit.fast_lower`` and
  ``fast_pooled``);
* the screen of the shortcut check's masking test (``ShortcutOptions.screen``), whose findings the model
  itself then confirms.
"""

from __future__ import annotations

TWIN_POLICY = "mixed_bfloat16"


def bfloat16_twin(model, backbone_part: str = "frozen_lower"):
    """A copy of ``model`` whose nested model ``backbone_part`` computes in bfloat16: "frozen_lower" in an
    ``ActivationSplit.lower``, "trainable_upper" in its ``pooled``, "backbone" in a classifier. The weights
    are copied now: a later change to the model's weights (calibration) is not the twin's."""
    import keras

    inner = {layer.name for layer in model.get_layer(backbone_part).layers}

    def clone(layer):
        config = layer.get_config()
        if layer.name in inner and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = keras.DTypePolicy(TWIN_POLICY)
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, clone_function=clone, recursive=True)
    twin.set_weights(model.get_weights())
    out = keras.layers.Identity(dtype="float32", name="as_float32")(twin.outputs[0])
    return keras.Model(twin.inputs[0], out, name=f"{model.name}_bfloat16")
