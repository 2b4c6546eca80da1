"""``cnn-studio label-issues DATA``: list images whose label looks wrong, and near-duplicates.

Out-of-fold probabilities (K folds) and confident learning, see :mod:`cnn_studio.labels.issues`.
Suspects are printed best first; ``--json`` prints them as ``{"suspects": [{"path", "given",
"suggested", "score", ...}], "near_duplicates": [...], ...}`` on stdout. Decisions are made in the
app's review queue (or by writing a corrections.csv) and applied with ``--corrections FILE``.
The checker's own out-of-fold accuracy, its 95% interval and the chance verdict come first (``"check"``
in the JSON): a checker not better than guessing lists no suspect and says what would help.
Exit codes: 0 done (whether or not suspects were found), 2 a dataset/setting error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys

from cnn_studio.backbones.weights import WEIGHTS_HELP
from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core import tf_runtime
from cnn_studio.core.cancel import Cancelled
from cnn_studio.labels.checker import DEFAULT_FOLD_EPOCHS, DEFAULT_FOLDS, check_settings, choose_checker
from cnn_studio.labels.issues import LabelCheckSettings, LabelIssues, find_label_issues

EXIT_CANCELLED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``label-issues`` subcommand (no TensorFlow import)."""

    p = subparsers.add_parser(
        "label-issues", help="find images whose label looks wrong, and near-duplicates",
        description="Train K models, each on all images but one fold, so every image is judged by a model "
                    "that never saw its label; list the images whose given label that model finds unlikely "
                    "(confident learning), with the label it suggests, best first; and the near-duplicate "
                    "images with different labels or in different splits. Nothing is changed on disk.")
    p.add_argument("data_dir", metavar="DATA", help="dataset folder or .csv manifest")
    p.add_argument("--backbone", default=None,
                   help="backbone key: a pretrained one uses its frozen features (fast); small_cnn trains a small "
                        "CNN per fold (default: pretrained features when any backbone's ImageNet weights are on "
                        "this computer, MobileNetV2 first; else small_cnn)")
    p.add_argument("--weights", default=None,
                   help=f"{WEIGHTS_HELP} (default: imagenet for a pretrained backbone; a pretrained backbone needs "
                        "pretrained weights here)")
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS, metavar="K", help="folds (default %(default)s)")
    p.add_argument("--image-size", type=int, default=None, help="image side in pixels (default: the backbone's)")
    p.add_argument("--epochs", type=int, default=DEFAULT_FOLD_EPOCHS,
                   help="epochs per fold for small_cnn, at least 1 (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and of training (default %(default)s)")
    p.add_argument("--corrections", default="auto", metavar="FILE",
                   help="label corrections to apply first (default: the ones the app's review queue saved for "
                        "this dataset; 'none' for the labels as the files give them)")
    p.add_argument("--top", type=int, default=30, metavar="N", help="suspects to print as text (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print everything as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the finder and print; return the exit code."""

    check_settings(args.folds, args.epochs)  # before TensorFlow's import
    checker = choose_checker(args.backbone, args.weights)  # the one weights parser; never downloads a default
    if args.backbone is None:
        print(f"Using {checker.describe()}.", file=sys.stderr)
    tf_runtime.import_tensorflow()
    try:
        with cancel_on_interrupt() as token:
            settings = LabelCheckSettings(backbone=checker.backbone, weights=checker.weights.value,
                                          folds=args.folds, image_size=args.image_size, epochs=args.epochs,
                                          seed=args.seed, corrections=args.corrections)
            issues = find_label_issues(args.data_dir, settings, sink=TerminalProgress(sys.stderr), cancel=token)
    except Cancelled:
        print("label check cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    if args.json:
        json.dump(issues.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    _print(issues, args.top)
    return 0


def _print(issues: LabelIssues, top: int) -> None:
    n = len(issues.paths)
    print(f"{n} images, {len(issues.class_names)} classes, {issues.folds} folds ({issues.checker}); "
          f"{issues.seconds:.1f} s")
    if issues.check:
        print(issues.check["message"])
    if not issues.trusted:
        if issues.check.get("hint"):
            print(issues.check["hint"])
    else:
        print(f"{len(issues.suspects)} suspected label issue(s)"
              + (f", {issues.kept} kept by the review" if issues.kept else "") + ":")
        for s in issues.suspects[:top]:
            print(f"  {s.score:5.2f}  {s.given} → {s.suggested}  {s.path}")
        if len(issues.suspects) > top:
            print(f"  … {len(issues.suspects) - top} more (--top N or --json)")
    if issues.duplicates:
        print(f"{len(issues.duplicates)} near-duplicate pair(s):")
        for d in issues.duplicates[:top]:
            where = f"{d.label_a}/{d.label_b}" if d.kind == "cross_class" else f"{d.split_a}/{d.split_b}"
            print(f"  {d.similarity:.3f}  {d.kind} ({where})  {d.path_a}  {d.path_b}")
