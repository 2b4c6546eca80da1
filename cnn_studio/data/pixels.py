"""How any pixel array becomes 8-bit RGB: windows (a percentile range → 0-255), grey → 3 channels, channel trimming.

These are the policies :data:`cnn_studio.data.decode.SCALING_POLICY` states in words.
"""

from __future__ import annotations

import numpy as np


def percentile_range(arr: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float] | None:
    """``(lo, hi)``: the ``low`` and ``high`` percentiles of the finite values of ``arr`` (their minimum
    and maximum when the percentiles are equal); None when no value is finite.

    Examples
    --------
    >>> percentile_range(np.array([0.0, 1.0, 2.0, np.nan]), 0, 100)
    (0.0, 2.0)
    """
    arr = np.asarray(arr)
    values = arr[np.isfinite(arr)]
    if values.size == 0:
        return None
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    return lo, hi


def window_to_uint8(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Values mapped through ``window``: ``lo`` → 0, ``hi`` → 255, clipped; NaN → 0; an empty window → 0."""
    lo, hi = window
    if hi <= lo:
        return np.zeros(np.shape(values), np.uint8)
    out = np.clip((np.asarray(values, np.float64) - lo) / (hi - lo), 0.0, 1.0) * 255.0
    out[~np.isfinite(out)] = 0.0
    return np.round(out).astype(np.uint8)


def percentile_window(arr: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Map any numeric array to ``uint8``: the ``low`` percentile → 0, the ``high`` percentile → 255.

    NaN/inf become 0. A constant image becomes all zeros.

    Examples
    --------
    >>> a = np.arange(0, 65536, 256, dtype=np.uint16).reshape(16, 16)
    >>> w = percentile_window(a); (int(w.min()), int(w.max()))
    (0, 255)
    """
    values = np.asarray(arr, dtype=np.float64)
    window = percentile_range(values, low, high)
    if window is None:
        return np.zeros(values.shape, np.uint8)
    out = window_to_uint8(values, window)
    out[~np.isfinite(values)] = 0
    return out


def grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Repeat a 2-D ``uint8`` image into 3 identical channels."""
    return np.repeat(grey[:, :, None], 3, axis=2)


def array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Any ``(H, W)`` / ``(H, W, C)`` array → ``uint8`` RGB (extra channels and alpha dropped,
    non-uint8 data windowed by :func:`percentile_window`)."""
    arr = np.asarray(arr)
    while arr.ndim > 3:  # e.g. (1, H, W, C) or (Z, H, W): take the first plane
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] in (1, 2):
        arr = arr[..., 0]
    elif arr.ndim == 3:
        arr = arr[..., :3]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        arr = percentile_window(arr)
    return grey_to_rgb(arr) if arr.ndim == 2 else np.ascontiguousarray(arr)
