"""Multi-band images: N-band arrays read with their raw values, band names, statistics, RGB composites.

A file is *multi-band* when it is a ``.npy`` array (``H×W`` or ``H×W×N``, any numeric dtype) or a
TIFF whose first page is not plain picture data: ``samplesperpixel >= 2`` with photometric
MINISBLACK (a grey+alpha page excepted), or more than 4 samples (Sentinel-2 tiles: 13 bands, uint16).
8-bit RGB/RGBA/grey TIFFs stay pictures. Such a file is read by :func:`read_bands` as float32
``(H, W, N)`` with its RAW values (no windowing, no rounding, no clipping); the model normalises
each band itself (:mod:`cnn_studio.backbones.band_adapter`).

Band names come from the GDAL_METADATA tag (42112), ``<Item name="DESCRIPTION" sample="i"
role="description">B04</Item>``, when the file has it. Recognising and reading the files is
:mod:`cnn_studio.data.band_files` (re-exported here).

What the rest of the app uses:

* :func:`band_summary` — per-band value ranges of a sample of records (the scan report, the band picker).
* :func:`composite` / :func:`read_composite` — an RGB picture of three bands for people (thumbnails,
  Grad-CAM overlays): each band windowed by its 0.5–99.5 percentiles (the image's own, or fixed
  windows from the training statistics) → uint8.
* :func:`default_rgb_bands` — which bands are shown as R, G, B when the user did not say.
* :class:`BandInfo` — a run's ``bands.json`` (:attr:`cnn_studio.core.paths.RunLayout.bands`): band count,
  dtype, names, the selected bands, the RGB bands and the training-set statistics of every band.
  :func:`read_run_bands` reads it (``None`` for a run on pictures).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.core.errors import ConfigError, DatasetError, ImageReadError, RunError
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.band_files import (  # noqa: F401 - re-exported: reading the files lived here
    DEFAULT_MAX_PIXELS,
    GDAL_METADATA_TAG,
    NPY_SUFFIX,
    gdal_metadata,
    is_multiband,
    is_multiband_key,
    probe_bands,
    read_band_names,
    read_bands,
    read_with_header,
)
from cnn_studio.data.pixels import percentile_window, window_to_uint8
from cnn_studio.data.records import ImageRecord

STATS_MAX_FILES = 512
"""Training-set statistics are measured on at most this many files (evenly spaced over the list)."""
_PIXELS_PER_FILE_FOR_PERCENTILES = 4096


# ---------------------------------------------------------------------------- RGB composite


_RGB_NAMES = ({"red", "r", "b4"}, {"green", "g", "b3"}, {"blue", "b2"})


def _norm_name(name: str) -> str:
    n = name.strip().lower().replace(" ", "")
    m = re.fullmatch(r"b0*(\d+[a-z]?)", n)
    return f"b{m.group(1)}" if m else n


def default_rgb_bands(names: Sequence[str], n_bands: int) -> tuple[int, int, int]:
    """The bands shown as R, G, B (1-based) when the user did not choose.

    From the names when they say it (``B04,B03,B02`` of Sentinel-2/Landsat, ``red,green,blue``),
    else bands 1, 2, 3 (fewer bands: the last one repeated).

    Examples
    --------
    >>> default_rgb_bands(["B01", "B02", "B03", "B04", "B05"], 5)
    (4, 3, 2)
    >>> default_rgb_bands([], 1)
    (1, 1, 1)
    """
    normed = [_norm_name(x) for x in names]
    found = []
    for wanted in _RGB_NAMES:
        i = next((k for k, x in enumerate(normed) if x in wanted), None)
        if i is None:
            break
        found.append(i + 1)
    if len(found) == 3 and all(b <= n_bands for b in found):
        return found[0], found[1], found[2]
    n = max(1, int(n_bands))
    return 1, min(2, n), min(3, n)


def composite(arr: np.ndarray, rgb: Sequence[int], windows: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """Three bands of an ``(H, W, N)`` array (1-based ``rgb``) → uint8 ``(H, W, 3)`` for display.

    Each band is windowed on its own: by ``windows[band - 1]`` (low, high) when given (e.g. the
    training set's 0.5/99.5 percentiles, so every tile is shown on one scale), else by the image's
    own 0.5/99.5 percentiles.
    """
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    out = np.zeros((*arr.shape[:2], 3), np.uint8)
    for c, band in enumerate(rgb):
        i = min(max(int(band), 1), arr.shape[2]) - 1
        plane = arr[:, :, i].astype(np.float64)
        if windows is not None and i < len(windows) and windows[i][1] > windows[i][0]:
            out[:, :, c] = window_to_uint8(plane, windows[i])
        else:
            out[:, :, c] = percentile_window(plane)
    return out


def read_composite(path: str | os.PathLike[str], rgb: Sequence[int] | None = None, *,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A multi-band file's RGB composite, uint8 ``(H, W, 3)``: ``rgb`` (1-based), else :func:`default_rgb_bands`."""
    info, arr = read_with_header(path, max_pixels)
    return composite(arr, tuple(rgb) if rgb else default_rgb_bands(info.band_names, info.bands))


# ---------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class BandStats:
    """One band over a set of files: its value range, mean, standard deviation and 0.5/99.5 percentiles."""

    band: int  # 1-based
    name: str
    min: float
    max: float
    mean: float
    std: float
    low: float  # 0.5th percentile (of a pixel sample)
    high: float  # 99.5th percentile

    def to_dict(self) -> dict[str, Any]:
        return {"band": self.band, "name": self.name, "min": self.min, "max": self.max, "mean": self.mean,
                "std": self.std, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BandStats:
        return cls(int(d["band"]), str(d.get("name", "")), float(d["min"]), float(d["max"]), float(d["mean"]),
                   float(d["std"]), float(d.get("low", d["min"])), float(d.get("high", d["max"])))

    def describe(self) -> str:
        """``"B08: 812–4,730 (mean 2,514)"`` for reports."""
        label = self.name or f"band {self.band}"
        return f"{label}: {_num(self.min)}–{_num(self.max)} (mean {_num(self.mean)})"


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3g}"


def _evenly(items: Sequence[Any], k: int | None) -> list[Any]:
    items = list(items)
    if k is None or len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def _read_or_none(path: str | os.PathLike[str]) -> np.ndarray | None:
    """:func:`read_bands`, or None for a file that cannot be read (the statistics leave it out)."""
    try:
        return read_bands(path)
    except ImageReadError:
        return None


def band_statistics(paths: Sequence[str | os.PathLike[str]], *, names: Sequence[str] = (),
                    max_files: int | None = STATS_MAX_FILES) -> list[BandStats]:
    """Per-band statistics over the files ``paths`` (at most ``max_files``, evenly spaced), all pixels.

    Mean and standard deviation are exact over the files read (float64 sums); the 0.5/99.5
    percentiles come from a fixed sample of up to 4,096 pixels per file. Non-finite values are ignored.

    Raises
    ------
    DatasetError
        No file could be read, or the files have different band counts.
    """
    chosen = _evenly(paths, max_files)
    rng = np.random.default_rng(0)
    n = None
    total = s1 = s2 = lo = hi = None
    samples: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        for arr in pool.map(_read_or_none, chosen):
            if arr is None:
                continue
            flat = arr.reshape(-1, arr.shape[-1]).astype(np.float64)
            if n is None:
                n = flat.shape[1]
                total, s1, s2 = np.zeros(n), np.zeros(n), np.zeros(n)
                lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
            elif flat.shape[1] != n:
                raise DatasetError(f"The files have different band counts ({n} and {flat.shape[1]}).",
                                   "Keep files with one band layout per dataset.")
            finite = np.isfinite(flat)
            vals = np.where(finite, flat, 0.0)
            total += finite.sum(axis=0)
            s1 += vals.sum(axis=0)
            s2 += (vals * vals).sum(axis=0)
            lo = np.minimum(lo, np.where(finite, flat, np.inf).min(axis=0))
            hi = np.maximum(hi, np.where(finite, flat, -np.inf).max(axis=0))
            take = rng.choice(len(flat), size=min(len(flat), _PIXELS_PER_FILE_FOR_PERCENTILES), replace=False)
            samples.append(flat[take])
    if n is None:
        raise DatasetError("None of the multi-band files could be read to measure its bands.",
                           "Check the files: the scan report lists why each was skipped.")
    count = np.maximum(total, 1)
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean * mean, 0.0))
    pool_px = np.concatenate(samples)
    out = []
    for i in range(n):
        col = pool_px[:, i]
        col = col[np.isfinite(col)]
        p_lo, p_hi = (np.percentile(col, [0.5, 99.5]) if col.size else (0.0, 0.0))
        out.append(BandStats(i + 1, names[i] if i < len(names) else "",
                             float(lo[i]) if np.isfinite(lo[i]) else 0.0, float(hi[i]) if np.isfinite(hi[i]) else 0.0,
                             float(mean[i]), float(std[i]), float(p_lo), float(p_hi)))
    return out


def band_summary(records: Sequence[ImageRecord], max_files: int = 64, names: Sequence[str] = ()) -> list[BandStats]:
    """Per-band value ranges of a sample of multi-band ``records`` (at most ``max_files``, evenly spaced).

    For the scan report and the band picker: ``[BandStats(band=1, name="B01", min=..., max=..., ...)]``;
    empty for a dataset of pictures. ``names`` (e.g. ``DatasetIndex.band_names``) label the bands.
    """
    arrays = [r for r in records if r.bands]
    if not arrays:
        return []
    return band_statistics([r.path for r in arrays], names=names, max_files=max_files)


# ---------------------------------------------------------------------------- a run's bands.json


@dataclass(frozen=True)
class BandInfo:
    """What a multi-band run's model takes (``bands.json``).

    ``count`` bands of type ``dtype`` in every file (the model's input has ``count`` channels);
    ``selected``: the 1-based bands the model uses, in order; ``rgb``: the bands shown as R, G, B
    (and given the pretrained RGB kernels); ``stats``: the training-set statistics of every band.
    """

    count: int
    dtype: str
    names: tuple[str, ...] = ()
    selected: tuple[int, ...] = ()
    rgb: tuple[int, int, int] = (1, 2, 3)
    stats: tuple[BandStats, ...] = ()
    files_measured: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def used(self) -> tuple[int, ...]:
        """The 1-based bands the model uses, in order (all bands when ``selected`` is empty)."""
        return self.selected or tuple(range(1, self.count + 1))

    def name(self, band: int) -> str:
        """The name of 1-based ``band`` ("band 7" when the files carry none)."""
        return self.names[band - 1] if band - 1 < len(self.names) and self.names[band - 1] else f"band {band}"

    def channel_map(self) -> list[int | None]:
        """For each selected band, the RGB channel (0 R, 1 G, 2 B) it stands for, or None."""
        return [next((c for c, b in enumerate(self.rgb) if b == band), None) for band in self.used]

    @property
    def windows(self) -> list[tuple[float, float]]:
        """Per-band (low, high) display windows from the training statistics (for :func:`composite`)."""
        return [(s.low, s.high) for s in self.stats]

    def describe(self) -> str:
        """``"13 bands (uint16), model uses 13; shown as RGB: B04, B03, B02"``."""
        used = "all" if self.used == tuple(range(1, self.count + 1)) else ", ".join(self.name(b) for b in self.used)
        return (f"{self.count} bands ({self.dtype}), the model uses {used}; shown as RGB: "
                + ", ".join(self.name(b) for b in self.rgb))

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "dtype": self.dtype, "names": list(self.names), "selected": list(self.selected),
                "rgb": list(self.rgb), "stats": [s.to_dict() for s in self.stats],
                "files_measured": self.files_measured, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BandInfo:
        rgb = tuple(int(b) for b in d.get("rgb", (1, 2, 3)))
        return cls(int(d["count"]), str(d.get("dtype", "")), tuple(d.get("names", ())),
                   tuple(int(b) for b in d.get("selected", ())), (rgb[0], rgb[1], rgb[2]),
                   tuple(BandStats.from_dict(s) for s in d.get("stats", ())), int(d.get("files_measured", 0)),
                   tuple(d.get("notes", ())))


def check_band_numbers(bands: Sequence[int], n: int, what: str) -> None:
    """ConfigError when a 1-based band number in ``bands`` is outside 1..``n``."""
    bad = [b for b in bands if not 1 <= int(b) <= n]
    if bad:
        raise ConfigError(f"{what}: the images have {n} band{'s' if n != 1 else ''}, so band numbers go from 1 to "
                          f"{n}; received {', '.join(map(str, bad))}.",
                          "Count bands from 1, as the scan report lists them (e.g. --bands 4,3,2).")


def dataset_band_layout(records: Sequence[ImageRecord]) -> tuple[int, str]:
    """``(N, dtype)`` of multi-band records; ``(0, "")`` for pictures.

    Raises :class:`DatasetError` for pictures mixed with arrays, or arrays with different band counts.
    """
    counts = {r.bands for r in records}
    if not counts or counts == {0}:
        return 0, ""
    if 0 in counts:
        raise DatasetError("The dataset mixes pictures (JPEG, PNG, RGB TIFF ...) with multi-band arrays.",
                           "Keep one kind per dataset: convert the pictures to arrays or train on them separately.")
    if len(counts) > 1:
        raise DatasetError(f"The multi-band files have different band counts ({', '.join(map(str, sorted(counts)))}).",
                           "Every file of a dataset needs the same bands in the same order.")
    dtypes = sorted({r.dtype for r in records if r.dtype})
    return counts.pop(), "/".join(dtypes)


def make_band_info(records: Sequence[ImageRecord], *, names: Sequence[str] = (), bands: Sequence[int] = (),
                   rgb: Sequence[int] = (), max_files: int | None = STATS_MAX_FILES) -> BandInfo | None:
    """The :class:`BandInfo` of a training set: its layout, the user's band choice and its statistics.

    ``None`` for pictures. Raises :class:`ConfigError` for band numbers out of range (``bands``,
    ``rgb``: 1-based) or an ``rgb`` that is not three bands, :class:`DatasetError` for a mixed dataset.
    """
    n, dtype = dataset_band_layout(records)
    if not n:
        return None
    check_band_numbers(bands, n, "Bands")
    check_band_numbers(rgb, n, "RGB bands")
    if rgb and len(rgb) != 3:
        raise ConfigError(f"RGB bands: expected three band numbers (red, green, blue), received {len(rgb)}.",
                          "For example --rgb 4,3,2 (Sentinel-2 true colour).")
    if not names:
        names = read_band_names(records[0].path)
    chosen_rgb = tuple(int(b) for b in rgb) if rgb else default_rgb_bands(names, n)
    paths = [r.path for r in records]
    stats = band_statistics(paths, names=names, max_files=max_files)
    measured = min(len(paths), max_files or len(paths))
    return BandInfo(count=n, dtype=dtype, names=tuple(names), selected=tuple(int(b) for b in bands) or
                    tuple(range(1, n + 1)), rgb=(chosen_rgb[0], chosen_rgb[1], chosen_rgb[2]), stats=tuple(stats),
                    files_measured=measured)


def write_band_info(path: str | os.PathLike[str], info: BandInfo) -> Path:
    return write_json(path, info.to_dict())


def read_band_info(path: str | os.PathLike[str]) -> BandInfo | None:
    """A ``bands.json`` file, or None when there is none. RunError naming it when it is damaged."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        return BandInfo.from_dict(read_json(p))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise RunError(f"{p} is damaged: it is not the band record CNN Studio wrote ({type(exc).__name__}: "
                       f"{str(exc)[:120]}).",
                       "A multi-band model reads its images as this file says (band count, order, statistics): "
                       "put back the bands.json saved with this run.") from exc


def read_run_bands(run_dir: str | os.PathLike[str]) -> BandInfo | None:
    """The band info of a run folder (or of the folder of a ``.keras`` file), None for pictures."""
    p = Path(run_dir)
    folder = p.parent if p.is_file() else p
    return read_band_info(RunLayout(folder).bands)
