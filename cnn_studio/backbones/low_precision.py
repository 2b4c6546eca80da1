"""A bfloat16 twin of a classifier's frozen lower part, for the one pass that computes its activations.

The twin has the same layers and weights; the backbone's layers compute in bfloat16 (Keras' mixed
policy: weights kept in float32, cast as they are used), while the resizing and preprocessing in front
of the backbone stay float32 and the activations come out as float32. Whether a run uses it is
decided by :func:`cnn_studio.training.devices.bfloat16_frozen_pass`.
"""

from __future__ import annotations

TWIN_POLICY = "mixed_bfloat16"


def bfloat16_twin(lower, backbone_part: str = "frozen_lower"):
    """A copy of ``lower`` (an ``ActivationSplit.lower``) whose nested model ``backbone_part`` computes in bfloat16."""
    import keras

    inner = {layer.name for layer in lower.get_layer(backbone_part).layers}

    def clone(layer):
        config = layer.get_config()
        if layer.name in inner and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = keras.DTypePolicy(TWIN_POLICY)
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(lower, clone_function=clone, recursive=True)
    twin.set_weights(lower.get_weights())
    out = keras.layers.Identity(dtype="float32", name="as_float32")(twin.outputs[0])
    return keras.Model(twin.inputs[0], out, name="lower_bfloat16")
