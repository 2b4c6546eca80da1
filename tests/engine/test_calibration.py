"""cnn_studio.evaluation.calibration: ECE, reliability bins, and temperature scaling stored inside the model."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.evaluation.calibration import (
    MIN_CALIBRATION_IMAGES,
    apply_temperature_to_model,
    calibrate,
    ece,
    fit_temperature,
    reliability,
    uncertain,
    with_temperature,
)


def _overconfident(n=600, classes=3, seed=0, sharpen=6.0):
    """Logits whose softmax is right ~70% of the time but says ~99%: an over-confident model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    z = rng.normal(size=(n, classes))
    z[np.arange(n), y] += 1.2
    z *= sharpen
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return y, p / p.sum(axis=1, keepdims=True), z


def test_reliability_bins_and_ece_by_hand():
    p = np.array([[0.95, 0.05], [0.95, 0.05], [0.65, 0.35], [0.65, 0.35]])
    y = np.array([0, 1, 0, 0])
    bins = reliability(p, y)
    full = {(round(b["low"], 1), b["count"]) for b in bins if b["count"]}
    assert full == {(0.9, 2), (0.6, 2)}
    # bin 0.9: confidence 0.95, accuracy 0.5; bin 0.6: confidence 0.65, accuracy 1.0
    assert ece(p, y) == pytest.approx((2 * 0.45 + 2 * 0.35) / 4)


def test_temperature_recovers_the_sharpening_and_lowers_ece():
    y, p, _ = _overconfident()
    t = fit_temperature(p, y)
    assert 3.0 < t < 10.0  # the logits were multiplied by 6
    result = calibrate(p, y)
    assert result["applied"] and result["temperature"] == pytest.approx(t)
    assert result["ece_before"] > 0.2 and result["ece_after"] < result["ece_before"] / 3
    assert result["nll_after"] < result["nll_before"]
    q = with_temperature(p, t)
    assert (q.argmax(axis=1) == p.argmax(axis=1)).all()  # the answer never changes, only its confidence


def test_too_few_images_are_not_calibrated():
    y, p, _ = _overconfident(n=MIN_CALIBRATION_IMAGES - 1)
    result = calibrate(p, y)
    assert not result["applied"] and result["temperature"] == 1.0 and "too few" in result["reason"]


def test_temperature_inside_a_saved_keras_model_lowers_ece(tmp_path):
    import keras

    rng = np.random.default_rng(1)
    n, d, c = 500, 8, 3
    y = rng.integers(0, c, n)
    centres = rng.normal(size=(c, d))
    x = (centres[y] + 1.3 * rng.normal(size=(n, d))).astype("float32")
    inputs = keras.Input((d,))
    model = keras.Model(inputs, keras.layers.Dense(c, activation="softmax", name="predictions")(inputs))
    # a least-squares fit of one-hot targets, then multiplied by 8: right often, far too sure
    w, *_ = np.linalg.lstsq(np.c_[x, np.ones(n)], np.eye(c)[y] * 2 - 1, rcond=None)
    model.get_layer("predictions").set_weights([8 * w[:-1].astype("float32"), 8 * w[-1].astype("float32")])
    p = model.predict(x, verbose=0)
    result = calibrate(p, y)
    assert result["applied"] and result["temperature"] > 2
    apply_temperature_to_model(model, result["temperature"])
    path = tmp_path / "calibrated.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    q = reloaded.predict(x, verbose=0)
    assert q == pytest.approx(with_temperature(p, result["temperature"]), abs=1e-4)
    assert ece(q, y) < ece(p, y) / 2
    assert (q.argmax(axis=1) == p.argmax(axis=1)).all()


def test_uncertain_threshold():
    assert uncertain(0.55, 0.6) and not uncertain(0.6, 0.6) and not uncertain(0.1, None)
