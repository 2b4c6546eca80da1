"""``cnn-studio lr-find``: the learning-rate finder's sweep on a dataset, and its suggestion."""

from __future__ import annotations

import argparse
import json
import sys

from cnn_studio.backbones.weights import WEIGHTS_HELP
from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.cli.train import default_backbone_and_weights
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.training.config import OPTIMIZERS, TrainConfig
from cnn_studio.training.lr_finder import find_learning_rate


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``lr-find`` subcommand (no TensorFlow import)."""
    d = TrainConfig()
    p = sub.add_parser("lr-find", help="sweep the learning rate and suggest one (the automatic schedule uses it)",
                       description="Train for about 100 batches while the learning rate rises from 1e-7 to 10, "
                       "record the loss, and suggest the rate where it falls fastest. With a pretrained "
                       "backbone the sweep trains the new head on the frozen backbone's features, as the "
                       "automatic schedule of `cnn-studio train` does.")
    p.add_argument("data_dir", metavar="DATA_DIR", help="image folder or CSV manifest (path,label[,group])")
    p.add_argument("--backbone", default=None, help=f"backbone key (default {d.backbone})")
    p.add_argument("--weights", default=None, help=f"{WEIGHTS_HELP} (default: imagenet; none for small_cnn)")
    p.add_argument("--image-size", type=int, default=None, help="image side in pixels (default: the backbone's)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", action="store_true", help="print the curve and the suggestion as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    backbone, weights = default_backbone_and_weights(args.backbone, args.weights)
    config = TrainConfig(backbone=backbone, weights=weights, image_size=args.image_size, batch_size=args.batch_size,
                         optimizer=args.optimizer, seed=args.seed).validate()
    progress = TerminalProgress(quiet=args.json)
    with cancel_on_interrupt() as token:
        prepared = prepare(args.data_dir, PrepareOptions(seed=config.seed), sink=progress, cancel=token)
        if not prepared.usable:
            print("error: the dataset cannot be used for training as it is (run `cnn-studio scan` to see why).",
                  file=sys.stderr)
            return 2
        found = find_learning_rate(config, prepared.split, sink=progress, cancel=token)
    if args.json:
        print(json.dumps({"backbone": backbone, "weights": weights, **found.to_dict()}))
        return 0
    _lo, hi = found.falling
    print(f"{len(found.rates)} batches, learning rate {found.rates[0]:.1e} → {found.rates[-1]:.1e}")
    step = max(len(found.rates) // 12, 1)
    for i in range(0, len(found.rates), step):
        print(f"  {found.rates[i]:9.2e}  loss {found.losses[i]:.4f}")
    print(f"lowest loss {found.losses[hi]:.4f} at {found.rates[hi]:.2e}")
    print(f"suggested learning rate: {found.suggestion:.2g} ({found.reason})")
    return 0
