"""Benchmark the label-issue finder: precision and recall on labels flipped on purpose, and its time.

A copy of a dataset (the bundled handwritten-digit sample by default, or ``--generated`` images of
corner squares from the test kit) is written to a temporary folder with ``--flip`` of the images
(default 10 %) saved under a different, random class. The finder runs with its defaults (its
default threshold is the confident-learning rule itself: no knob) and the script prints:

* precision = planted wrong labels among the suspects / suspects,
* recall    = planted wrong labels found / planted,
* the same at the top-N suspects (N = number planted), what a reviewer sees first,
* the finder's time against one ordinary training run on the same copy (``trainer.train``, the
  same backbone, the app's default epochs), i.e. what "cheap" costs.

Run::

    python bench/label_issues.py                       # sample digits, small_cnn, 5 folds
    python bench/label_issues.py --flip 0.2 --folds 3
    python bench/label_issues.py --generated --per-class 60
    python bench/label_issues.py --backbone mobilenet_v2 --weights imagenet   # frozen-feature path
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def flipped_copy(src: Path | None, dest: Path, flip: float, seed: int, per_class: int, size: int):
    """Copy ``src`` (or generate) into ``dest`` with ``flip`` of the images in a wrong class folder."""
    rng = np.random.default_rng(seed)
    items: list[tuple[str, object]] = []  # (true class, source path or PIL image)
    if src is None:
        from studio_testkit import make_class_image

        classes = ["a", "b", "c", "d"]
        for c, name in enumerate(classes):
            items += [(name, make_class_image(c, size, seed=i)) for i in range(per_class)]
    else:
        classes = sorted(d.name for d in src.iterdir() if d.is_dir())
        for name in classes:
            items += [(name, p) for p in sorted((src / name).iterdir()) if p.is_file()]
    for name in classes:
        (dest / name).mkdir(parents=True, exist_ok=True)
    wrong = set(rng.choice(len(items), size=round(flip * len(items)), replace=False).tolist())
    planted = {}
    for i, (name, item) in enumerate(items):
        given = name
        if i in wrong:
            given = rng.choice([c for c in classes if c != name])
        stem = f"{name}_{i:04d}"
        out = dest / given / (stem + (Path(item).suffix if isinstance(item, Path) else ".png"))
        if isinstance(item, Path):
            shutil.copy2(item, out)
        else:
            item.save(out)
        if given != name:
            planted[str(out)] = name
    return planted, len(items)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", action="store_true", help="generated corner-square images instead of the sample")
    ap.add_argument("--per-class", type=int, default=60, help="generated images per class (4 classes)")
    ap.add_argument("--flip", type=float, default=0.10, help="fraction of labels flipped (default %(default)s)")
    ap.add_argument("--backbone", default="small_cnn")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-train", action="store_true", help="skip the training run used for the time ratio")
    args = ap.parse_args()

    from cnn_studio.label_issues import find_label_issues
    from cnn_studio.sample import sample_dataset_path

    tmp = Path(tempfile.mkdtemp(prefix="bench_label_issues_"))
    try:
        src = None if args.generated else Path(sample_dataset_path())
        planted, n = flipped_copy(src, tmp / "data", args.flip, args.seed, args.per_class, 32)
        print(f"dataset: {'generated' if src is None else src} → {n} images, {len(planted)} labels flipped "
              f"({len(planted) / n:.0%})")
        import tensorflow  # noqa: F401 - import outside the timings

        t0 = time.perf_counter()
        issues = find_label_issues(tmp / "data", backbone=args.backbone, weights=args.weights, folds=args.folds,
                                   image_size=args.image_size, seed=args.seed, corrections=None)
        t_find = time.perf_counter() - t0
        found = [s.path for s in issues.suspects]
        hit = [p for p in found if p in planted]
        right = sum(next(s for s in issues.suspects if s.path == p).suggested == planted[p] for p in hit)
        top = found[:len(planted)]
        print(f"finder: {issues.method} ({issues.backbone}), {issues.folds} folds, out-of-fold accuracy "
              f"{issues.accuracy:.1%}, {t_find:.1f} s")
        print(f"  suspects {len(found)}: precision {len(hit) / max(len(found), 1):.2f}, "
              f"recall {len(hit) / max(len(planted), 1):.2f}, suggested label right for {right}/{len(hit)}")
        top_hit = sum(p in planted for p in top)
        print(f"  top {len(planted)}: precision {top_hit / max(len(top), 1):.2f}, "
              f"recall {top_hit / max(len(planted), 1):.2f}")
        print(f"  near-duplicate pairs reported: {len(issues.duplicates)}")
        if not args.no_train:
            from cnn_studio.data.prepare import prepare
            from cnn_studio.training.config import TrainConfig
            from cnn_studio.training.trainer import train

            prepared = prepare(tmp / "data", corrections=None)
            weights = args.weights or ("imagenet" if issues.method == "features" else "none")
            config = TrainConfig(backbone=args.backbone, weights=weights, image_size=args.image_size, seed=args.seed)
            config.extra["review"] = False
            t0 = time.perf_counter()
            train(config, prepared.split, tmp / "run")
            t_train = time.perf_counter() - t0
            print(f"one training run ({config.backbone}, {config.total_epochs} epochs): {t_train:.1f} s → "
                  f"finder / training = {t_find / t_train:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
