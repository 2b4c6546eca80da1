"""``cnn-studio predict MODEL IMAGE_OR_DIR...``: classify images with a trained model.

MODEL is a run folder or a ``.keras`` file (with ``labels.txt`` beside it). One line per image on
stdout (or JSON with ``--json``); ``--csv`` also writes a CSV. Unreadable files are reported per
row and do not stop the others. Exit codes: 0 all classified, 1 some files unreadable, 2 bad
input, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys

from cnn_studio.cancel import Cancelled
from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.errors import ConfigError, DatasetError
from cnn_studio.predict import Classifier, expand_paths, write_csv


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand (no TensorFlow import)."""
    p = subparsers.add_parser(
        "predict", help="classify images with a trained model",
        description="Classify image files and folders (searched recursively) with a run's best model "
                    "or a .keras file.")
    p.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="run folder or .keras file")
    p.add_argument("paths", metavar="IMAGE_OR_DIR", nargs="+", help="images and/or folders of images")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="how many classes to show per image (default 3)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--csv", metavar="OUT", default=None, help="also write the predictions to this CSV file")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON on stdout")
    p.add_argument("--uncertain-below", type=float, default=None, metavar="P",
                   help="answer 'uncertain' when the top probability is below P (e.g. 0.6) instead of a label "
                        "that may be wrong; the run's probabilities are calibrated on its validation images")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Classify and print; return the exit code."""

    if args.top_k < 1:
        raise ConfigError(f"--top-k: expected a whole number >= 1, received {args.top_k}.")
    paths = expand_paths(args.paths)
    if not paths:
        raise DatasetError(f"No images found in {', '.join(args.paths)}.",
                           "Give image files, or folders that contain images.")
    try:
        with cancel_on_interrupt() as token:
            clf = Classifier.load(args.model)
            predictions = clf.classify(paths, top_k=args.top_k, batch_size=args.batch_size,
                                       uncertain_below=args.uncertain_below, sink=TerminalProgress(), cancel=token)
    except Cancelled:
        print("prediction cancelled", file=sys.stderr)
        return 130
    if args.csv:
        print(f"wrote {write_csv(predictions, args.csv, answer_column=args.uncertain_below is not None)}",
              file=sys.stderr)
    if args.json:
        json.dump([p.to_dict() for p in predictions], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for p in predictions:
            if p.error:
                print(f"{p.path}\tERROR: {p.error}")
            elif p.uncertain:
                print(f"{p.path}\tuncertain (below {args.uncertain_below:g}; best guesses: "
                      + "  ".join(f"{name} {prob:.3f}" for name, prob in p.top) + ")")
            else:
                print(f"{p.path}\t" + "  ".join(f"{name} {prob:.3f}" for name, prob in p.top))
    unsure = sum(1 for p in predictions if p.uncertain)
    if unsure:
        print(f"{unsure} of {len(predictions)} image(s) answered 'uncertain' (top probability below "
              f"{args.uncertain_below:g})", file=sys.stderr)
    failed = sum(1 for p in predictions if p.error)
    if failed:
        print(f"warning: {failed} of {len(predictions)} file(s) could not be read", file=sys.stderr)
        return 1
    return 0
