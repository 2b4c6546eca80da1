"""Startup time: process start → first paint of the main window (target < 1 s), TensorFlow not loaded.

Runs a fresh ``python -c`` subprocess (offscreen Qt) several times; each records the time of the
window's first paint relative to the interpreter's start, the CPU time the process had used by then
(less sensitive than wall time to other work on a shared machine) and whether ``tensorflow`` was
imported. The load average before and after is printed with the figures.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, os, sys, time
from PySide6.QtCore import QObject, QEvent, QTimer
from cnn_studio.computer.doctor import window_problem
from cnn_studio.ui.app import create_app, create_window
assert window_problem() is None  # as ui.app.main: the check before the QApplication (xcb only)
app = create_app([])
window = create_window(None, open_sample=True)
class FirstPaint(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and not hasattr(self, "t"):
            self.t = time.time()
            self.cpu = time.process_time()
            QTimer.singleShot(0, app.quit)
        return False
fp = FirstPaint()
window.installEventFilter(fp)
window.show()
app.exec()
from cnn_studio.ui.workers import cancel_all_and_wait
cancel_all_and_wait(10000)
print(json.dumps({"t_paint": fp.t, "cpu": fp.cpu, "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""


def run_once() -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    import time

    t_start = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["seconds"] = data["t_paint"] - t_start
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    results = [run_once() for _ in range(args.runs)]
    secs = [r["seconds"] for r in results]
    print(f"{'run':>4} {'first paint (s)':>16} {'CPU (s)':>8} {'tensorflow loaded':>18}")
    for i, r in enumerate(results, 1):
        print(f"{i:>4} {r['seconds']:>16.3f} {r['cpu']:>8.3f} {str(r['tensorflow'] or r['keras']):>18}")
    print(f"median {statistics.median(secs):.3f} s (CPU {statistics.median(r['cpu'] for r in results):.3f} s), "
          f"max {max(secs):.3f} s (target < 1 s); TensorFlow imported at first paint: "
          f"{any(r['tensorflow'] for r in results)}; load average {load_before:.2f} → {os.getloadavg()[0]:.2f}")
    return 0 if statistics.median(secs) < 1 and not any(r["tensorflow"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
