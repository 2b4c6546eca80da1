"""Backbone registry, in-model preprocessing, weights resolution and the classifier."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.backbones.weights import resolve_weights, weights_status
from cnn_studio.errors import ConfigError, WeightsUnavailable

X = np.random.default_rng(0).uniform(0, 255, (2, 40, 36, 3)).astype("float32")


def test_registry_lookup_and_aliases():
    assert registry.get("VGG16").key == "vgg16"
    assert registry.get("InceptionV3").key == "inception_v3"
    assert registry.get("mobilenet-v2").key == "mobilenet_v2"
    for name in ("vgg16", "vgg19", "inception_v3", "resnet50", "efficientnet_b0", "convnext_tiny", "small_cnn"):
        assert name in registry.keys()
    with pytest.raises(ConfigError) as info:
        registry.get("alexnet")
    assert "vgg16" in info.value.message and "backbones" in info.value.hint


@pytest.mark.parametrize("mode,module", [("tf", "inception_v3"), ("torch", "densenet"), ("caffe", "vgg16")])
def test_preprocessing_layers_match_keras_preprocess_input(mode, module):
    import importlib

    from cnn_studio.backbones.preprocessing import preprocessing_layers

    ref = importlib.import_module(f"keras.applications.{module}").preprocess_input(X.copy())
    y = X
    for layer in preprocessing_layers(mode):
        y = layer(y)
    assert np.abs(np.asarray(y) - ref).max() <= 1e-4


def test_weights_status_reads_the_keras_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = registry.get("vgg16")
    st = weights_status(spec)
    assert not st.available and spec.weights_file_notop in st.message
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / spec.weights_file_notop).write_bytes(b"\x89HDF")
    st = weights_status(spec)
    assert st.available and st.source == "cache" and st.path.startswith(str(tmp_path))
    assert weights_status("small_cnn").source == "not_applicable"
    assert weights_status("mobilenet_v2", 160).path.endswith("1.0_160_no_top.h5")


def test_resolve_weights_rejects_bad_files(tmp_path):
    assert resolve_weights("vgg16", "none") is None
    assert resolve_weights("vgg16", "imagenet") == "imagenet"
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        resolve_weights("vgg16", str(tmp_path / "nope.h5"))
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(WeightsUnavailable, match="not a Keras weights file"):
        resolve_weights("vgg16", str(bad))
    with pytest.raises(WeightsUnavailable, match="no ImageNet weights"):
        resolve_weights("small_cnn", "imagenet")


@pytest.mark.slow
def test_imagenet_offline_without_cache_names_file_and_folder(tmp_path, monkeypatch):
    from cnn_studio.backbones.classifier import build_classifier

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailable) as info:
        build_classifier("mobilenet_v3_small", 2, weights="imagenet", image_size=32)
    err = info.value
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in err.message
    assert str(tmp_path / "models") in err.hint and "none" in err.hint


@pytest.mark.slow
def test_local_weights_file_round_trip_and_mismatch(tmp_path):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier

    a = build_classifier("small_cnn", 2, image_size=32)
    f = tmp_path / "base.weights.h5"
    backbone_of(a).save_weights(f)
    b = build_classifier("small_cnn", 2, image_size=32, weights=str(f))
    for wa, wb in zip(backbone_of(a).get_weights(), backbone_of(b).get_weights(), strict=True):
        assert np.array_equal(wa, wb)
    with pytest.raises(WeightsUnavailable, match="does not fit"):
        build_classifier("vgg16", 2, image_size=32, weights=str(f))


@pytest.mark.slow
def test_classifier_structure_freeze_unfreeze_and_feature_split(tmp_path):
    import keras

    from cnn_studio.backbones.classifier import (
        build_classifier,
        freeze_backbone,
        input_size_of,
        split_for_feature_cache,
        trainable_layer_count,
        unfreeze_top,
    )

    m = build_classifier("vgg16", 3, image_size=32)
    assert m.output_shape == (None, 3) and input_size_of(m) == 32
    freeze_backbone(m)
    assert trainable_layer_count(m) == 0
    assert unfreeze_top(m, 3) == 3 == trainable_layer_count(m)
    assert [layer.name for layer in m.get_layer("backbone").layers if layer.trainable and layer.weights] == [
        "block5_conv1", "block5_conv2", "block5_conv3"]
    r = build_classifier("resnet50", 2, image_size=32)
    n = unfreeze_top(r, 10)
    bn = [la for la in r.get_layer("backbone").layers if isinstance(la, keras.layers.BatchNormalization)]
    assert n < 10 and not any(la.trainable for la in bn), "BatchNorm stays frozen"

    features, head = split_for_feature_cache(m)
    assert np.abs(np.asarray(head(features(X))) - np.asarray(m(X))).max() < 1e-5
    path = tmp_path / "m.keras"
    m.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert np.abs(np.asarray(again(X)) - np.asarray(m(X))).max() < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("key", registry.keys())
def test_every_backbone_builds_at_its_min_size(key):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier

    spec = registry.get(key)
    size = max(spec.min_size, 32)
    m = build_classifier(spec, 2, image_size=size)
    assert m.output_shape == (None, 2)
    assert backbone_of(m).output.shape[-1] == spec.feature_width
    out = np.asarray(m(X[:1]))
    assert np.allclose(out.sum(), 1.0, atol=1e-4)
