"""explain.shortcuts: Grad-CAM mass on the border or one off-centre spot is reported with examples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnn_studio.explain.shortcuts import analyse_heatmaps, border_mask, check_shortcuts

SIZE = 64


def _blob_maps(centres, size=32, sigma=3.0):
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2)) for cy, cx in centres])


def test_border_mask_area():
    assert border_mask(64).mean() == pytest.approx(1 - (48 / 64) ** 2)


def test_hand_made_maps():
    paths = [f"/x/{i}.png" for i in range(8)]
    labels = [0, 1] * 4
    corner = analyse_heatmaps(_blob_maps([(1, 1)] * 8), labels, paths, ["a", "b"])
    assert corner["suspected"] and corner["kind"] == "border" and corner["region"] == "top-left corner"
    assert len(corner["examples"]) == 5 and "border" in corner["message"]
    centre = analyse_heatmaps(_blob_maps([(16, 16)] * 8, sigma=6), labels, paths, ["a", "b"])
    assert not centre["suspected"] and "No shortcut" in centre["message"]
    spot = analyse_heatmaps(_blob_maps([(6, 25)] * 8, sigma=1.5), labels, paths, ["a", "b"])  # off-centre, inside
    assert spot["suspected"] and spot["kind"] == "same_region" and spot["region"] == "top-right corner"
    apart = analyse_heatmaps(_blob_maps([(6, 25), (25, 6)] * 4, sigma=1.5), labels, paths, ["a", "b"])
    assert not apart["suspected"]  # each class in its own place: that is how classes differ
    few = analyse_heatmaps(_blob_maps([(1, 1)] * 2), [0, 1], paths[:2], ["a", "b"])
    assert not few["suspected"] and "Too few" in few["message"]


def _background(rng):
    arr = rng.integers(40, 140, (SIZE // 8, SIZE // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(arr).resize((SIZE, SIZE), Image.Resampling.BILINEAR)).copy()


def _write(root, make, per_class=24):
    rng = np.random.default_rng(7)
    paths, labels = [], []
    for label, name in enumerate(("normal", "pneumonia")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            p = root / name / f"{i}.png"
            Image.fromarray(make(label, rng)).save(p)
            paths.append(str(p))
            labels.append(label)
    return paths, labels


def _corner_marker(label, rng):
    arr = _background(rng)
    arr[2:10, 2:10] = 255 if label else 0  # the "R" marker: white for one class, black for the other
    return arr


def _centred_object(label, rng):
    arr = _background(rng)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    disk = (yy - SIZE / 2 + rng.integers(-3, 4)) ** 2 + (xx - SIZE / 2 + rng.integers(-3, 4)) ** 2 < 14 ** 2
    arr[disk] = (230, 40, 40) if label else (40, 40, 230)
    return arr


def _train_model(paths, labels, seed=0):
    import keras

    from cnn_studio.backbones.classifier import build_classifier
    from cnn_studio.data.pipeline import load_image

    keras.utils.set_random_seed(seed)
    x = np.stack([load_image(p, SIZE, "stretch") for p in paths])
    y = keras.utils.to_categorical(labels, 2)
    model = build_classifier("small_cnn", 2, weights="none", image_size=SIZE, dropout=0.0)
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=8, verbose=0, shuffle=True)
    assert model.evaluate(x, y, verbose=0)[1] >= 0.9  # it learnt the task, by whatever cue
    return model


@pytest.mark.slow
def test_a_corner_marker_fires_and_a_centred_object_does_not(tmp_path):
    paths, labels = _write(tmp_path / "marker", _corner_marker)
    model = _train_model(paths, labels)
    found = check_shortcuts(model, paths, labels, ["normal", "pneumonia"], SIZE, max_per_class=8)
    assert found["suspected"], found["message"]
    assert "corner" in found["region"] or "edge" in found["region"]
    assert set(found["examples"]) <= set(paths) and found["examples"]

    paths, labels = _write(tmp_path / "centred", _centred_object)
    model = _train_model(paths, labels)
    clean = check_shortcuts(model, paths, labels, ["normal", "pneumonia"], SIZE, max_per_class=8)
    assert not clean["suspected"], clean["message"]
    assert clean["border_share"] < 0.5
