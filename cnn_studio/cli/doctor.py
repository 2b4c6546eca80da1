"""``cnn-studio doctor``: what this computer can do for CNN Studio, with what to fix (exit 1 when something is broken)."""

from __future__ import annotations

import argparse

from cnn_studio.computer.doctor import report_json, run_doctor


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check this computer: versions, GPU, Qt, weights, disk",
                       description="Check what CNN Studio needs on this computer: Python, TensorFlow, Keras, "
                       "PySide6 and pyqtgraph versions (with a warning for versions known to crash), the GPUs "
                       "TensorFlow sees, whether Qt can open a window (and which system packages are missing), "
                       "the ImageNet weights available offline, and the runs folder with its free disk space. "
                       "Exit code 0 when everything needed works, 1 when something does not.")
    p.add_argument("--json", action="store_true", help="print JSON (for a bug report or a script)")
    p.add_argument("--no-gpu", action="store_true", help="skip the GPU check (it imports TensorFlow)")
    p.add_argument("--no-qt", action="store_true", help="skip starting Qt")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = run_doctor(gpu=not args.no_gpu, qt=not args.no_qt)
    print(report_json(report) if args.json else report.to_text())
    return 0 if report.ok else 1
