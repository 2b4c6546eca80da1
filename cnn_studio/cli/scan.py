"""``cnn-studio scan PATH``: index a dataset, check it, split it, and print the report.

Exit codes: 0 when the dataset can be trained on (warnings allowed), 2 when a check finds an error
(one class, empty class, too few images, ...), 130 when cancelled with Ctrl+C.
Progress goes to stderr; the report (text, or JSON with ``--json``) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

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
    p.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                   help="share of each class for validation (default 0.2)")
    p.add_argument("--test-fraction", type=float, default=0.0, metavar="F",
                   help="share of each class for a held-out test set (default 0)")
    p.add_argument("--seed", type=int, default=1337, metavar="N", help="split seed (default 1337)")
    p.add_argument("--group-by", choices=("auto", "group", "none"), default="auto",
                   help="keep patient/source groups within one split: auto (when the data has group ids), "
                        "group (always) or none")
    p.add_argument("--no-duplicates", action="store_true", help="skip the exact-duplicate search (faster)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Scan, check, split and print; return the exit code."""
    from cnn_studio.cancel import Cancelled
    from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
    from cnn_studio.data.checks import Finding, has_errors, run_checks
    from cnn_studio.data.index import scan
    from cnn_studio.data.report import build_report
    from cnn_studio.data.split import make_split
    from cnn_studio.errors import DatasetError

    group_by = None if args.group_by == "auto" else args.group_by
    try:
        with cancel_on_interrupt() as token:
            index = scan(args.path, sink=TerminalProgress(), cancel=token)
            findings: list[Finding] = run_checks(index, min_per_class=2 + (args.test_fraction > 0),
                                                 find_duplicates=False)
            split = None
            if not has_errors(findings):
                try:
                    split = make_split(index, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                                       seed=args.seed, group_by=group_by)
                except DatasetError as exc:
                    findings.append(Finding("error", "split_failed", exc.message, exc.hint))
            extra = run_checks(index, split, find_duplicates=not args.no_duplicates, cancel=token)
            known = {(f.code, f.message) for f in findings}
            findings += [f for f in extra if (f.code, f.message) not in known]
    except Cancelled:
        print("scan cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    report = build_report(index, split, findings)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.to_text())
    if has_errors(findings):
        first = next(f for f in findings if f.severity == "error")
        print(f"error: {first.message}", file=sys.stderr)
        if first.hint:
            print(f"hint: {first.hint}", file=sys.stderr)
        return EXIT_DATASET_ERROR
    return EXIT_OK
