"""Everyday image corruptions for robustness checks, on float batches of raw pixels (0–255).

Each function takes ``images`` float ``(N, H, W, 3)`` (or one ``(H, W, 3)`` image) and a level,
returns a new float32 array of the same shape clipped to [0, 255], and is deterministic: random
ones take a ``seed``. Levels are in units a person can picture:

* ``gaussian_noise(sigma)``: noise standard deviation in pixel values (0–255 scale);
* ``brightness(delta)``: shift by ``delta`` × 255 (−0.2 darkens by a fifth of the range);
* ``contrast(factor)``: scale each image's deviations from its mean (1 = unchanged, 0.5 = flatter);
* ``blur(sigma)``: Gaussian blur, sigma in pixels (separable numpy convolution, edges reflected);
* ``jpeg(quality)``: a JPEG save and reload with Pillow at that quality (1–95).

``clip=False`` (all but ``jpeg``) leaves values outside 0–255 as they are: the robustness check of a
multi-band model perturbs its raw bands mapped to a 0–255 scale per band (the training set's
0.5–99.5 percentile window), where values beyond the window are real data, not overflow.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from cnn_studio.core.errors import ConfigError


def _batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(images, np.float32)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    if arr.ndim != 4:
        raise ConfigError(f"Images: expected shape (N, H, W, C) or (H, W, C), received {np.shape(images)}.")
    return arr, single


def _done(arr: np.ndarray, single: bool, clip: bool = True) -> np.ndarray:
    out = (np.clip(arr, 0.0, 255.0) if clip else arr).astype(np.float32)
    return out[0] if single else out


def gaussian_noise(images: np.ndarray, sigma: float, *, seed: int = 0, clip: bool = True) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma`` (pixel values), seeded."""
    arr, single = _batch(images)
    noise = np.random.default_rng(seed).normal(0.0, float(sigma), size=arr.shape)
    return _done(arr + noise, single, clip)


def brightness(images: np.ndarray, delta: float, *, seed: int = 0, clip: bool = True) -> np.ndarray:
    """Shift every pixel by ``delta`` × 255 (``delta`` in [−1, 1])."""
    arr, single = _batch(images)
    return _done(arr + float(delta) * 255.0, single, clip)


def contrast(images: np.ndarray, factor: float, *, seed: int = 0, clip: bool = True) -> np.ndarray:
    """Scale each image's (and channel's) deviation from its mean by ``factor``."""
    arr, single = _batch(images)
    mean = arr.mean(axis=(1, 2), keepdims=True)
    return _done((arr - mean) * float(factor) + mean, single, clip)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian kernel of radius ``ceil(3 sigma)``."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _convolve_axis(arr: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    radius = len(kernel) // 2
    pad = [(0, 0)] * arr.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(arr, pad, mode="reflect" if arr.shape[axis] > radius else "edge")
    out = np.zeros_like(arr, dtype=np.float64)
    n = arr.shape[axis]
    for i, weight in enumerate(kernel):
        out += weight * np.take(padded, np.arange(i, i + n), axis=axis)
    return out


def blur(images: np.ndarray, sigma: float, *, seed: int = 0, clip: bool = True) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (0 = unchanged)."""
    arr, single = _batch(images)
    if sigma <= 0:
        return _done(arr, single, clip)
    k = gaussian_kernel(float(sigma))
    out = _convolve_axis(_convolve_axis(arr.astype(np.float64), k, axis=1), k, axis=2)
    return _done(out, single, clip)


def jpeg(images: np.ndarray, quality: float, *, seed: int = 0) -> np.ndarray:
    """Save each image as JPEG at ``quality`` (1–95) with Pillow and decode it again."""

    arr, single = _batch(images)
    q = int(np.clip(round(quality), 1, 95))
    out = np.empty_like(arr)
    for i, img in enumerate(np.clip(np.round(arr), 0, 255).astype(np.uint8)):
        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as decoded:
            out[i] = np.asarray(decoded.convert("RGB"), np.float32)
    return _done(out, single)


Perturbation = Callable[..., np.ndarray]

PICTURE_ONLY: dict[str, str] = {
    "jpeg": "JPEG compression exists for 8-bit pictures; raw bands are not stored as JPEG",
}
"""Perturbations a multi-band model is not tested with, and why (the report says so)."""

PERTURBATIONS: dict[str, Perturbation] = {
    "gaussian_noise": gaussian_noise,
    "brightness": brightness,
    "contrast": contrast,
    "blur": blur,
    "jpeg": jpeg,
}
"""Name → function, in report order."""

DEFAULT_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (5.0, 15.0, 30.0, 60.0),
    "brightness": (-0.3, -0.15, 0.15, 0.3),
    "contrast": (1.5, 0.75, 0.5, 0.25),
    "blur": (0.5, 1.0, 2.0, 3.0),
    "jpeg": (75.0, 40.0, 20.0, 10.0),
}
"""Levels tried by default, from mild to severe (brightness/contrast both ways)."""

LEVEL_UNITS: dict[str, str] = {
    "gaussian_noise": "noise sigma (pixel values)",
    "brightness": "shift (fraction of 0-255)",
    "contrast": "contrast factor",
    "blur": "blur sigma (pixels)",
    "jpeg": "JPEG quality",
}


def apply(name: str, images: np.ndarray, level: float, *, seed: int = 0, clip: bool = True) -> np.ndarray:
    """Apply the perturbation called ``name`` at ``level`` (``clip=False``: no clipping to 0–255).

    Raises
    ------
    ConfigError
        If ``name`` is unknown.
    """
    fn = PERTURBATIONS.get(name)
    if fn is None:
        raise ConfigError(f"Perturbation: expected one of {', '.join(PERTURBATIONS)}, received {name!r}.")
    return fn(images, level, seed=seed) if clip else fn(images, level, seed=seed, clip=False)
