"""Augmentation layers by name: what they build, what they do to pixels, and their descriptions."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.core.errors import ConfigError
from cnn_studio.data.augment import AUGMENTATIONS, build_augmenter, describe, domain_presets
from cnn_studio.training.config import AUGMENTATIONS as CONFIG_AUGMENTATIONS


def _batch(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, size=(4, 32, 32, 3)).astype(np.float32)
    x[:, :, :16] *= 0.2  # a dark left half, so a mirror is visible
    return x


def test_names_match_the_config_and_every_name_is_described():
    assert set(AUGMENTATIONS) == set(CONFIG_AUGMENTATIONS)
    for name in AUGMENTATIONS:
        text = describe(name)
        assert isinstance(text, str) and 20 < len(text) < 200 and "\n" not in text


def test_presets_use_known_names_and_medical_does_not_flip():
    presets = domain_presets()
    assert len(presets) >= 3
    for names in presets.values():
        assert set(names) <= set(AUGMENTATIONS)
    medical = [k for k in presets if "medical" in k.lower()]
    assert medical and "flip" not in presets[medical[0]]


def test_empty_is_none_and_unknown_is_a_clear_error():
    assert build_augmenter((), seed=0) is None
    with pytest.raises(ConfigError, match="flip"):
        build_augmenter(("flip", "sharpen"), seed=0)


@pytest.mark.slow
def test_each_layer_changes_pixels_in_training_only_and_keeps_shape():
    x = _batch()
    for name in AUGMENTATIONS:
        aug = build_augmenter((name,), seed=3)
        # a random layer may leave one sample as it was; over several calls it must change something
        outs = [np.asarray(aug(x, training=True)) for _ in range(4)]
        assert all(o.shape == x.shape and o.dtype == np.float32 for o in outs), name
        assert any(not np.allclose(o, x, atol=1e-3) for o in outs), f"{name} never changed the batch"
        assert np.allclose(np.asarray(aug(x, training=False)), x), f"{name} must be a no-op at inference"


@pytest.mark.slow
def test_flip_mirrors_left_right_and_brightness_stays_in_pixel_range():
    x = _batch()
    flip = build_augmenter(("flip",), seed=1)
    out = np.concatenate([np.asarray(flip(x, training=True)) for _ in range(4)])
    src = np.concatenate([x] * 4)
    mirrored = [np.allclose(o, s[:, ::-1]) for o, s in zip(out, src, strict=True)]
    unchanged = [np.allclose(o, s) for o, s in zip(out, src, strict=True)]
    assert all(m or u for m, u in zip(mirrored, unchanged, strict=True)) and any(mirrored)
    bright = build_augmenter(("brightness", "contrast"), seed=2)
    y = np.asarray(bright(x, training=True))
    assert y.min() >= 0.0 and y.max() <= 255.0, "value_range=(0, 255): raw pixels stay raw pixels"
