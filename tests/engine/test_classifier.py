"""The classifier: every backbone builds, its layout, freezing, the feature-cache split, ``.keras`` round trip."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.core.errors import ConfigError

pytestmark = pytest.mark.slow  # every test here builds networks

X = np.random.default_rng(0).uniform(0, 255, (2, 40, 36, 3)).astype("float32")  # any size: the model resizes


@pytest.mark.parametrize("key", registry.keys())
def test_every_backbone_builds_at_its_min_size(key):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier

    spec = registry.get(key)
    model = build_classifier(spec, 2, image_size=spec.min_size)
    assert model.output_shape == (None, 2)
    base = backbone_of(model)
    assert base.output.shape[-1] == spec.feature_width
    assert abs(base.count_params() / 1e6 - spec.params_millions) <= 0.051, "params_millions matches the network"
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["image", "resize"] and names[-4:] == ["backbone", "pool", "head_dropout", "predictions"]
    assert len(names) - 6 == {"torch": 2, "none": 0}.get(spec.preprocess, 1), "preprocessing layers sit in between"
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    out = np.asarray(model(X[:1]))
    assert out.shape == (1, 2) and abs(float(out.sum()) - 1.0) <= 1e-4


def test_size_and_class_count_are_checked():
    from cnn_studio.backbones.classifier import build_classifier

    with pytest.raises(ConfigError, match="at least 75"):
        build_classifier(registry.get("inception_v3"), 2, image_size=64)
    with pytest.raises(ConfigError, match="at least 2"):
        build_classifier(registry.get("small_cnn"), 1, image_size=32)


def test_backbone_batchnorm_stays_in_inference_mode_when_training():
    """The backbone is called with training=False: training-mode calls give the same output (dropout 0)."""
    from cnn_studio.backbones.classifier import backbone_of, build_classifier, unfreeze_top

    model = build_classifier(registry.get("mobilenet_v2"), 2, image_size=32, dropout=0.0)
    unfreeze_top(model, 1000)
    assert backbone_of(model).trainable
    assert np.abs(np.asarray(model(X, training=True)) - np.asarray(model(X, training=False))).max() <= 1e-6


def test_freeze_and_unfreeze_top_keep_batchnorm_frozen():
    import keras

    from cnn_studio.backbones.classifier import (
        build_classifier,
        freeze_backbone,
        trainable_layer_count,
        unfreeze_top,
    )

    vgg = build_classifier(registry.get("vgg16"), 3, image_size=32)
    freeze_backbone(vgg)
    assert trainable_layer_count(vgg) == 0
    assert unfreeze_top(vgg, 3) == 3 == trainable_layer_count(vgg)
    assert [la.name for la in vgg.get_layer("backbone").layers if la.trainable and la.weights] == [
        "block5_conv1", "block5_conv2", "block5_conv3"]
    assert unfreeze_top(vgg, 10_000) == 13 == trainable_layer_count(vgg), "n beyond the layer count: all"
    assert vgg.get_layer("predictions").trainable and not vgg.get_layer("preprocess_caffe").trainable

    resnet = build_classifier(registry.get("resnet50"), 2, image_size=32)
    n = unfreeze_top(resnet, 10)
    base_layers = resnet.get_layer("backbone").layers
    trainable = [la for la in base_layers if la.trainable and la.weights]
    assert n == len(trainable) == trainable_layer_count(resnet) and 0 < n < 10
    assert not any(la.trainable for la in base_layers if isinstance(la, keras.layers.BatchNormalization))
    assert unfreeze_top(resnet, 10_000) == sum(
        1 for la in base_layers if la.weights and not isinstance(la, keras.layers.BatchNormalization))
    freeze_backbone(resnet)
    assert trainable_layer_count(resnet) == 0 and resnet.get_layer("backbone").trainable_weights == []


def test_feature_cache_split_shares_the_head_with_the_full_model():
    import keras

    from cnn_studio.backbones.classifier import build_classifier, split_for_feature_cache

    model = build_classifier(registry.get("small_cnn"), 2, image_size=32)
    features, head = split_for_feature_cache(model)
    assert features.output_shape == (None, registry.get("small_cnn").feature_width)
    assert np.abs(np.asarray(head(features(X))) - np.asarray(model(X))).max() <= 1e-5
    assert head.get_layer("predictions") is model.get_layer("predictions")

    feats = np.asarray(features(X))
    before = model.get_layer("predictions").get_weights()[0].copy()
    head.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
    head.fit(feats, np.eye(2, dtype="float32"), epochs=1, verbose=0)
    assert not np.array_equal(before, model.get_layer("predictions").get_weights()[0]), "training the head trains the model"
    assert np.abs(np.asarray(head(feats)) - np.asarray(model(X))).max() <= 1e-5


@pytest.mark.parametrize("key", ["vgg16", "small_cnn"])  # the torch and tf layers: test_preprocessing.py
def test_classifier_round_trips_through_keras_file_in_safe_mode(key, tmp_path):
    import keras

    from cnn_studio.backbones.classifier import backbone_of, build_classifier, input_size_of

    spec = registry.get(key)
    model = build_classifier(spec, 2, image_size=spec.min_size)
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert np.abs(np.asarray(again(X)) - np.asarray(model(X))).max() <= 1e-6
    assert input_size_of(again) == spec.min_size
    assert len(backbone_of(again).layers) == len(backbone_of(model).layers)
