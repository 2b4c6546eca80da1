"""``cnn-studio suggest DATA --pool FOLDER``: which unlabelled images to label next (active learning).

Ranks the images of ``--pool`` by what would teach the model most (:mod:`cnn_studio.labels.suggest`):
``--run RUN`` uses that run's model, else a quick classifier on the labelled dataset's features.
Prints the strategy used and why, then one line per image (rank, best guesses, margin); ``--json``
prints everything as JSON on stdout. The labels themselves are given in the app (Data step →
*Suggest images to label…*) or written to the labels file named at the end (``path,label,when``),
which ``scan``/``train`` read; the image files are never moved or changed.
Exit codes: 0 done, 2 a dataset/setting error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys

from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core import tf_runtime
from cnn_studio.core.cancel import Cancelled
from cnn_studio.labels.suggest import DEFAULT_N, DEFAULT_STRATEGY, PIXELS, STRATEGIES, suggest

EXIT_CANCELLED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``suggest`` subcommand (no TensorFlow import)."""

    p = subparsers.add_parser(
        "suggest", help="rank unlabelled images by what labelling them would teach the model",
        description="Rank the images of a folder of unlabelled images by how unsure the model is about them "
                    "(and, by default, how different they are from each other), so the ones worth labelling "
                    "come first. Nothing is changed on disk.")
    p.add_argument("data_dir", metavar="DATA", help="the labelled dataset: folder or .csv manifest")
    p.add_argument("--pool", required=True, metavar="FOLDER", help="folder of unlabelled images (searched recursively)")
    p.add_argument("--run", dest="run_dir", default=None, metavar="RUN",
                   help="run folder whose model judges the images (default: a quick classifier on the dataset)")
    p.add_argument("--n", type=int, default=DEFAULT_N, metavar="N", help="images to suggest (default %(default)s)")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=list(STRATEGIES),
                   help="how to rank (default %(default)s; random is the baseline)")
    p.add_argument("--backbone", default=None,
                   help=f"without --run: the backbone whose frozen features the quick classifier uses, or {PIXELS} "
                        "(default: MobileNetV2 when its ImageNet weights are here, else pixels)")
    p.add_argument("--weights", default=None, help="without --run: weights of --backbone (default imagenet)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random strategy (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print everything as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Rank and print; return the exit code."""

    tf_runtime.import_tensorflow()  # images are resized with TensorFlow as in training, also for pixels
    try:
        with cancel_on_interrupt() as token:
            result = suggest(args.data_dir, args.pool, run=args.run_dir, n=args.n, strategy=args.strategy,
                             seed=args.seed, backbone=args.backbone, weights=args.weights,
                             sink=TerminalProgress(sys.stderr), cancel=token)
    except Cancelled:
        print("suggest cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    print(result.why)
    print(f"{len(result.items)} of {result.pool_size} unlabelled image(s) in {result.pool}"
          + (f" ({result.already_labelled} already labelled, left out)" if result.already_labelled else "") + ":")
    for s in result.items:
        guesses = ", ".join(f"{c} {p:.2f}" for c, p in s.top)
        print(f"  {s.rank:>3}  margin {s.margin:.2f}  {guesses}  {s.path}")
    for path, reason in result.unreadable:
        print(f"  skipped  {path}: {reason}")
    print(f"Label them in the app (Data step → Suggest images to label…) or add rows path,label,when to "
          f"{result.labels_file}; scan and train read it. Your image files are not touched.")
    return 0
