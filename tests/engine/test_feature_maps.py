"""Feature maps follow stride and padding; the architecture table accounts for every parameter."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.core.errors import ConfigError


def nested_model(side: int = 33):
    """Classifier-shaped model: Input → Rescaling → nested functional "backbone" → pool → Dense."""
    import keras
    from keras import layers

    inner_in = keras.Input((side, side, 3))
    x = layers.Conv2D(4, 3, strides=2, padding="valid", name="conv_valid_s2")(inner_in)
    x = layers.Conv2D(6, 3, strides=1, padding="same", name="conv_same")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    backbone = keras.Model(inner_in, x, name="backbone")
    inputs = keras.Input((side, side, 3), name="image")
    y = layers.Rescaling(1 / 255.0, name="preprocess_unit")(inputs)
    y = backbone(y, training=False)
    y = layers.GlobalAveragePooling2D(name="pool")(y)
    outputs = layers.Dense(2, activation="softmax", name="predictions")(y)
    return keras.Model(inputs, outputs, name="nested")


@pytest.fixture(scope="module")
def small_cnn():
    import keras

    from cnn_studio.backbones.classifier import build_classifier

    keras.utils.set_random_seed(0)
    return build_classifier(registry.get("small_cnn"), 2, image_size=32)


def expected_side(n: int, k: int, s: int, padding: str) -> int:
    return -(-n // s) if padding == "same" else (n - k) // s + 1


@pytest.mark.slow
def test_shapes_follow_stride_and_padding():
    from cnn_studio.explain.feature_maps import feature_maps, list_feature_layers

    model = nested_model(33)
    infos = {i.name: i for i in list_feature_layers(model)}
    assert "backbone/conv_valid_s2" in infos and "backbone" not in infos
    image = np.random.default_rng(0).uniform(0, 255, (33, 33, 3)).astype(np.float32)
    valid = infos["backbone/conv_valid_s2"]
    assert (valid.kind, valid.strides, valid.padding, valid.kernel_size) == ("conv", (2, 2), "valid", (3, 3))
    assert valid.output_shape[1:3] == (expected_side(33, 3, 2, "valid"),) * 2 == (16, 16)
    assert infos["backbone/conv_same"].output_shape[1:3] == (16, 16)
    assert infos["backbone/pool2"].output_shape[1:3] == (8, 8)
    for name, info in infos.items():
        fm = feature_maps(model, image, name, max_channels=3)
        assert fm.maps.shape[1:] == info.output_shape[1:3], name
        assert fm.total_channels == info.output_shape[3]


@pytest.mark.slow
def test_same_padding_keeps_size_and_pooling_halves_it(small_cnn):
    from cnn_studio.explain.feature_maps import feature_maps, list_feature_layers

    image = np.random.default_rng(1).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    infos = {i.name: i for i in list_feature_layers(small_cnn)}
    conv = infos["backbone/block1_conv"]
    assert conv.padding == "same" and conv.strides == (1, 1)
    fm = feature_maps(small_cnn, image, "backbone/block1_conv", max_channels=4)
    assert fm.maps.shape == (4, 32, 32)
    assert fm.total_channels == 16 and len(set(fm.channels)) == 4
    assert fm.maps.dtype == np.float32 and fm.maps.min() >= 0.0 and fm.maps.max() <= 1.0
    pooled = feature_maps(small_cnn, image, "block1_pool")  # bare inner names work too
    assert pooled.layer == "backbone/block1_pool"
    assert pooled.maps.shape[1:] == (16, 16)
    with pytest.raises(ConfigError):
        feature_maps(small_cnn, image, "backbone/nope")


@pytest.mark.slow
def test_feature_maps_match_a_direct_submodel():
    """The tap through the nested model returns exactly what the backbone's own layer computes."""
    import keras

    from cnn_studio.explain.feature_maps import LayerTap

    model = nested_model(33)
    image = np.random.default_rng(2).uniform(0, 255, (1, 33, 33, 3)).astype(np.float32)
    backbone = model.get_layer("backbone")
    direct = keras.Model(backbone.input, backbone.get_layer("conv_same").output)(image / 255.0)
    tapped, probs = LayerTap(model, "backbone/conv_same")(image)
    np.testing.assert_allclose(np.asarray(tapped), np.asarray(direct), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(probs), np.asarray(model(image)), rtol=1e-5, atol=1e-6)


def test_grid_tiles_maps():
    from cnn_studio.explain.feature_maps import grid

    maps = np.random.default_rng(0).uniform(0, 1, (5, 8, 8)).astype(np.float32)
    g = grid(maps, cols=3, cell=16, gap=2)
    assert g.dtype == np.uint8 and g.shape == (2 * 16 + 2, 3 * 16 + 2 * 2, 3)
    assert (g[16:18] == 255).all()  # the gap between rows is white
    grey = grid(maps[:1], colormap=None, cell=8)
    assert np.array_equal(grey[..., 0], np.round(maps[0] * 255).astype(np.uint8))


@pytest.mark.slow
def test_first_layer_filters_skip_the_caffe_colour_conv():
    import keras

    from cnn_studio.backbones.preprocessing import preprocessing_layers
    from cnn_studio.explain.feature_maps import first_layer_filters

    inner_in = keras.Input((16, 16, 3))
    backbone = keras.Model(inner_in, keras.layers.Conv2D(8, 5, name="conv1")(inner_in), name="backbone")
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for layer in preprocessing_layers("caffe"):  # frozen 1x1 conv with 3 input channels
        x = layer(x)
    model = keras.Model(inputs, backbone(x))
    filters = first_layer_filters(model)
    assert filters.shape == (8, 5, 5, 3) and filters.dtype == np.float32
    assert np.allclose(filters.min(axis=(1, 2, 3)), 0) and np.allclose(filters.max(axis=(1, 2, 3)), 1)


@pytest.mark.slow
def test_architecture_table_accounts_for_every_parameter(small_cnn):
    from cnn_studio.backbones.classifier import freeze_backbone
    from cnn_studio.explain.architecture import architecture_table, format_architecture

    for model in (small_cnn, nested_model(33)):
        table = architecture_table(model)
        assert sum(r.params for r in table) == table.total == model.count_params()
        assert table.trainable + table.non_trainable == table.total
    table = architecture_table(small_cnn)
    conv = next(r for r in table if r.name == "backbone/block1_conv")
    kernel = small_cnn.get_layer("backbone").get_layer("block1_conv").kernel
    assert conv.params == sum(int(np.prod(w.shape)) for w in
                              small_cnn.get_layer("backbone").get_layer("block1_conv").weights)
    assert conv.note.startswith(f"3x3x3 kernel x {kernel.shape[-1]} filters") and "32x32" in conv.note
    assert conv.output_shape[1:] == (32, 32, 16)
    freeze_backbone(small_cnn)
    try:
        frozen = architecture_table(small_cnn)
        head = sum(r.params for r in frozen if not r.name.startswith("backbone/"))
        assert frozen.trainable == head
        assert not any(r.trainable for r in frozen if r.name.startswith("backbone/") and r.params)
    finally:
        small_cnn.get_layer("backbone").trainable = True
    text = format_architecture(table)
    assert "backbone/block4_conv" in text and f"{table.total:,} parameters" in text
