"""Colour maps for heat maps as numpy lookup tables: jet, inferno, viridis (no matplotlib).

``inferno`` and ``viridis`` are the perceptually uniform maps of matplotlib (CC0), sampled at 11
stops and linearly interpolated to 256 entries; ``jet`` is the classic piecewise-linear map.
"""

from __future__ import annotations

import numpy as np

from cnn_studio.core.errors import ConfigError

_STOPS: dict[str, tuple[str, ...]] = {
    "viridis": ("#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70",
                "#7ad151", "#bddf26", "#fde725"),
    "inferno": ("#000004", "#160b39", "#420a68", "#6a176e", "#932667", "#bc3754", "#dd513a", "#f37819",
                "#fca50a", "#f6d746", "#fcffa4"),
}
COLORMAPS: tuple[str, ...] = ("jet", "inferno", "viridis")


def _from_stops(stops: tuple[str, ...]) -> np.ndarray:
    rgb = np.array([[int(s[i:i + 2], 16) for i in (1, 3, 5)] for s in stops], np.float64)
    xs = np.linspace(0.0, 1.0, len(stops))
    grid = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(grid, xs, rgb[:, c]) for c in range(3)], axis=1)


def _jet() -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    channels = [np.clip(1.5 - np.abs(4.0 * x - c), 0.0, 1.0) for c in (3.0, 2.0, 1.0)]
    return np.stack(channels, axis=1) * 255.0


def lookup_table(name: str) -> np.ndarray:
    """The ``(256, 3)`` uint8 table of colour map ``name``.

    Raises
    ------
    ConfigError
        If ``name`` is not one of :data:`COLORMAPS`.
    """
    if name == "jet":
        table = _jet()
    elif name in _STOPS:
        table = _from_stops(_STOPS[name])
    else:
        raise ConfigError(f"Colour map: expected one of {', '.join(COLORMAPS)}, received {name!r}.")
    return np.round(table).astype(np.uint8)


def apply_colormap(values: np.ndarray, name: str = "jet") -> np.ndarray:
    """Map values in [0, 1] (any shape) to uint8 RGB (shape + (3,)); values outside are clipped.

    Examples
    --------
    >>> apply_colormap(np.array([0.0, 1.0]), "jet").tolist()
    [[0, 0, 128], [128, 0, 0]]
    """
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0)
    idx = np.round(np.clip(v, 0.0, 1.0) * 255.0).astype(np.intp)
    return lookup_table(name)[idx]
