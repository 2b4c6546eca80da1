"""Benchmark ``data.pipeline.make_dataset`` against ``keras.utils.image_dataset_from_directory``.

Generates ``--n`` (default 2,000) 256x256 JPEGs in two class folders, then measures, each in its
own subprocess so that peak memory is that variant's alone:

* ``keras``: ``image_dataset_from_directory(image_size=(224, 224), batch_size=32)``, two epochs
  (it has no cache, so both epochs decode);
* ``ours``: ``scan`` + ``make_dataset(records, 224, 32, cache="memory")``, first epoch (decode +
  resize + fill the uint8 cache) and second epoch (from the cache);
* ``ours, uint8``: the same, handing out the cached uint8 bytes as the trainer does (its model
  casts them to float32 itself, on the GPU when there is one);
* ``ours, python``: the same files forced through the Python readers (``decode_file`` inside a
  parallel ``tf.numpy_function`` map), the path 16-bit/DICOM/TIFF/rotated JPEGs take.

Throughput is images per second of a full pass (every batch pulled to numpy). Peak memory is the
process's peak RSS (``resource.getrusage``; psutil is not installed, and tracemalloc does not
see TensorFlow's allocations). Ratios are against the keras first epoch measured in the same run.
Each variant runs ``--repeat`` times (default 5, interleaved, so a busy spell on a shared machine
hits all variants); the table prints the median and the range, and each ratio is paired with the
Keras run of the same repeat.

Targets: ours first epoch >= 0.9x keras; ours cached epoch >= 5x ours first epoch.

Run::

    python bench/pipeline.py            # 2,000 images
    python bench/pipeline.py --n 500    # quicker on a busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE, BATCH = 224, 32


def _make_jpegs(root: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # smooth-ish content (upscaled noise + a per-image shift) so JPEG sizes are realistic
        small = np.roll(base, i, axis=1) // (1 + i % 3)
        img = Image.fromarray(small).resize((256, 256), Image.BILINEAR)
        img.save(root / ("a", "b")[i % 2] / f"{i:05d}.jpg", quality=90)


def _rss_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _epoch(ds) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    for x, _ in ds:
        n += int(x.numpy().shape[0])
    return n, time.perf_counter() - t0


def _run_variant(variant: str, root: Path) -> dict[str, float]:
    """Measure one variant in this process; returns seconds, images and peak RSS."""
    import tensorflow as tf  # noqa: F401 - import cost is not part of any measurement

    out: dict[str, float] = {"rss_start_mb": _rss_peak_mb()}
    t0 = time.perf_counter()
    if variant == "keras":
        import keras

        ds = keras.utils.image_dataset_from_directory(str(root), image_size=(SIZE, SIZE), batch_size=BATCH,
                                                      verbose=False)
    else:
        import dataclasses

        from cnn_studio.data.index import scan
        from cnn_studio.data.pipeline import make_dataset

        records = scan(root).records
        if variant == "python":
            records = [dataclasses.replace(r, fmt="PYTHON") for r in records]  # not TF-native → decode_file
        # "uint8": the batches the trainer feeds its model (the model casts them itself)
        ds = make_dataset(records, SIZE, BATCH, cache="memory", dtype="uint8" if variant == "uint8" else "float32")
    out["setup_s"] = time.perf_counter() - t0
    out["images"], out["epoch1_s"] = _epoch(ds)
    _, out["epoch2_s"] = _epoch(ds)
    out["rss_peak_mb"] = _rss_peak_mb()
    return out


def _in_subprocess(variant: str, root: Path) -> dict[str, float]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, __file__, "--child", variant, "--root", str(root)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of JPEGs to generate")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs per variant (median and range)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_run_variant(args.child, Path(args.root))))
        return 0

    with tempfile.TemporaryDirectory(prefix="cnn-studio-bench-") as tmp:
        root = Path(tmp) / "data"
        t0 = time.perf_counter()
        _make_jpegs(root, args.n)
        print(f"generated {args.n} JPEGs 256x256 in {time.perf_counter() - t0:.1f}s; {os.cpu_count()} CPUs",
              file=sys.stderr)
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in ("keras", "ours", "uint8", "python")}
        for _ in range(args.repeat):  # interleaved, so a busy spell on a shared machine hits all variants
            for variant, got in runs.items():
                got.append(_in_subprocess(variant, root))

    labels = {"keras": "image_dataset_from_directory", "ours": "make_dataset (TF decode)",
              "uint8": "make_dataset uint8 (training)", "python": "make_dataset (Python decode)"}

    def rates(variant: str, epoch: int) -> list[float]:
        return [r["images"] / r[f"epoch{epoch}_s"] for r in runs[variant]]

    def spread(values: list[float], fmt: str) -> str:
        return f"{format(min(values), fmt)}–{format(max(values), fmt)}"

    keras_first = rates("keras", 1)
    print(f"{len(keras_first)} interleaved repeats; median and range (min–max) over them; ratios are paired "
          "with the keras run of the same repeat")
    print(f"{'variant':<34}{'median img/s':>13}{'range':>14}{'vs keras (paired)':>19}{'range':>13}{'peak RSS MB':>13}")
    for variant in runs:
        for epoch in (1, 2):
            r = rates(variant, epoch)
            ratio = [x / k for x, k in zip(r, keras_first, strict=True)]
            rss = max(run["rss_peak_mb"] for run in runs[variant])
            print(f"{labels[variant] + f' ep{epoch}':<34}{statistics.median(r):>13.0f}{spread(r, '.0f'):>14}"
                  f"{statistics.median(ratio):>18.2f}x{spread(ratio, '.2f'):>13}{rss:>13.0f}")
    first = [x / k for x, k in zip(rates("ours", 1), keras_first, strict=True)]
    cached = [r["epoch1_s"] / r["epoch2_s"] for r in runs["ours"]]
    cached_u8 = [r["epoch1_s"] / r["epoch2_s"] for r in runs["uint8"]]
    print(f"\nours first epoch vs keras: median {statistics.median(first):.2f}x (range {spread(first, '.2f')}; "
          f"target >= 0.9x); cached epoch vs first: {statistics.median(cached):.1f}x float32 batches, "
          f"{statistics.median(cached_u8):.1f}x uint8 batches as training uses them (target >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
