"""Benchmark ``data.index.scan``: throughput on many tiny files, and proof that it reads headers only.

Two datasets are generated in a temporary folder:

* ``tiny``: ``--files`` (default 20,000) 8x8 PNGs in 2 classes: files per second of the scan.
* ``large``: 200 copies of a 2000x2000 greyscale PNG (each 4 MB once decoded, ~10 KB on disk): if
  the scan decoded pixels, its Python heap peak would reach hundreds of MB; headers only keeps it
  at a few hundred bytes per file.

Peak memory is measured with ``tracemalloc`` (Python heap, including Pillow's buffers allocated
through Python) and as the growth of the process's peak RSS (``resource.getrusage``).

Run::

    python bench/scan.py            # 20,000 tiny files (takes ~1 minute on 2 cores)
    python bench/scan.py --files 2000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_studio.data.index import scan


def _make_tiny(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
    for i in range(n):
        arr = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / ("a", "b")[i % 2] / f"{i:06d}.png", compress_level=1)


def _make_large(root: Path, n: int = 200, side: int = 2000) -> None:
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
    template = root / "template.png"
    arr = np.zeros((side, side), np.uint8)
    arr[::7] = 200
    Image.fromarray(arr, "L").save(template)
    for i in range(n):
        shutil.copyfile(template, root / ("a", "b")[i % 2] / f"{i:04d}.png")
    template.unlink()


def _rss_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _measure(root: Path) -> dict[str, float]:
    rss_before = _rss_peak_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    index = scan(root)
    seconds = time.perf_counter() - t0
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = len(index.records)
    return {"files": n, "seconds": seconds, "files_per_s": n / seconds, "heap_peak_mb": heap_peak / 2**20,
            "heap_per_file_b": heap_peak / max(n, 1), "rss_growth_mb": _rss_peak_mb() - rss_before,
            "decoded_mb": sum(r.width * r.height * 3 for r in index.records) / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnn-studio-bench-") as tmp:
        tiny, large = Path(tmp) / "tiny", Path(tmp) / "large"
        t0 = time.perf_counter()
        _make_tiny(tiny, args.files)
        _make_large(large)
        print(f"generated datasets in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        scan(large)  # warm imports (PIL plugins) so they do not count as growth
        rows.append(("tiny 8x8 PNG", _measure(tiny)))
        rows.append(("large 2000x2000 PNG", _measure(large)))
    print(f"{'dataset':<22}{'files':>8}{'seconds':>9}{'files/s':>10}{'heap peak MB':>14}{'B/file':>9}"
          f"{'RSS growth MB':>15}{'if decoded MB':>15}")
    for name, m in rows:
        print(f"{name:<22}{m['files']:>8.0f}{m['seconds']:>9.2f}{m['files_per_s']:>10.0f}{m['heap_peak_mb']:>14.1f}"
              f"{m['heap_per_file_b']:>9.0f}{m['rss_growth_mb']:>15.1f}{m['decoded_mb']:>15.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
