"""Peak memory of one training epoch with the decoded images cached in memory vs ``--cache auto``,
on a computer simulated to have less memory than the decoded set.

One generated dataset (``--images`` JPEGs of ``--size`` px in 2 classes, in a temporary folder),
trained for one epoch with the small CNN (no weights, nothing downloaded) at ``--image-size`` px,
twice, each in its own process:

* ``memory``: ``TrainConfig(cache="memory")``, the old default whatever the dataset's size;
* ``auto``: ``cache="auto"`` (the default) with ``CNN_STUDIO_MEMORY_BUDGET`` set to
  ``--budget-share`` (default 0.5) × the decoded set's size, so the set does not fit "comfortably"
  (under half the memory available) and auto must choose the disk (or none).

Each child reports its own peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) at
the start of the first epoch (TensorFlow, the model, the pipeline: the same for both) and at the
end of training, the cache mode the run recorded in config.json (with auto's reason) and the
epoch's time. The table gives each peak and its ratio to ``memory``'s. A benchmark that prints
figures; it asserts nothing about them.

Run::

    python bench/cache_memory.py                         # 12,000 images at 128 px: ~590 MB decoded
    python bench/cache_memory.py --images 2000 --image-size 96
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_studio.training.cache_choice import MEMORY_BUDGET_ENV, human_bytes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MARK = "CACHE-MEMORY-RESULT "


def _make_images(root: Path, n: int, size: int) -> None:
    """``n`` JPEGs in classes a/b: a bright square top-left (a) or bottom-right (b) on noise."""
    rng = np.random.default_rng(0)
    q = size // 2
    for i in range(n):
        label = i % 2
        arr = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
        arr[label * q:(label + 1) * q, label * q:(label + 1) * q] = 230
        folder = root / ("a", "b")[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(folder / f"{i:05d}.jpg", quality=90)


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux counts KiB, macOS bytes


def _child(args: argparse.Namespace) -> None:
    """Train one epoch with ``args.cache`` and print the result as one JSON line."""
    from cnn_studio.core import events as ev
    from cnn_studio.core.fsutil import read_json
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    split = make_split(scan(args.data), val_fraction=0.1, seed=0)
    marks: dict[str, float] = {}
    notes: list[str] = []

    def sink(event: object) -> None:
        if isinstance(event, ev.EpochStarted) and "before" not in marks:
            marks["before"], marks["t0"] = _peak_rss_bytes(), time.perf_counter()
        elif isinstance(event, ev.EpochEnded):
            marks["epoch_s"] = time.perf_counter() - marks["t0"]
        elif isinstance(event, ev.LogMessage) and event.text.startswith("Shuffling"):
            notes.append(event.text)

    config = TrainConfig(backbone="small_cnn", weights="none", image_size=args.image_size, batch_size=32,
                         epochs=1, cache=args.cache, seed=0, precision="float32", extra={"review": False})
    train(config, split, args.out, sink=sink)
    recorded = read_json(Path(args.out) / "config.json")
    print(MARK + json.dumps({"asked": args.cache, "chosen": recorded["cache"],
                             "reason": recorded.get("extra", {}).get("cache_reason", ""),
                             "before": marks["before"], "peak": _peak_rss_bytes(), "epoch_s": marks["epoch_s"],
                             "images": len(split.train) + len(split.val), "notes": notes}), flush=True)


def _run_child(cache: str, data: Path, out: Path, image_size: int, budget: int | None) -> dict:
    env = dict(os.environ)
    env.pop(MEMORY_BUDGET_ENV, None)
    if budget is not None:
        env[MEMORY_BUDGET_ENV] = str(budget)
    cmd = [sys.executable, __file__, "--child", "--cache", cache, "--data", str(data), "--out", str(out),
           "--image-size", str(image_size)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise SystemExit(f"the {cache} child failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=12000)
    ap.add_argument("--size", type=int, default=144, help="side of the generated JPEGs")
    ap.add_argument("--image-size", type=int, default=128, help="the side images are resized to for training")
    ap.add_argument("--budget-share", type=float, default=0.5,
                    help="simulated memory available, as a share of the decoded set's size")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cache", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    decoded = args.images * args.image_size ** 2 * 3
    budget = int(decoded * args.budget_share)
    with tempfile.TemporaryDirectory(prefix="cnn-studio-bench-cache-") as tmp:
        tmp_path = Path(tmp)
        t = time.perf_counter()
        _make_images(tmp_path / "data", args.images, args.size)
        print(f"{args.images} JPEGs of {args.size} px made in {time.perf_counter() - t:.0f} s; decoded at "
              f"{args.image_size} px they take {human_bytes(decoded)}; simulated memory available "
              f"({MEMORY_BUDGET_ENV}): {human_bytes(budget)}", flush=True)
        rows = [_run_child("memory", tmp_path / "data", tmp_path / "run-memory", args.image_size, None),
                _run_child("auto", tmp_path / "data", tmp_path / "run-auto", args.image_size, budget)]

    base = rows[0]["peak"]
    print()
    print(f"{'cache asked':<12} {'chosen':<7} {'RSS before epoch 1':>19} {'peak RSS':>10} {'vs memory':>10} "
          f"{'epoch s':>8}")
    for r in rows:
        print(f"{r['asked']:<12} {r['chosen']:<7} {r['before'] / 2**20:>16.0f} MB {r['peak'] / 2**20:>7.0f} MB "
              f"{r['peak'] / base:>9.2f}x {r['epoch_s']:>8.1f}")
    print(f"\nauto's reason: {rows[1]['reason']}")
    for note in rows[1]["notes"]:
        print(note)


if __name__ == "__main__":
    main()
