"""Grad-CAM on a model that really learned where to look: a bright square decides the class."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.core.errors import ConfigError
from cnn_studio.explain.colormap import COLORMAPS, apply_colormap, lookup_table

SIZE, PATCH = 48, 16


def patch_images(n: int, seed: int):
    """``n`` noise-only images (class 0) then ``n`` with a bright square (class 1) and its boxes."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 60, (2 * n, SIZE, SIZE, 3)).astype(np.float32)
    y = np.repeat([0, 1], n)
    boxes = []
    for i in range(n, 2 * n):
        r, c = (int(v) for v in rng.integers(0, SIZE - PATCH + 1, 2))
        x[i, r:r + PATCH, c:c + PATCH] = 230.0
        boxes.append((r, c))
    return x, y, boxes


@pytest.fixture(scope="module")
def trained():
    """small_cnn (weights none, 48x48) trained until it finds the square; with held-out test images."""
    import keras

    from cnn_studio.backbones.classifier import build_classifier

    keras.utils.set_random_seed(0)
    x, y, _ = patch_images(48, seed=0)
    model = build_classifier(registry.get("small_cnn"), 2, image_size=SIZE)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    train_acc = float((np.asarray(model.predict(x, verbose=0)).argmax(1) == y).mean())
    return model, train_acc, patch_images(8, seed=1)


def inside_outside_ratio(heat: np.ndarray, box: tuple[int, int]) -> float:
    mask = np.zeros(heat.shape, bool)
    mask[box[0]:box[0] + PATCH, box[1]:box[1] + PATCH] = True
    return float(heat[mask].mean() / (heat[~mask].mean() + 1e-6))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_heatmap_lands_on_the_patch_that_decides_the_class(trained, method):
    from cnn_studio.explain.gradcam import gradcam, upsample

    model, train_acc, (xt, yt, boxes) = trained
    assert train_acc >= 0.9
    assert (np.asarray(model.predict(xt, verbose=0)).argmax(1) == yt).mean() >= 0.9
    n = len(boxes)
    for i, box in enumerate(boxes):
        cam = gradcam(model, xt[n + i], method=method)
        assert cam.class_index == 1
        ratio = inside_outside_ratio(upsample(cam.heatmap, (SIZE, SIZE)), box)
        assert ratio > 2.0, f"image {i}: heat inside the square only {ratio:.2f}x the heat outside"


@pytest.mark.slow
def test_heatmap_is_at_the_last_backbone_conv_resolution(trained):
    from cnn_studio.explain.architecture import output_shape, resolve_layer
    from cnn_studio.explain.gradcam import find_last_conv_layer, gradcam

    model, _, (xt, _, _) = trained
    path = find_last_conv_layer(model)
    assert path.startswith("backbone/")  # descended into the nested model
    h, w = output_shape(resolve_layer(model, path))[1:3]
    cam = gradcam(model, xt[-1])
    assert cam.layer_name == path
    assert cam.heatmap.shape == (h, w) == (SIZE // 8, SIZE // 8)
    assert cam.heatmap.dtype == np.float32
    assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() == pytest.approx(1.0)
    probs = np.asarray(model(xt[-1:], training=False))[0]
    assert cam.class_prob == pytest.approx(float(probs[1]), abs=1e-5)


@pytest.mark.slow
def test_explaining_another_class_and_another_layer(trained):
    from cnn_studio.explain.gradcam import gradcam

    model, _, (xt, _, _) = trained
    cam0 = gradcam(model, xt[-1], class_index=0)
    assert cam0.class_index == 0
    probs = np.asarray(model(xt[-1:], training=False))[0]
    assert cam0.class_prob == pytest.approx(float(probs[0]), abs=1e-5)
    early = gradcam(model, xt[-1], layer="backbone/block2_conv")
    assert early.heatmap.shape == (SIZE // 2, SIZE // 2)
    with pytest.raises(ConfigError):
        gradcam(model, xt[-1], class_index=5)
    with pytest.raises(ConfigError):
        gradcam(model, xt[-1], method="lime")
    with pytest.raises(ConfigError):
        gradcam(model, xt[-1], layer="no_such_layer")


@pytest.mark.slow
def test_explain_file_overlays_on_the_original_picture(trained, tmp_path):
    from PIL import Image

    from cnn_studio.explain.gradcam import explain_file
    from cnn_studio.predict.predictor import Classifier

    model, _, _ = trained
    arr = np.random.default_rng(3).integers(0, 60, (60, 90, 3), dtype=np.uint8)
    arr[10:40, 50:80] = 230  # the square, stretched like any other picture
    path = tmp_path / "leaf.png"
    Image.fromarray(arr).save(path)
    for resize in ("stretch", "crop", "pad"):
        original, cam, picture = explain_file(Classifier(model, (), SIZE, resize), path)
        assert original.shape == picture.shape == (60, 90, 3)
        assert picture.dtype == np.uint8
        assert np.array_equal(original, arr)
        assert cam.class_index == 1


def test_overlay_shape_dtype_and_alpha():
    from cnn_studio.explain.gradcam import overlay, upsample

    img = np.full((40, 30, 3), 100, np.uint8)
    heat = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    out = overlay(img, heat, alpha=0.4)
    assert out.shape == (40, 30, 3) and out.dtype == np.uint8
    assert np.array_equal(overlay(img, heat, alpha=0.0), img)
    full = overlay(img, heat, alpha=1.0, colormap="viridis")
    assert np.array_equal(full, apply_colormap(upsample(heat, (40, 30)), "viridis"))
    up = upsample(heat, (40, 30))
    assert up.shape == (40, 30) and up.min() >= 0 and up.max() <= 1
    with pytest.raises(ConfigError):
        overlay(img, heat, alpha=1.5)


def test_colormaps_are_tables_of_256_colours():
    for name in COLORMAPS:
        table = lookup_table(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
    assert apply_colormap(np.array([0.0, 1.0]), "jet").tolist() == [[0, 0, 128], [128, 0, 0]]
    assert apply_colormap(np.array([1.0]), "inferno").tolist() == [[252, 255, 164]]
    viridis = lookup_table("viridis").astype(int)
    assert viridis[:, 1].tolist() == sorted(viridis[:, 1].tolist())  # green rises monotonically
    with pytest.raises(ConfigError):
        lookup_table("rainbow")


@pytest.mark.slow
def test_a_batch_gives_each_image_its_own_map(trained):
    """gradcam_batch (the shortcut check's one pass) equals gradcam image by image: no image's gradient leaks
    into another's, and each map explains that image's own predicted class."""
    from cnn_studio.explain.gradcam import gradcam, gradcam_batch

    model, _, (xt, _, _) = trained
    maps, classes = gradcam_batch(model, xt)
    assert maps.shape[0] == len(xt) and maps.dtype == np.float32
    assert set(classes.tolist()) == {0, 1}, "both classes explained in one batch"
    for i, image in enumerate(xt):
        one = gradcam(model, image)
        assert classes[i] == one.class_index
        np.testing.assert_allclose(maps[i], one.heatmap, atol=1e-4)
