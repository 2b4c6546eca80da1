"""``cnn-studio evaluate RUN_DIR``: metrics of a trained model on its test (or val) images or another folder.

The report goes to stdout (text, or JSON with ``--json``), progress to stderr; ``metrics.json`` is
saved in the run folder. Exit codes: 0 done, 2 bad input, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_studio.cli.predict import positive_int
from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled
from cnn_studio.evaluation.evaluate import RunEvaluationOptions, evaluate_run
from cnn_studio.evaluation.review import read_review


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand (no TensorFlow import)."""
    p = subparsers.add_parser(
        "evaluate", help="measure a trained model: accuracy, per-class scores, confusion matrix",
        description="Evaluate a run's best model on its held-out test images (else validation images), "
                    "or on another labeled folder, and save metrics.json in the run folder.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder `cnn-studio train --out` created")
    p.add_argument("--data", metavar="DATA_DIR", default=None,
                   help="evaluate on this labeled folder instead (class names must be the model's)")
    p.add_argument("--subset", choices=("auto", "test", "val"), default="auto",
                   help="which images of the run's split (default: test if there is one, else val)")
    p.add_argument("--corrections", default="auto", metavar="FILE",
                   help="with --data: the label corrections of that folder (a corrections.csv; default auto: the "
                        "ones its review queue wrote; none: the labels as the folders give them)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; return the exit code."""

    try:
        with cancel_on_interrupt() as token:
            metrics = evaluate_run(args.run_dir, RunEvaluationOptions(data_dir=args.data, subset=args.subset,
                                                                    batch_size=args.batch_size,
                                                                    corrections=args.corrections),
                                   sink=TerminalProgress(), cancel=token)
    except Cancelled:
        print("evaluation cancelled", file=sys.stderr)
        return 130
    if args.json:
        d = metrics.to_dict()
        d["macro_f1"] = metrics.macro_f1
        json.dump(d, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(metrics.to_text() + "\n")
    for s in metrics.skipped:
        print(f"warning: skipped {s['path']}: {s['reason']}", file=sys.stderr)
    run_dir = Path(args.run_dir).expanduser()
    damaged = read_review(run_dir.parent if run_dir.suffix == ".keras" else run_dir).get("damaged")
    if damaged:
        print(f"note: {damaged}", file=sys.stderr)
    return 0
