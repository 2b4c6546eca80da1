"""13-band tiles: a pretrained backbone adapted to the bands vs the same backbone from scratch.

The data are generated Sentinel-2-like tiles (:func:`cnn_studio.synthetic.multiband.make_multiband_dataset`,
13 uint16 bands, classes that differ only in the near-infrared and red-edge bands) with few tiles
per class — the case where pretrained features should matter. Both variants go through CNN
Studio's own trainer on the same split, at the same size, for the same number of epochs, and are
measured on the same validation tiles:

* ``ImageNet, adapted``: ``--weights`` = the exact ImageNet no-top weights file of ``--backbone``
  (``tools/offline_imagenet_weights.py``; ``$CNN_STUDIO_TEST_WEIGHTS`` or
  ``~/.cache/cnn-studio-test-weights``), the first convolution widened to 13 bands by
  :mod:`cnn_studio.backbones.band_adapter` (head on cached features, then the top block fine-tuned);
* ``from scratch``: ``weights="none"``, every layer trained for the same total epochs.

The table gives the median validation accuracy over ``--repeat`` seeds (each seed: its own split
and initialisation), the range, the seconds per run and the ratio adapted / scratch.

    python bench/multiband.py [--backbone vgg16] [--per-class 12] [--epochs 4] [--fine-tune-epochs 4]
                              [--image-size 32] [--repeat 3] [--fine-tune-depth all]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WEIGHTS_DIR = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser()
WEIGHTS = {"vgg16": "vgg16_imagenet_notop.weights.h5", "xception": "xception_imagenet_notop.weights.h5"}


def _run(split, backbone: str, size: int, epochs: int, fine_tune_epochs: int, weights: str, seed: int,
         depth: str | None = None, *, workdir: Path, fine_tune_lr: float | None = None) -> float:
    from cnn_studio.evaluation.evaluate import evaluate_run
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    run = Path(tempfile.mkdtemp(prefix="run-", dir=workdir)) / "run"
    pretrained = weights != "none"
    cfg = TrainConfig(backbone=backbone, weights=weights, image_size=size, batch_size=16,
                      epochs=epochs if pretrained else epochs + fine_tune_epochs,
                      fine_tune_epochs=fine_tune_epochs if pretrained else 0, seed=seed, fine_tune_depth=depth,
                      extra={"review": False})
    if fine_tune_lr is not None:
        cfg = cfg.replace(fine_tune_learning_rate=fine_tune_lr)
    train(cfg, split, run)
    return float(evaluate_run(run).accuracy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", choices=sorted(WEIGHTS), default="vgg16")
    parser.add_argument("--per-class", type=int, default=12, help="tiles per class (3 classes)")
    parser.add_argument("--epochs", type=int, default=4, help="head epochs (scratch: head + fine-tune epochs)")
    parser.add_argument("--fine-tune-epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--fine-tune-depth", default=None,
                        help='how much of the pretrained backbone fine-tuning retrains ("1 block", "all" ...; '
                             "default: the app's)")
    parser.add_argument("--fine-tune-learning-rate", type=float, default=None,
                        help="learning rate of the fine-tune phase (default: the app's, 1e-5)")
    parser.add_argument("--repeat", type=int, default=3, help="seeds per variant (median reported)")
    args = parser.parse_args(argv)
    weights_file = WEIGHTS_DIR / WEIGHTS[args.backbone]
    if not weights_file.is_file():
        print(f"{weights_file} not found: run `python3 tools/offline_imagenet_weights.py` once "
              "(about a minute, 150 MB) or set CNN_STUDIO_TEST_WEIGHTS.", file=sys.stderr)
        return 2
    if args.backbone == "xception":
        args.image_size = max(args.image_size, 71)

    from cnn_studio.core import tf_runtime

    tf_runtime.import_tensorflow()  # its start-up lines go to the log, not into the table
    with tempfile.TemporaryDirectory(prefix="bench-multiband-") as tmp:  # tiles and runs, removed at the end
        return _bench(args, weights_file, Path(tmp))


def _bench(args, weights_file: Path, workdir: Path) -> int:
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.synthetic.multiband import make_multiband_dataset

    root = make_multiband_dataset(workdir / "tiles",
                                  per_class=args.per_class, size=args.image_size, seed=0)
    index = scan(root)
    print(f"data: {len(index.records)} generated 13-band uint16 tiles, {len(index.class_names)} classes "
          f"({args.per_class} per class), {args.image_size} px; {args.backbone}; weights {weights_file}", flush=True)
    variants = {
        "ImageNet, adapted to 13 bands": str(weights_file),
        "from scratch": "none",
    }
    rows = []
    for name, weights in variants.items():
        accs, times = [], []
        for seed in range(args.repeat):
            split = make_split(index, val_fraction=0.34, seed=seed)
            t0 = time.perf_counter()
            accs.append(_run(split, args.backbone, args.image_size, args.epochs, args.fine_tune_epochs, weights,
                             seed, args.fine_tune_depth, workdir=workdir, fine_tune_lr=args.fine_tune_learning_rate))
            times.append(time.perf_counter() - t0)
            print(f"  {name}, seed {seed}: accuracy {accs[-1]:.3f} in {times[-1]:.0f} s "
                  f"({len(split.val)} validation tiles)", flush=True)
        rows.append((name, accs, times))
    print(f"\n{'variant':<32}{'median val acc':>15}{'range':>15}{'s/run':>7}")
    for name, accs, times in rows:
        print(f"{name:<32}{np.median(accs):>15.3f}{f'{min(accs):.3f}–{max(accs):.3f}':>15}{np.median(times):>7.0f}")
    adapted, scratch = np.median(rows[0][1]), np.median(rows[1][1])
    ratio = adapted / scratch if scratch > 0 else float("inf")
    print(f"\nratio adapted / scratch: {ratio:.2f} (chance: {1 / len(index.class_names):.3f}; epochs: "
          f"{args.epochs} head + {args.fine_tune_epochs} fine-tune when pretrained, the same total from scratch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
