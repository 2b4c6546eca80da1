"""A backbone's input preprocessing as built-in Keras layers, so every saved model carries its own.

Never a ``Lambda``: models load with ``safe_mode=True`` and export to SavedModel, TFLite and ONNX
with the preprocessing inside, so a user elsewhere feeds raw RGB 0–255 pixels and needs no Keras.
Each mode reproduces ``keras.applications.imagenet_utils.preprocess_input`` (tests check max |Δ|):

* ``tf``    → ``x / 127.5 − 1``                                   (Inception, Xception, MobileNetV2, ResNetV2)
* ``torch`` → ``(x / 255 − mean) / std``                          (DenseNet)
* ``caffe`` → RGB→BGR, minus the ImageNet BGR mean, no scaling    (VGG, ResNet50): a frozen 1×1 Conv2D
* ``unit``  → ``x / 255``                                         (our SmallCNN)
* ``none``  → nothing: the backbone rescales inside               (EfficientNet, MobileNetV3, ConvNeXt)
"""

from __future__ import annotations

import numpy as np

from cnn_studio.core.errors import ConfigError

MODES = ("caffe", "tf", "torch", "unit", "none")
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def preprocessing_layers(mode: str) -> list:
    """Built-in Keras layers that turn raw RGB 0–255 into what a backbone's weights expect."""
    from keras import layers

    if mode == "tf":
        return [layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess_tf")]
    if mode == "torch":
        return [
            layers.Rescaling(1 / 255.0, name="preprocess_scale"),
            layers.Normalization(mean=list(IMAGENET_MEAN_RGB), variance=[s * s for s in IMAGENET_STD_RGB],
                                 name="preprocess_normalize"),
        ]
    if mode == "caffe":
        kernel = np.zeros((1, 1, 3, 3), np.float32)
        for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
            kernel[0, 0, rgb, bgr] = 1.0  # output channel bgr takes input channel rgb
        bias = -np.array(CAFFE_MEAN_BGR, np.float32)
        conv = layers.Conv2D(3, 1, use_bias=True, trainable=False, name="preprocess_caffe",
                             kernel_initializer=_Constant(kernel), bias_initializer=_Constant(bias))
        return [conv]
    if mode == "unit":
        return [layers.Rescaling(1 / 255.0, name="preprocess_unit")]
    if mode == "none":
        return []
    raise ConfigError(f"Preprocessing mode: expected one of {', '.join(MODES)}, received {mode!r}.")


def _Constant(value):  # noqa: N802 - reads like the initializer it returns
    """A serialisable constant initializer (keras.initializers.Constant accepts arrays in Keras 3)."""
    import keras

    return keras.initializers.Constant(value)
