"""In-model preprocessing layers reproduce Keras' own ``preprocess_input`` and survive ``safe_mode`` loading."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.backbones.preprocessing import MODES, preprocessing_layers
from cnn_studio.core.errors import ConfigError

X = np.random.default_rng(0).uniform(0, 255, (2, 24, 20, 3)).astype("float32")
TOLERANCE = 1e-5  # measured: 0 (caffe, none), 1.2e-7 (tf), 7.2e-7 (torch)


def apply(layers, x):
    for layer in layers:
        x = layer(x)
    return np.asarray(x)


@pytest.mark.parametrize("mode,module", [
    ("tf", "inception_v3"), ("tf", "mobilenet_v2"), ("tf", "resnet_v2"), ("tf", "xception"),
    ("torch", "densenet"),
    ("caffe", "vgg16"), ("caffe", "vgg19"), ("caffe", "resnet50"),
    ("none", "efficientnet"), ("none", "efficientnet_v2"), ("none", "convnext"), ("none", "mobilenet_v3"),
])
def test_layers_match_keras_preprocess_input(mode, module):
    ref = np.asarray(importlib.import_module(f"keras.applications.{module}").preprocess_input(X.copy()))
    out = apply(preprocessing_layers(mode), X)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= TOLERANCE


def test_unit_mode_scales_to_zero_one():
    out = apply(preprocessing_layers("unit"), X)
    assert np.abs(out - X / 255.0).max() <= 1e-6
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_registry_modes_are_the_ones_keras_uses():
    """The mode of each backbone is the one its keras.applications module applies."""
    expected = {"vgg16": "caffe", "vgg19": "caffe", "resnet50": "caffe", "resnet50_v2": "tf", "inception_v3": "tf",
                "xception": "tf", "mobilenet_v2": "tf", "densenet121": "torch", "small_cnn": "unit"}
    for spec in registry.all_specs():
        assert spec.preprocess == expected.get(spec.key, "none"), spec.key


def test_caffe_layer_is_frozen_and_never_a_lambda():
    import keras

    for mode in MODES:
        for layer in preprocessing_layers(mode):
            assert not isinstance(layer, keras.layers.Lambda)
    (conv,) = preprocessing_layers("caffe")
    conv.build((None, None, None, 3))
    assert not conv.trainable and conv.trainable_weights == []


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="caffe"):
        preprocessing_layers("imagenet")


def test_model_with_every_mode_round_trips_through_keras_file_in_safe_mode(tmp_path):
    import keras

    inputs = keras.Input((None, None, 3))
    outputs = [apply_symbolic(preprocessing_layers(mode), inputs) for mode in ("tf", "torch", "caffe", "unit")]
    model = keras.Model(inputs, outputs)
    path = tmp_path / "preprocess.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    for before, after in zip(model.predict(X, verbose=0), again.predict(X, verbose=0), strict=True):
        assert np.array_equal(before, after)
    caffe_ref = np.asarray(keras.applications.vgg16.preprocess_input(X.copy()))
    assert np.abs(again.predict(X, verbose=0)[2] - caffe_ref).max() <= TOLERANCE
    assert not again.get_layer("preprocess_caffe").trainable


def apply_symbolic(layers, x):
    for layer in layers:
        x = layer(x)
    return x
