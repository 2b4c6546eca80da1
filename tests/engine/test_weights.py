"""Where weights come from: the Keras cache (no TF), an offline failure that says what to do, a user's file."""

from __future__ import annotations

import socket
import time
import urllib.request

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.backbones.weights import weights_origin, weights_status
from cnn_studio.backbones.weights_store import resolve_weights
from cnn_studio.core.errors import WeightsUnavailable


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras home: nothing cached."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def unreachable_network(monkeypatch):
    """Every urllib request goes to a proxy on a closed local port: a real, immediate connection failure."""
    proxy = urllib.request.ProxyHandler({"http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9"})
    monkeypatch.setattr(urllib.request, "_opener", urllib.request.build_opener(proxy))


def test_weights_status_sees_only_the_cache_file(keras_home):
    spec = registry.get("vgg16")
    st = weights_status(spec)
    assert (st.available, st.source) == (False, "none")
    assert st.path == str(keras_home / "models" / spec.weights_file_notop)
    assert spec.weights_file_notop in st.message
    (keras_home / "models").mkdir()
    (keras_home / "models" / spec.weights_file_notop).write_bytes(b"\x89HDF\r\n")
    st = weights_status(spec)
    assert (st.available, st.source, st.path) == (True, "cache", str(keras_home / "models" / spec.weights_file_notop))
    assert not weights_status(registry.get("vgg19")).available, "another backbone's file does not count"


def test_empty_cache_file_is_not_available(keras_home):
    (keras_home / "models").mkdir()
    (keras_home / "models" / registry.get("xception").weights_file_notop).write_bytes(b"")
    assert not weights_status(registry.get("xception")).available


def test_backbone_without_pretrained_weights_is_not_applicable(keras_home):
    st = weights_status(registry.get("small_cnn"))
    assert (st.available, st.source, st.path) == (False, "not_applicable", None)
    with pytest.raises(WeightsUnavailable, match="no ImageNet weights"):
        resolve_weights(registry.get("small_cnn"), "imagenet")


def test_resolve_none_cached_imagenet_and_bad_paths(keras_home, tmp_path, unreachable_network):
    assert resolve_weights(registry.get("vgg16"), "none") is None
    assert resolve_weights(registry.get("vgg16"), "scratch") is None
    (keras_home / "models").mkdir()
    (keras_home / "models" / registry.get("vgg16").weights_file_notop).write_bytes(b"\x89HDF\r\n")
    assert resolve_weights(registry.get("vgg16"), "imagenet") == "imagenet"  # cached: no network needed
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        resolve_weights(registry.get("vgg16"), str(tmp_path / "nope.weights.h5"))
    notes = tmp_path / "notes.txt"
    notes.write_text("not weights")
    with pytest.raises(WeightsUnavailable, match="not a Keras weights file"):
        resolve_weights(registry.get("vgg16"), str(notes))
    good = tmp_path / "mine.weights.h5"
    good.write_bytes(b"\x89HDF\r\n")
    assert resolve_weights(registry.get("vgg16"), str(good)) == str(good)


@pytest.mark.parametrize("key", ["vgg16", "mobilenet_v3_small"])
def test_imagenet_offline_without_cache_names_file_and_folder(key, keras_home, unreachable_network):
    spec = registry.get(key)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        resolve_weights(spec, "imagenet")
    assert time.monotonic() - start < 30, "an offline download must fail fast"
    err = info.value
    assert spec.weights_file_notop in err.message and str(keras_home / "models") in err.message
    assert spec.weights_file_notop in err.hint and str(keras_home / "models") in err.hint
    assert "choose a local weights file, or train from scratch (weights: none)" in err.hint
    assert socket.getdefaulttimeout() is None, "the download timeout is put back"
    assert not (keras_home / "models" / spec.weights_file_notop).exists(), "no partial file is left"


@pytest.mark.slow
@pytest.mark.parametrize("key,size", [("mobilenet_v2", 160), ("mobilenet_v2", 96), ("mobilenet_v3_small", 32),
                                      ("efficientnet_b0", 32), ("efficientnet_v2_b0", 32), ("resnet50_v2", 32)])
def test_file_name_and_url_are_the_ones_keras_requests(key, size, monkeypatch):
    """Stop Keras' constructor at its get_file call and compare what it asks for with the registry."""
    from keras.src.utils import file_utils

    spec = registry.get(key)
    asked = {}

    class Asked(Exception):
        pass

    def record(fname, origin, **kwargs):
        asked.update(fname=fname, origin=origin, subdir=kwargs.get("cache_subdir"))
        raise Asked

    monkeypatch.setattr(file_utils, "get_file", record)
    with pytest.raises(Asked):
        spec.keras_constructor()(include_top=False, weights="imagenet", input_shape=(size, size, 3),
                                 **dict(spec.constructor_kwargs))
    assert asked == {"fname": spec.weights_file_for(size), "origin": weights_origin(spec, size), "subdir": "models"}


@pytest.mark.slow
def test_local_weights_file_loads_and_a_mismatched_one_is_refused(tmp_path):
    import keras

    from cnn_studio.backbones.classifier import backbone_of, build_backbone, build_classifier

    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    a = build_classifier(registry.get("small_cnn"), 2, image_size=32)
    saved = tmp_path / "small.weights.h5"
    backbone_of(a).save_weights(saved)
    b = build_classifier(registry.get("small_cnn"), 2, image_size=32, weights=str(saved))
    features = [keras.Model(m.inputs, m.get_layer("pool").output) for m in (a, b)]
    assert np.array_equal(features[0].predict(x, verbose=0), features[1].predict(x, verbose=0))

    legacy = tmp_path / "small_legacy.h5"  # the HDF5 layout of the files Keras downloads
    backbone_of(a).save(legacy)
    c = build_backbone(registry.get("small_cnn"), 32, str(legacy))
    for wa, wc in zip(backbone_of(a).get_weights(), c.get_weights(), strict=True):
        assert np.array_equal(wa, wc)

    with pytest.raises(WeightsUnavailable) as info:
        build_classifier(registry.get("vgg16"), 2, image_size=32, weights=str(saved))
    err = info.value
    assert "does not fit VGG16" in err.message
    assert "expected 26 weight arrays (14.71 M parameters)" in err.message
    assert "received 8 weight arrays (0.10 M parameters)" in err.message
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in err.hint
