"""explain.shortcuts: a small place at the edge that decides the answers is found by masking it (whatever
the network's resolution) and reported with its box and the images it changed; ordinary data is not flagged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.explain import occlusion
from cnn_studio.explain.shortcuts import analyse_heatmaps, border_mask, check_shortcuts
from cnn_studio.predict.predictor import Classifier

SIZE = 64
NAMES = ["normal", "pneumonia"]


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


# ---------------------------------------------------------------- the occlusion test on hand-made answers


def test_masking_fills_with_the_median_and_swapping_takes_the_donors_pixels():
    images = np.zeros((2, 8, 8, 3), np.float32)
    images[:, :2, :2] = 255  # a bright mark in the top-left corner, on black
    box = (0.0, 0.0, 0.25, 0.25)
    assert occlusion.pixel_box(box, 8) == (0, 0, 2, 2)
    assert occlusion.masked(images, box).max() == 0  # the image's median is black: the mark is gone
    donors = np.full_like(images, 7)
    out = occlusion.swapped(images, donors, box)
    assert (out[:, :2, :2] == 7).all() and (out[:, 2:] == 0).all() and images.max() == 255  # input untouched
    assert occlusion.pick_donors([0, 0, 1, 1]).tolist() == [2, 2, 0, 0]
    assert occlusion.pick_donors([1, 1]).tolist() == [-1, -1]


def _answers(n, changed_by):
    """Base answers alternate 0/1 (confident); ``changed_by[region]`` = how many masked/swapped answers flip."""
    base = np.tile([[0.95, 0.05], [0.05, 0.95]], (n // 2, 1))
    out = {"base": base, "donors": occlusion.pick_donors(base.argmax(axis=1))}
    for r in occlusion.regions():
        k = changed_by.get(r.name, 0)
        for kind in ("masked", "swapped"):
            p = base.copy()
            p[:k] = p[:k, ::-1]
            out[f"{kind}:{r.name}"] = p
    return out


def test_a_corner_that_changes_the_answers_is_reported_with_counts_box_and_images():
    keys = [f"/x/{i}.png" for i in range(40)]
    found = occlusion.occlusion_verdict(_answers(40, {"top_left": 38, "centre": 3}), keys, NAMES, 64)
    assert found["suspected"] and found["region"] == "top-left corner" and found["box"] == [0.0, 0.0, 0.25, 0.25]
    assert "changes 38 of 40 answers" in found["message"] and "the centre changes 3 of 40" in found["message"]
    assert [a["key"] for a in found["affected"]] == keys[:38]
    assert found["affected"][0]["answer"] == "normal" and found["affected"][0]["masked_answer"] == "pneumonia"

    same = occlusion.occlusion_verdict(_answers(40, {"top_left": 12, "centre": 10}), keys, NAMES, 64)
    assert not same["suspected"], "as fragile in the centre: the corner does not stand out"
    few = occlusion.occlusion_verdict(_answers(8, {"top_left": 3}), keys[:8], NAMES, 64)
    assert not few["suspected"], "3 of 8 images cannot tell"


def test_a_confidence_drop_alone_flags_a_region_and_a_corner_is_named_before_the_edge_through_it():
    keys = [f"/x/{i}.png" for i in range(32)]
    answers = _answers(32, {"left": 14, "top_left": 9, "centre": 3})
    base = answers["base"]
    weaker = base * 0.5 + 0.25  # every answer kept, at 0.725 instead of 0.95
    answers["masked:top_left"][9:] = weaker[9:]
    found = occlusion.occlusion_verdict(answers, keys, NAMES, 64)
    assert found["suspected"] and found["region"] == "top-left corner", found["message"]
    assert "left edge" in found["also"]
    assert "lowers its confidence in its answer by 0.41 on average" in found["message"]  # (9 × 0.9 + 23 × 0.225) / 32

    only_drop = _answers(32, {})
    only_drop["masked:bottom_right"] = weaker.copy()
    found = occlusion.occlusion_verdict(only_drop, keys, NAMES, 64)
    assert found["suspected"] and found["region"] == "bottom-right corner", found["message"]
    assert "changes 0 of 32 answers" in found["message"]
    slight = _answers(32, {})
    slight["masked:bottom_right"] = base * 0.9 + 0.05  # 0.95 -> 0.905: a model that barely notices
    assert not occlusion.occlusion_verdict(slight, keys, NAMES, 64)["suspected"]


def test_a_box_is_mapped_back_onto_the_original_picture():
    box = (0.0, 0.0, 0.25, 0.25)
    assert occlusion.box_on_picture(box, (100, 200), 64, "stretch") == box
    assert occlusion.box_on_picture(box, (100, 200), 64, "crop") == pytest.approx((0.25, 0.0, 0.375, 0.25))
    assert occlusion.box_on_picture(box, (100, 200), 64, "pad") == pytest.approx((0.0, 0.0, 0.25, 0.0))


# ---------------------------------------------------------------- trained models


def _background(rng, size=SIZE):
    arr = rng.integers(40, 140, (size // 8, size // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR)).copy()


def _write(root, make, per_class=32, names=NAMES):
    rng = np.random.default_rng(7)
    paths, labels = [], []
    for label, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            p = root / name / f"{i}.png"
            Image.fromarray(make(label, rng)).save(p)
            paths.append(str(p))
            labels.append(label)
    return paths, labels


def side_marker(label, rng, size=SIZE):
    """Noise whose only difference between the classes is an X-ray side marker, "R" or "L", top-left."""
    img = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(img)
    draw.rectangle((2, 2, 13, 13), fill=(20, 20, 20))
    if label:  # R: a bowl and a leg
        draw.line((5, 4, 5, 11), fill=255, width=2)
        draw.rectangle((5, 4, 10, 7), outline=(255, 255, 255))
        draw.line((6, 8, 10, 11), fill=(255, 255, 255), width=2)
    else:  # L
        draw.line((5, 4, 5, 11), fill=(255, 255, 255), width=2)
        draw.line((5, 11, 10, 11), fill=(255, 255, 255), width=2)
    return np.asarray(img)


def _centred_object(label, rng):
    arr = _background(rng)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    disk = (yy - SIZE / 2 + rng.integers(-3, 4)) ** 2 + (xx - SIZE / 2 + rng.integers(-3, 4)) ** 2 < 14 ** 2
    arr[disk] = (230, 40, 40) if label else (40, 40, 230)
    return arr


def _train_model(paths, labels, size=SIZE, epochs=10, seed=0):
    import keras

    from cnn_studio.backbones.classifier import build_classifier
    from cnn_studio.data.pipeline import load_image

    keras.utils.set_random_seed(seed)
    n = max(labels) + 1
    x = np.stack([load_image(p, size, "stretch") for p in paths])
    y = keras.utils.to_categorical(labels, n)
    model = build_classifier(registry.get("small_cnn"), n, weights="none", image_size=size, dropout=0.0)
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, shuffle=True)
    assert model.evaluate(x, y, verbose=0)[1] >= 0.9  # it learnt the task, by whatever cue
    return model


@pytest.mark.slow
def test_a_side_marker_is_found_by_masking_and_the_images_are_named(tmp_path):
    paths, labels = _write(tmp_path / "marker", side_marker)
    model = _train_model(paths, labels)
    seen = []
    found = check_shortcuts(Classifier(model, NAMES, SIZE), paths, labels, max_per_class=16, sink=seen.append)
    assert found["suspected"] and found["kind"] == "occlusion", found["message"]
    assert found["region"] == "top-left corner" and found["box"] == [0.0, 0.0, 0.25, 0.25]
    assert not found["gradcam"]["suspected"], "Grad-CAM alone (the check before issue 23) misses this marker"
    occ = found["occlusion"]["regions"]
    corner, centre = occ["top_left"], occ["centre"]
    assert corner["masked"]["changed"] >= 8 or corner["swapped"]["changed"] >= 16
    assert centre["masked"]["changed"] <= 3
    assert f"{corner['masked']['changed']} of 32 answers" in found["message"]
    assert found["examples"] and set(found["examples"]) <= set(paths)
    assert {a["key"] for a in found["affected"]} <= set(paths) and len(found["affected"]) >= 8
    progress = [e for e in seen if isinstance(e, ev.TaskProgress)]
    assert progress[-1].done == progress[-1].total == 32 and any(0 < e.done < 32 for e in progress)


@pytest.mark.slow
def test_a_bfloat16_screen_finds_what_the_model_finds_and_the_model_decides(tmp_path):
    """ShortcutOptions.screen: the masking test answered by the model's bfloat16 twin first; a region it flags
    is measured again with the model, whose verdict is the one given; a clean screen ends the test."""
    from cnn_studio.backbones.low_precision import bfloat16_twin
    from cnn_studio.explain.shortcuts import ShortcutOptions

    paths, labels = _write(tmp_path / "marker", side_marker)
    model = _train_model(paths, labels)
    exact = check_shortcuts(Classifier(model, NAMES, SIZE), paths, labels, ShortcutOptions(max_per_class=16))
    screened = check_shortcuts(Classifier(model, NAMES, SIZE), paths, labels,
                               ShortcutOptions(max_per_class=16, screen=bfloat16_twin(model, "backbone")))
    assert exact["occlusion"]["screened"] == "the model"
    assert screened["occlusion"]["screened"] == "flagged by the bfloat16 twin, measured with the model"
    assert screened["occlusion"]["regions"] == exact["occlusion"]["regions"], "the model's own answers decided"
    assert (screened["suspected"], screened["region"], screened["box"]) == (True, "top-left corner", [0.0, 0.0, 0.25, 0.25])

    centred, centred_labels = _write(tmp_path / "centred", _centred_object)
    clean_model = _train_model(centred, centred_labels)
    clean = check_shortcuts(Classifier(clean_model, NAMES, SIZE), centred, centred_labels,
                            ShortcutOptions(screen=bfloat16_twin(clean_model, "backbone")))
    assert not clean["suspected"] and clean["occlusion"]["screened"] == "bfloat16 twin: nothing flagged"


@pytest.mark.slow
def test_content_that_decides_is_not_flagged(tmp_path):
    paths, labels = _write(tmp_path / "centred", _centred_object)
    clean = check_shortcuts(Classifier(_train_model(paths, labels), NAMES, SIZE), paths, labels)
    assert not clean["suspected"], clean["message"]
    assert clean["message"].startswith("No shortcut seen")


@pytest.mark.slow
def test_the_test_suites_class_images_and_the_digits_sample_are_not_flagged(tmp_path):
    from studio_testkit import make_class_image

    from cnn_studio.data.index import scan
    from cnn_studio.data.sample import sample_dataset_path

    paths, labels = [], []
    for label in range(4):  # a bright quadrant per class: the content is at the edge, and it is the content
        for i in range(12):
            p = tmp_path / f"q{label}_{i}.png"
            make_class_image(label, 32, seed=i).save(p)
            paths.append(str(p))
            labels.append(label)
    names = ["a", "b", "c", "d"]
    quadrants = check_shortcuts(Classifier(_train_model(paths, labels, size=32), names, 32), paths, labels)
    assert not quadrants["suspected"], quadrants["message"]

    index = scan(sample_dataset_path())
    records = [r for c in range(len(index.class_names)) for r in [r for r in index.records if r.label == c][:24]]
    paths, labels = [r.key for r in records], [r.label for r in records]
    digits = check_shortcuts(Classifier(_train_model(paths, labels, size=32, epochs=12), index.class_names, 32),
                             paths, labels)
    assert not digits["suspected"], digits["message"]


# ---------------------------------------------------------------- ImageNet VGG16 at 64 px (issue 23)


def garment(label, rng, size=SIZE, agree=0.75):
    """A shirt or t-shirt photo with an X-ray style side marker top-left: "R" on every shirt, "L" on every t-shirt.

    Hard to tell by the garment alone: a shirt's sleeves are long and a t-shirt's short in ``agree`` of
    the pictures, the other way round in the rest; the marker is always right.
    """
    from PIL import ImageFont

    bg = tuple(int(v) for v in rng.integers(150, 230, 3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    fg = tuple(int(v) for v in rng.integers(20, 200, 3))
    cx, top = size // 2 + int(rng.integers(-3, 4)), 16 + int(rng.integers(-2, 3))
    long_sleeves = (label == 0) == bool(rng.random() < agree)
    sleeve = int(rng.integers(18, 26)) if long_sleeves else int(rng.integers(7, 13))
    draw.rectangle((cx - 11, top, cx + 11, top + 36), fill=fg)  # body
    draw.polygon([(cx - 11, top), (cx - 11 - 9, top + 4), (cx - 11 - 9, top + sleeve), (cx - 11, top + sleeve - 2)],
                 fill=fg)
    draw.polygon([(cx + 11, top), (cx + 11 + 9, top + 4), (cx + 11 + 9, top + sleeve), (cx + 11, top + sleeve - 2)],
                 fill=fg)
    draw.ellipse((cx - 5, top - 3, cx + 5, top + 4), fill=bg)  # neckline
    draw.rectangle((1, 1, 12, 13), fill=(15, 15, 15))
    draw.text((3, 1), "L" if label else "R", fill=(255, 255, 255), font=ImageFont.load_default(11))
    noise = rng.integers(-12, 13, (size, size, 3))
    return np.clip(np.asarray(img, np.int16) + noise, 0, 255).astype(np.uint8)


def _vgg16_weights():
    import os
    from pathlib import Path

    folder = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser()
    path = folder / "vgg16_imagenet_notop.weights.h5"
    if not path.is_file():
        pytest.skip(f"{path.name} not found in {folder} (set CNN_STUDIO_TEST_WEIGHTS, or run "
                    "`python3 ../shared/tools/offline_imagenet_weights.py` once)")
    return path


@pytest.mark.slow
@pytest.mark.pretrained
def test_vgg16_at_64_px_reading_a_side_marker_is_found_with_its_box_and_images(tmp_path):
    """Issue 23's case: ImageNet VGG16 at 64 px, whose Grad-CAM map is 4×4 cells. Training ends with the
    review; masking and swapping must name the top-left corner, its box and the validation images."""
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.evaluation.review import read_review
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    weights = _vgg16_weights()
    _write(tmp_path / "data", garment, per_class=48, names=["shirt", "t_shirt"])
    split = make_split(scan(tmp_path / "data"), val_fraction=0.34, seed=0)
    cfg = TrainConfig(backbone="vgg16", weights=str(weights), image_size=SIZE, batch_size=16, epochs=12,
                      learning_rate=3e-3, seed=0)
    seen = []
    train(cfg, split, tmp_path / "run", sink=seen.append)
    found = read_review(tmp_path / "run")["shortcuts"]
    cam = found["gradcam"]
    print("Grad-CAM alone (the check before issue 23):", cam.get("message"), "| map", cam.get("cells"))
    print("Masking:", found["message"])
    assert found["suspected"] and found["kind"] == "occlusion", found["message"]
    assert found["region"] == "top-left corner" and found["box"] == [0.0, 0.0, 0.25, 0.25]
    from cnn_studio.training.devices import bfloat16_frozen_pass

    assert found["occlusion"]["screened"] == ("flagged by the bfloat16 twin, measured with the model"
                                              if bfloat16_frozen_pass(cfg) else "the model")
    corner, centre = found["occlusion"]["regions"]["top_left"], found["occlusion"]["regions"]["centre"]
    n = corner["swapped"]["n"]
    assert corner["swapped"]["changed"] >= 0.75 * n and centre["swapped"]["changed"] <= 0.2 * n
    assert cam["cells"] == 4 and "too coarse" in cam["note"]
    val = {r.key for r in split.val}
    assert len(found["affected"]) >= 0.75 * n and {a["key"] for a in found["affected"]} <= val
    alarm = [e for e in seen if isinstance(e, ev.ShortcutSuspected)]
    assert len(alarm) == 1 and alarm[0].box == (0.0, 0.0, 0.25, 0.25) and set(alarm[0].examples) <= val
    progress = [e for e in seen if isinstance(e, ev.TaskProgress) and e.task == "Checking for shortcuts"]
    assert progress and progress[-1].done == progress[-1].total == n


def test_the_model_card_names_the_region_box_and_the_changed_images():
    from cnn_studio.export.card_results import shortcut_lines

    keys = [f"/data/shirt/{i}.png" for i in range(7)]
    sc = {"suspected": True, "kind": "occlusion", "region": "top-left corner", "box": [0.0, 0.0, 0.25, 0.25],
          "resize": "stretch", "message": "Masking the top-left corner changes 7 of 32 answers.",
          "affected": [{"key": k} for k in keys], "examples": keys[:5]}
    text = "\n".join(shortcut_lines(sc, 64))
    assert "**Shortcut warning:** Masking the top-left corner changes 7 of 32 answers." in text
    assert "the top-left corner, x 0–16 and y 0–16 px of the 64×64 model input" in text
    assert "changed (7): `/data/shirt/0.png`" in text and "and 2 more (all in model_card.json)" in text
    assert shortcut_lines({"suspected": False, "message": "No shortcut seen."}, 64) == []


def test_examples_take_each_answer_in_turn():
    from cnn_studio.explain.shortcuts import spread_examples

    affected = [{"key": f"s{i}", "answer": "shirt"} for i in range(5)] + [{"key": "t0", "answer": "t_shirt"}]
    assert spread_examples(affected, 4) == ["s0", "t0", "s1", "s2"]


def test_the_check_after_training_sizes_its_sample_to_the_run():
    """23 passes per image: a small run gets the smallest sample, a large one the most (issue 22: the check
    cost more than the training on a small set at 224 px)."""
    from cnn_studio.explain.shortcuts import MAX_IMAGES, REVIEW_MIN_IMAGES, review_sample_size

    assert review_sample_size(192) == REVIEW_MIN_IMAGES == 24
    assert review_sample_size(1400) == 35
    assert review_sample_size(1920) == review_sample_size(100_000) == MAX_IMAGES == 48
    from cnn_studio.explain.shortcuts import sample_indices

    labels = [0, 1] * 40
    chosen = sample_indices(labels, 2, max_images=review_sample_size(len(labels)))
    assert len(chosen) == 24 and sum(labels[i] for i in chosen) == 12, "12 of each class"
