"""SmallCNN: a tiny convolutional network trained from scratch, shaped like a keras.applications model."""

from __future__ import annotations

NAME = "small_cnn"


def SmallCNN(include_top: bool = False, weights=None, input_shape=None, pooling=None,  # noqa: N802
             classes: int = 1000, classifier_activation="softmax"):
    """Four Conv–ReLU–MaxPool blocks (16, 32, 64, 128 filters); ~100 k parameters.

    No BatchNormalization on purpose: with a few hundred images an epoch is a dozen steps, too
    few for BatchNorm's moving statistics to settle, so a BN network scores well while training
    and near chance when evaluated.

    It takes the keyword arguments of a ``keras.applications`` constructor that the classifier builder
    passes (``include_top``, ``weights``, ``input_shape``, ``pooling``; ``classes`` and
    ``classifier_activation`` for a top), so the builder treats it like any other backbone; the
    model is named :data:`NAME`. It has no pretrained weights: ``weights`` must be ``None`` or a file.
    """
    import keras
    from keras import layers

    if weights not in (None, "none") and not str(weights).endswith((".h5", ".keras")):
        raise ValueError(f"SmallCNN has no pretrained weights; expected None or a weights file, received {weights!r}")
    inputs = keras.Input(shape=input_shape or (None, None, 3))
    x = inputs
    for i, width in enumerate((16, 32, 64, 128), start=1):
        x = layers.Conv2D(width, 3, padding="same", kernel_initializer="he_normal", name=f"block{i}_conv")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        if i < 4:
            x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=NAME)
    if weights not in (None, "none"):
        model.load_weights(weights)
    return model
