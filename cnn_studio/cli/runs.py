"""``cnn-studio runs [FOLDER...] [--json]``: the run folders on this computer and how each ended.

Without FOLDER: the app's runs folder. A FOLDER may be a run folder or a folder of runs. Exit codes:
0 (also when there are no runs), 2 for a folder that does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_studio.errors import RunError
from cnn_studio.paths import runs_dir
from cnn_studio.runs import format_size, list_runs


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``runs`` subcommand (no TensorFlow import)."""
    p = subparsers.add_parser(
        "runs", help="list training runs: status, epochs, best accuracy, size",
        description="List the run folders in FOLDER (default: the app's runs folder) with their dataset, "
                    "backbone, status (running / finished / stopped / crashed / failed), epochs, best "
                    "validation accuracy, date and size on disk.")
    p.add_argument("folders", metavar="FOLDER", nargs="*", help="a run folder or a folder of runs")
    p.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:


    for folder in args.folders:
        if not Path(folder).expanduser().is_dir():
            raise RunError(f"No folder at {folder}.", "Give a run folder or a folder that holds runs.")
    runs = list_runs(*args.folders)
    if args.json:
        json.dump([r.to_dict() for r in runs], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not runs:
        where = ", ".join(args.folders) or str(runs_dir())
        print(f"No runs in {where}.", file=sys.stderr)
        return 0
    rows = [("NAME", "STATUS", "BACKBONE", "EPOCHS", "BEST VAL ACC", "DATE", "SIZE", "DATASET")]
    for r in runs:
        acc = f"{r.best_val_accuracy:.3f}" if r.best_val_accuracy is not None else "-"
        rows.append((r.name, r.status, r.backbone or "?", f"{r.epochs_done}/{r.total_epochs}", acc,
                     r.date[:16].replace("T", " "), format_size(r.size_bytes), r.dataset))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    for r in runs:
        if r.problem:
            print(f"{r.name}: {r.problem}", file=sys.stderr)
    return 0
