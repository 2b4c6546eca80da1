"""Benchmark the trainer: overhead of ``trainer.train`` over a plain ``model.fit``, and the feature cache.

One run, one generated dataset (``--images`` PNGs of ``--size`` px in 2 classes, in a temporary
folder), one backbone (``--backbone``, default ``mobilenet_v2`` with random weights, so nothing is
downloaded) and one batch size:

1. **Trainer vs plain fit.** The same classifier (``backbones.classifier.build_classifier``) on the
   same ``data.pipeline.make_datasets`` datasets, all layers trainable, for ``--epochs`` epochs:
   once through ``trainer.train`` (events, throttled batch events, cancel checks, CSV history,
   BackupAndRestore, two atomic ``.keras`` checkpoints per epoch) and once as a bare
   ``model.fit(train, validation_data=val)`` on float32 batches (``make_datasets``' default; the
   trainer feeds uint8 batches that its model casts, which is part of what is measured).
   Target: our images/s >= 0.95x plain.
2. **Frozen phase with vs without the feature cache.** A "head" phase (backbone frozen; pretrained
   weights are stood in for by a weights file of the random backbone, which costs the same) with
   ``feature_cache`` on and off. Target: epochs after the first >= 10x faster with the cache. The
   one-off feature computation is reported separately.

Epoch time = the interval from one epoch's start to the next, so it includes validation and, for
the trainer, events, history and (throttled) checkpoints. The first epoch (graph tracing, filling
the decoded-image cache) is left out of the steady-state figures, and so is the last (its end is
the one-off final checkpoint write).

Run::

    python bench/train.py                                   # 512 images of 64 px, 4 epochs
    python bench/train.py --images 256 --epochs 3 --backbone small_cnn
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _make_images(root: Path, n: int, size: int) -> None:
    """``n`` PNGs in classes a/b: a bright square top-left (a) or bottom-right (b) on noise."""
    rng = np.random.default_rng(0)
    q = size // 2
    for i in range(n):
        label = i % 2
        arr = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        arr[label * q:(label + 1) * q, label * q:(label + 1) * q] = 230
        folder = root / ("a", "b")[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(folder / f"{i:05d}.png", compress_level=1)


def _steady(starts: list[float]) -> tuple[float, float]:
    """(first epoch seconds, fastest later epoch seconds) from the start times of the epochs.

    Only intervals between two epoch starts count, so the one-off work at the end of training (the
    final checkpoint write) is left out for both runs; ``--epochs`` must be >= 3. The fastest
    later epoch is reported (as ``timeit`` does): on a shared machine, slower ones measure the
    neighbours. The throttled checkpoint write (one per 30 s at most) is amortised separately.
    """
    durations = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    return durations[0], min(durations[1:] or durations)


def _run_trainer(config, split, run_dir: Path) -> dict[str, float]:
    from cnn_studio.core import events as ev
    from cnn_studio.training.trainer import train

    marks: dict[str, list[float]] = {"epochs": [], "phase": []}

    def sink(event: object) -> None:
        if isinstance(event, ev.EpochStarted):
            marks["epochs"].append(time.perf_counter())
        elif isinstance(event, ev.PhaseStarted):
            marks["phase"].append(time.perf_counter())

    train(config, split, run_dir, sink=sink)
    first, later = _steady(marks["epochs"])
    return {"first": first, "later": later, "setup": marks["epochs"][0] - marks["phase"][0]}


def _run_plain(config, split) -> dict[str, float]:
    import keras

    from cnn_studio.backbones.classifier import build_classifier
    from cnn_studio.backbones.registry import get
    from cnn_studio.data.pipeline import make_datasets

    keras.utils.set_random_seed(config.seed)
    data = make_datasets(split, config.image_size, config.batch_size, cache=config.cache, seed=config.seed)
    model = build_classifier(get(config.backbone), len(split.class_names), weights="none",
                             image_size=config.image_size, dropout=config.dropout)
    model.compile(keras.optimizers.Adam(config.learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    starts: list[float] = []
    timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()))
    model.fit(data.train, validation_data=data.val, epochs=config.epochs, callbacks=[timer], verbose=0)
    first, later = _steady(starts)
    return {"first": first, "later": later}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per measurement (>= 3)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--skip-plain", action="store_true", help="only measure the feature cache")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds of plain fit vs trainer")
    args = parser.parse_args(argv)
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (the first and the last epoch are not measured)")

    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.backbones.registry import get
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig

    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="cnn-studio-bench-train-") as tmp:
        tmp_path = Path(tmp)
        _make_images(tmp_path / "data", args.images, args.size)
        split = make_split(scan(tmp_path / "data"), val_fraction=0.2, seed=0)
        n_train = len(split.train)
        base = TrainConfig(backbone=args.backbone, weights="none", image_size=args.size,
                           batch_size=args.batch_size, epochs=args.epochs, learning_rate=1e-3, seed=0,
                           cache="memory", precision="float32")

        if not args.skip_plain:
            plains, ourses = [], []
            for i in range(args.repeat):  # interleaved, so load from neighbours hits both alike
                plains.append(_run_plain(base, split))
                ourses.append(_run_trainer(base, split, tmp_path / f"run_scratch{i}"))
            plain = {k: min(r[k] for r in plains) for k in ("first", "later")}
            ours = {k: min(r[k] for r in ourses) for k in ("first", "later")}
            ratio = plain["later"] / ours["later"]
            rows.append(("plain model.fit, all layers", plain["first"], plain["later"], ""))
            rows.append(("trainer.train, all layers", ours["first"], ours["later"],
                         f"{ratio:.2f}x plain images/s (target >= 0.95)"))

        weights = tmp_path / "backbone.weights.h5"
        backbone_of(build_classifier(get(args.backbone), 2, weights="none", image_size=args.size)).save_weights(weights)
        frozen = base.replace(weights=str(weights))
        no_cache = _run_trainer(frozen.replace(feature_cache=False), split, tmp_path / "run_nocache")
        cache = _run_trainer(frozen.replace(feature_cache=True), split, tmp_path / "run_cache")
        speedup = no_cache["later"] / cache["later"]
        rows.append(("head phase, no feature cache", no_cache["first"], no_cache["later"], ""))
        rows.append(("head phase, feature cache", cache["first"], cache["later"],
                     f"{speedup:.1f}x faster epochs (target >= 10); features computed once in "
                     f"{cache['setup']:.2f}s"))

    print(f"\n{args.backbone}, {n_train} training images of {args.size}px, batch {args.batch_size}, "
          f"{args.epochs} epochs, TensorFlow on {os.cpu_count()} CPU cores")
    print(f"{'run':<32}{'epoch 1 s':>10}{'later s':>10}{'images/s':>10}  note (later = fastest later epoch)")
    for name, first, later, note in rows:
        print(f"{name:<32}{first:>10.2f}{later:>10.3f}{n_train / later:>10.0f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
