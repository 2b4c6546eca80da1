"""Data augmentation as Keras preprocessing layers, chosen by name, applied to training batches only.

Augmentation lives in the input pipeline (not the model) so that exported models contain no
random layers. Each name has a plain-words description for the app's tooltips, and
:func:`domain_presets` suggests sets that are safe for common kinds of images.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnn_studio.core.errors import ConfigError

AUGMENTATIONS: tuple[str, ...] = ("flip", "rotate", "zoom", "contrast", "brightness")
GEOMETRIC: tuple[str, ...] = ("flip", "rotate", "zoom")
"""The augmentations that move pixels without changing their values: the only ones for multi-band images."""

_DESCRIPTIONS = {
    "flip": "Mirror images left-right at random. Good for photos and aerial tiles; avoid it when "
    "left and right matter (e.g. chest X-rays, text).",
    "rotate": "Turn images by a small random angle (up to ±18°), as if the camera were tilted.",
    "zoom": "Zoom in or out by up to 10 % at random, so the network does not rely on exact scale.",
    "contrast": "Change contrast by up to 20 % at random, to cope with different scanners or light.",
    "brightness": "Make images up to 20 % brighter or darker at random, for varying exposure.",
}


def describe(name: str) -> str:
    """One line, in plain words, saying what augmentation ``name`` does and when to avoid it."""
    return _DESCRIPTIONS[name]


def domain_presets() -> dict[str, tuple[str, ...]]:
    """Suggested augmentation sets per kind of image."""
    return {
        "Photos": ("flip", "rotate", "zoom", "contrast", "brightness"),
        "Medical scans (left/right matters)": ("rotate", "zoom", "contrast", "brightness"),
        "Satellite, aerial, microscopy": ("flip", "rotate", "zoom", "contrast", "brightness"),
        "Documents, digits, symbols": ("rotate", "zoom", "contrast"),
        "None (fastest; enables the feature cache)": (),
    }


def multiband_augment(names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(kept, dropped)``: multi-band images keep the geometric augmentations only.

    Contrast and brightness are defined on 0–255 pictures; on raw band values (reflectances,
    counts) they would invent spectra that do not exist, so they are left out (the trainer says so).
    """
    kept = tuple(n for n in dict.fromkeys(names) if n in GEOMETRIC)
    return kept, tuple(n for n in dict.fromkeys(names) if n not in GEOMETRIC)


def build_augmenter(names: Sequence[str], seed: int | None = None):
    """A ``keras.Sequential`` of random layers for ``names`` (``None`` when ``names`` is empty).

    Works on float batches of raw 0–255 pixels (the geometric ones on any values and channel count,
    e.g. multi-band images); call it with ``training=True``.
    """
    import keras

    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"Augmentation: expected any of {', '.join(AUGMENTATIONS)}, received {unknown}.")
    if not names:
        return None
    make = {
        "flip": lambda: keras.layers.RandomFlip("horizontal", seed=seed),
        "rotate": lambda: keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed),
        "zoom": lambda: keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        "contrast": lambda: keras.layers.RandomContrast(0.2, value_range=(0, 255), seed=seed),
        "brightness": lambda: keras.layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed),
    }
    return keras.Sequential([make[n]() for n in dict.fromkeys(names)], name="augment")
