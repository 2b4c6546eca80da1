"""``cnn-studio scan PATH``: index a dataset, check it, split it, and print the report.

Volumes (NIfTI files) and DICOM series are studies cut into slices (``--slice-axis``, ``--slices``);
the report then counts "36 studies, 1,152 slices, 12 patients".
Exit codes: 0 when the dataset can be trained on (warnings allowed), 2 when a check finds an error
(one class, empty class, too few images, ...), 130 when cancelled with Ctrl+C.
Progress goes to stderr; the report (text, or JSON with ``--json``) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.data.records import SLICE_AXES, VolumeSlicing
from cnn_studio.data.split import GROUP_CHOICES, SEED, TEST_FRACTION, VAL_FRACTION
from cnn_studio.training.config import parse_slices

EXIT_OK = 0
EXIT_DATASET_ERROR = 2
EXIT_CANCELLED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``scan`` subcommand."""
    p = subparsers.add_parser(
        "scan", help="check a dataset folder or CSV and print its report",
        description="Scan a folder with one sub-folder per class (or train/val/test folders, or a CSV "
                    "with path,label[,group]), check it and show how it would be split.")
    p.add_argument("path", help="dataset folder or .csv manifest")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--val-fraction", type=float, default=VAL_FRACTION, metavar="F",
                   help="share of each class for validation (default %(default)s)")
    p.add_argument("--test-fraction", type=float, default=TEST_FRACTION, metavar="F",
                   help="share of each class for a held-out test set (default %(default)s)")
    p.add_argument("--seed", type=int, default=SEED, metavar="N", help="split seed (default %(default)s)")
    p.add_argument("--group-by", choices=GROUP_CHOICES, default="auto",
                   help="keep patient/source groups within one split: auto (when the data has group ids), "
                        "group (always) or none")
    p.add_argument("--slice-axis", type=int, choices=SLICE_AXES, default=VolumeSlicing.axis, metavar="AXIS",
                   help="volumes (NIfTI) are cut into 2-D slices across this axis (default 2: axial for RAS-oriented files)")
    p.add_argument("--slices", default=VolumeSlicing.slices, metavar="WHICH",
                   help="which slices of a volume or DICOM series to use: content (every slice with content, "
                        "the default), all, or middle:K (the K middle slices)")
    p.add_argument("--no-duplicates", action="store_true", help="skip the exact-duplicate search (faster)")
    p.add_argument("--corrections", default="auto", metavar="FILE",
                   help="label corrections (corrections.csv: path,original_label,new_label,when) to apply; "
                        "default: the ones the app's review queue saved for this dataset; 'none' for none")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prepare (scan, check, split) and print; return the exit code."""
    parse_slices(args.slices)  # a ConfigError (exit 2) before the scan

    try:
        with cancel_on_interrupt() as token:
            prepared = prepare(args.path, PrepareOptions(
                val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
                group_by=args.group_by, find_duplicates=not args.no_duplicates, corrections=args.corrections,
                slicing=VolumeSlicing(args.slice_axis, args.slices)), sink=TerminalProgress(), cancel=token)
    except Cancelled:
        print("scan cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    if args.json:
        report = prepared.report.to_dict()
        if prepared.corrections is not None:
            report["corrections"] = {k: v for k, v in prepared.corrections.to_dict().items() if k != "decisions"}
        json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(prepared.report.to_text())
    first = prepared.first_error
    if first is not None:
        print(f"error: {first.message}", file=sys.stderr)
        if first.hint:
            print(f"hint: {first.hint}", file=sys.stderr)
        return EXIT_DATASET_ERROR
    return EXIT_OK
