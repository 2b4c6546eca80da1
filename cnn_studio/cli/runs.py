"""``cnn-studio runs [FOLDER...] [--json]``: the run folders on this computer and how each ended.

Without FOLDER: the app's runs folder and the runs made elsewhere (``train --out``), which training
remembers (:mod:`cnn_studio.runs.registry`). A FOLDER may be a run folder or a folder of runs.
``cnn-studio runs --compare RUN RUN [...] [--json]``: two or more runs side by side (settings with
the differing ones marked ``*``, metrics, the best validation accuracy per epoch). Exit codes:
0 (also when there are no runs), 2 for a folder that does not exist or fewer than two runs to compare.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_studio.core.errors import RunError
from cnn_studio.core.paths import runs_dir
from cnn_studio.runs.compare import RunComparison, compare_runs
from cnn_studio.runs.listing import format_size, list_runs


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``runs`` subcommand (no TensorFlow import)."""
    p = subparsers.add_parser(
        "runs", help="list training runs: status, epochs, best accuracy, size",
        description="List the run folders in FOLDER (default: the app's runs folder and every run made "
                    "elsewhere with train --out) with their dataset, "
                    "backbone, status (running / finished / stopped / crashed / failed / damaged, with the "
                    "reason), epochs, best validation accuracy, date and size on disk.")
    p.add_argument("folders", metavar="FOLDER", nargs="*", help="a run folder or a folder of runs")
    p.add_argument("--compare", metavar="RUN", nargs="+", default=None,
                   help="compare these run folders (two or more): settings, metrics and curves side by side")
    p.add_argument("--json", action="store_true", help="print the list (or the comparison) as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.compare is not None:
        return _compare([*args.folders, *args.compare], as_json=args.json)
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
    rows = [("NAME", "STATUS", "BACKBONE", "EPOCHS", "BEST VAL ACC", "DATE", "SIZE", "BEST.KERAS", "LAST.KERAS",
             "DATASET")]
    for r in runs:
        acc = f"{r.best_val_accuracy:.3f}" if r.best_val_accuracy is not None else "-"
        rows.append((r.name, r.status, r.backbone or "?", f"{r.epochs_done}/{r.total_epochs}", acc,
                     r.date[:16].replace("T", " "), format_size(r.size_bytes), _size(r.best_model_bytes),
                     _size(r.last_model_bytes), r.dataset))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    for r in runs:
        if r.problem:
            print(f"{r.name}: {r.problem}", file=sys.stderr)
    return 0


def _size(n: int) -> str:
    return format_size(n) if n else "-"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}"
    return str(value)


def _compare(run_dirs: list[str], *, as_json: bool) -> int:
    for folder in run_dirs:
        if not Path(folder).expanduser().is_dir():
            raise RunError(f"No run folder at {folder}.", "Give two or more run folders to compare.")
    comparison = compare_runs(*run_dirs)
    if as_json:
        json.dump(comparison.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    _print_comparison(comparison)
    for note in comparison.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _print_comparison(c: RunComparison) -> None:
    names = [r.name for r in c.runs]

    def table(title: str, rows, mark: frozenset[str] = frozenset()) -> None:
        lines = [(("* " if name in mark else "  ") + name, *(_cell(v) for v in values)) for name, values in rows]
        lines.insert(0, (title, *names))
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        for line in lines:
            print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        print()

    table(f"SETTINGS ({len(c.differing)} differ, marked *)", c.settings, c.differing)
    table("METRICS", c.metrics)
    epochs = max((len(h) for h in c.histories), default=0)
    curve = [(f"epoch {e + 1}", tuple(h[e].get("val_accuracy") if e < len(h) else None for h in c.histories))
             for e in range(epochs)]
    table("VAL ACCURACY", curve)
