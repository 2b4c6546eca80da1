"""Sentinel-2-like 13-band tiles whose classes differ ONLY in the near-infrared and red-edge bands.

Each tile is ``size × size`` pixels of 13 uint16 bands in Sentinel-2 L1C order
(:data:`S2_BANDS`: B01 … B08, B8A, B09 … B12), with reflectance × 10,000 values like a
crop field's, named in a GDAL_METADATA tag so :mod:`cnn_studio.data.bands` reads the names back.

How the classes differ: every tile gets the same kind of field texture (rows and a smooth random
pattern), the same per-tile illumination spread and the same visible-band (B01–B04) levels
whatever its class; only the red-edge (B05, B06, B07) and near-infrared (B08, B8A) levels depend
on the class (±15 % between neighbouring classes, about 3 times the tile-to-tile spread). A model
that sees the RGB bands only is therefore at chance level, and one that sees all 13 bands can
learn the task — exactly the case multi-band support exists for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from cnn_studio.data.bands import GDAL_METADATA_TAG, gdal_metadata

S2_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
                             "B12")
"""Sentinel-2 L1C band names, in the order of the files."""

# Typical reflectance × 10,000 of a green crop field, per band.
_BASE = np.array([1200, 900, 1100, 800, 1400, 2600, 3000, 3300, 3500, 1000, 30, 2100, 1100], np.float64)
_RED_EDGE_NIR = (4, 5, 6, 7, 8)  # B05 B06 B07 B08 B8A (0-based)
RGB_BANDS = (4, 3, 2)  # B04, B03, B02 (1-based)
CLASS_STEP = 0.15  # relative NIR/red-edge step between neighbouring classes


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A field-like pattern around 1.0: crop rows at a random angle plus a smooth random blotch."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(3.0, 6.0)
    rows = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    coarse = rng.normal(0.0, 1.0, (4, 4))
    blotch = np.kron(coarse, np.ones((size // 4 + 1, size // 4 + 1)))[:size, :size]
    return 1.0 + 0.06 * rows + 0.04 * blotch


def make_tile(rng: np.random.Generator, class_index: int, n_classes: int, size: int = 32,
              bands: int = 13) -> np.ndarray:
    """One ``(size, size, bands)`` uint16 tile of class ``class_index`` (see the module docstring)."""
    level = _BASE.copy()
    factor = 1.0 + CLASS_STEP * (class_index - (n_classes - 1) / 2.0)
    level[list(_RED_EDGE_NIR)] *= factor
    level *= rng.uniform(0.95, 1.05)  # illumination, common to all bands and classes
    level *= rng.normal(1.0, 0.02, level.shape)  # each band's own tile-to-tile spread
    tex = _texture(rng, size)
    tile = level[None, None, :] * tex[:, :, None]
    tile *= rng.normal(1.0, 0.03, tile.shape)  # sensor noise
    if bands != len(_BASE):
        tile = np.resize(tile.transpose(2, 0, 1), (bands, size, size)).transpose(1, 2, 0)
    return np.clip(np.round(tile), 0, 65535).astype(np.uint16)


def write_tile(path: str | os.PathLike[str], tile: np.ndarray, band_names: Sequence[str] = ()) -> Path:
    """Write one tile: ``.npy`` as an H×W×N array, else a TIFF with the band names in GDAL_METADATA."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".npy":
        np.save(p, tile)
        return p
    extratags = [(GDAL_METADATA_TAG, "s", 0, gdal_metadata(band_names), True)] if band_names else []
    tifffile.imwrite(p, tile, photometric="minisblack", planarconfig="contig", extratags=extratags)
    return p


@dataclass(frozen=True)
class TileFormat:
    """What each generated tile file is: ``bands`` per tile (13 = Sentinel-2's; another count repeats the
    pattern, unnamed) and ``suffix``: ".tif" (GeoTIFF-style with band names) or ".npy" (H×W×N arrays)."""

    bands: int = 13
    suffix: str = ".tif"


def make_multiband_dataset(dest: str | os.PathLike[str], *, classes: Sequence[str] = ("wheat", "barley", "maize"),
                           per_class: int = 40, size: int = 32, seed: int = 0,
                           tiles: TileFormat = TileFormat()) -> Path:
    """Write a class-folder dataset of Sentinel-2-like tiles: ``dest/<class>/tile_0000.tif`` ...

    Parameters
    ----------
    dest : the folder to fill (created).
    classes : class names; the k-th has the k-th NIR/red-edge level.
    per_class : tiles per class.
    size : tile side in pixels.
    seed : everything is drawn from this seed (same seed → same bytes).
    tiles : bands per tile and file kind (:class:`TileFormat`: 13 bands, ".tif").

    Returns
    -------
    Path
        ``dest``.
    """
    root = Path(dest)
    rng = np.random.default_rng(seed)
    names = S2_BANDS if tiles.bands == len(S2_BANDS) else ()
    for k, name in enumerate(classes):
        for i in range(per_class):
            tile = make_tile(rng, k, len(classes), size, tiles.bands)
            write_tile(root / name / f"tile_{i:04d}{tiles.suffix}", tile, names)
    return root
