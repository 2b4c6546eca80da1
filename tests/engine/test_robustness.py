"""Perturbations stay in range and repeat exactly; FGSM keeps its bound and hurts an undefended model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import ConfigError
from cnn_studio.explain import perturbations as P

SIZE = 32
CLASSES = ("dark_left", "dark_right")


def quadrant_images(n: int, seed: int):
    """Class 0: a brighter top-left quadrant, class 1: bottom-right, on strong noise (learnable, not easy)."""
    rng = np.random.default_rng(seed)
    x = np.floor(rng.uniform(0, 120, (2 * n, SIZE, SIZE, 3))).astype(np.float32)
    y = np.repeat([0, 1], n)
    q = SIZE // 2
    x[:n, :q, :q] += 50.0
    x[n:, q:, q:] += 50.0
    return x, y


def write_run(root, model, x, y):
    """A run folder as the trainer writes it: config, labels, split (PNG files), best.keras."""
    from PIL import Image

    from cnn_studio.core.fsutil import write_json, write_text
    from cnn_studio.core.paths import RunLayout
    from cnn_studio.data.records import ImageRecord, Split
    from cnn_studio.training.config import TrainConfig

    layout = RunLayout(root)
    (root / "images").mkdir(parents=True)
    records = []
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        path = root / "images" / f"{CLASSES[label]}_{i:02d}.png"
        Image.fromarray(img.astype(np.uint8)).save(path)
        records.append(ImageRecord(path=str(path), label=int(label), width=SIZE, height=SIZE))
    config = TrainConfig(backbone="small_cnn", weights="none", image_size=SIZE, epochs=1, seed=0)
    write_json(layout.config, config.to_dict())
    write_text(layout.labels, "\n".join(CLASSES) + "\n")
    split = Split(class_names=CLASSES, train=tuple(records[::2]), val=tuple(records[1::2]))
    write_json(layout.split, split.to_dict())
    model.save(layout.best_model)
    return layout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import keras

    from cnn_studio.backbones.classifier import build_classifier

    keras.utils.set_random_seed(0)
    x, y = quadrant_images(12, seed=0)
    model = build_classifier(registry.get("small_cnn"), 2, image_size=SIZE)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=15, verbose=0)
    layout = write_run(tmp_path_factory.mktemp("run"), model, x, y)
    return model, x, y, layout


def accuracy(model, x, y) -> float:
    return float((np.asarray(model(x, training=False)).argmax(1) == y).mean())


# ------------------------------------------------------------------ perturbations


@pytest.mark.parametrize("name", list(P.PERTURBATIONS))
def test_perturbations_stay_in_range_and_are_deterministic(name):
    x = np.random.default_rng(0).uniform(0, 255, (3, 20, 24, 3)).astype(np.float32)
    x[0, :5] = 0.0
    x[1, :5] = 255.0
    for level in P.DEFAULT_LEVELS[name]:
        a = P.apply(name, x, level, seed=7)
        b = P.apply(name, x, level, seed=7)
        assert a.shape == x.shape and a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 255.0
        assert np.array_equal(a, b)
        assert not np.array_equal(a, x)
    single = P.apply(name, x[0], P.DEFAULT_LEVELS[name][0], seed=7)
    assert single.shape == x[0].shape


def test_perturbations_do_what_they_say():
    rng = np.random.default_rng(1)
    x = rng.uniform(50, 200, (2, 24, 24, 3)).astype(np.float32)
    assert not np.array_equal(P.gaussian_noise(x, 10, seed=1), P.gaussian_noise(x, 10, seed=2))
    np.testing.assert_allclose(P.brightness(x, 0.1), x + 25.5, rtol=1e-6)
    np.testing.assert_allclose(P.contrast(x, 1.0), x, atol=1e-4)
    assert P.contrast(x, 0.5).std() < 0.6 * x.std()
    assert np.array_equal(P.blur(x, 0), x)
    blurred = P.blur(x, 2.0)
    assert blurred.std() < 0.5 * x.std()
    np.testing.assert_allclose(blurred.mean(), x.mean(), rtol=0.02)  # a blur keeps overall brightness
    flat = np.full((1, 16, 16, 3), 90.0, np.float32)
    np.testing.assert_allclose(P.blur(flat, 1.5), flat, atol=1e-3)
    assert np.abs(P.jpeg(x, 10) - x).mean() > np.abs(P.jpeg(x, 90) - x).mean()
    with pytest.raises(ConfigError):
        P.apply("fog", x, 1.0)


# ------------------------------------------------------------------ FGSM


@pytest.mark.slow
def test_fgsm_respects_epsilon_and_lowers_accuracy(trained):
    from cnn_studio.explain.robustness import fgsm

    model, x, y, _ = trained
    clean = accuracy(model, x, y)
    assert clean >= 0.9
    accs = {}
    for eps in (0.001, 0.005, 0.01, 0.03, 0.1):
        adv = fgsm(model, x, y, eps)
        assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 255
        assert np.abs(adv - x).max() <= eps * 255 + 1e-3
        assert np.abs(adv - x).max() >= 0.5 * eps * 255  # it did move the pixels
        accs[eps] = accuracy(model, adv, y)
    assert accs[0.1] < clean  # about 25 grey levels per pixel fool the undefended model
    assert accs[0.1] <= accs[0.01] <= accs[0.001]


@pytest.mark.slow
def test_run_robustness_writes_report_examples_and_plot(trained):
    from PIL import Image

    from cnn_studio.core.events import TaskProgress
    from cnn_studio.explain.robustness import run_robustness

    model, _, _, layout = trained
    events = []
    levels = {"gaussian_noise": (10.0, 80.0), "blur": (1.0,)}
    report = run_robustness(layout.root, levels=levels, epsilons=(0.01, 0.1), sink=events.append)
    assert report.subset == "val" and report.n_images == 12
    assert 0.0 <= report.clean_accuracy <= 1.0
    assert [(r["perturbation"], r["level"]) for r in report.rows] == [
        ("gaussian_noise", 10.0), ("gaussian_noise", 80.0), ("blur", 1.0), ("fgsm", 0.01), ("fgsm", 0.1)]
    progress = [e for e in events if isinstance(e, TaskProgress)]
    assert progress and progress[-1].done == progress[-1].total
    saved = json.loads(layout.robustness.read_text())
    assert saved["clean_accuracy"] == report.clean_accuracy and len(saved["rows"]) == 5
    assert "0-255" in saved["epsilon_note"]
    plot = layout.root / saved["plot"]
    assert Image.open(plot).size[0] > 100
    for ex in saved["examples"]:
        assert ex["clean_pred"] == ex["true"] != ex["adv_pred"]
        assert (layout.root / ex["image"]).is_file()

    # the model card of any later export carries the check
    from cnn_studio.export.model_card import build_card
    from cnn_studio.runs.run_folder import open_run

    card = build_card(open_run(layout.root), [], 32).to_markdown()
    assert f"Robustness check on 12 images: clean accuracy {report.clean_accuracy:.4f}" in card
    assert "- fgsm 0.1: accuracy" in card


@pytest.mark.slow
def test_cancelled_check_writes_no_report(trained, tmp_path):
    from cnn_studio.explain.robustness import robustness_report
    from cnn_studio.predict.predictor import Classifier
    from cnn_studio.runs.run_folder import open_run

    model, _, _, layout = trained
    info = open_run(layout.root)
    token = CancelToken()
    seen = []

    def sink(event):
        seen.append(event)
        if len(seen) == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        robustness_report(Classifier(model, CLASSES, SIZE), info.split.val, out_dir=tmp_path / "r",
                          sink=sink, cancel=token)
    assert not (tmp_path / "r").exists()
