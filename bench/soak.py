"""GUI soak, longer: the real app window trains again and again with forced curve repaints; crashes per run.

Runs ``tools/gui_soak.py`` (the driver tests/ui/test_soak.py runs once in CI) ``--repeats`` times,
each in a fresh process, with each Python interpreter given (``--python``, repeatable: e.g. this
one and a virtual environment holding another PySide6), and prints one row per interpreter:
its PySide6 and pyqtgraph versions, processes run, training starts, crashed processes (a fatal
error or an abort), scenarios that ended wrongly, repaints and time. The plain baseline is the
same driver with the versions pyproject.toml allows; a known-bad one shows what a crash looks like.

    python bench/soak.py [--repeats 5] [--cycles 3] [--python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRIVER = Path(__file__).resolve().parents[1] / "tools" / "gui_soak.py"
VERSIONS = ("import importlib.metadata as m; "
            "print(m.version('PySide6-Essentials'), m.version('pyqtgraph'), __import__('platform').python_version())")


def soak_once(python: str, cycles: int, epochs: int, min_repaints: int, timeout_s: float) -> dict:
    """One driver process: its exit status, whether it crashed, its training starts, failures and repaints."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1",
               CNN_STUDIO_HOME=tempfile.mkdtemp(prefix="cnn-studio-soak-"))
    t0 = time.monotonic()
    try:
        proc = subprocess.run([python, str(DRIVER), "--cycles", str(cycles), "--epochs", str(epochs),
                               "--min-repaints", str(min_repaints)], capture_output=True, text=True,
                              timeout=timeout_s, env=env)
        out, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, code = f"{exc.stdout or ''}{exc.stderr or ''}", "timeout"
    summary = re.search(r"soak: (\d+) training starts, \d+ scenarios, (\d+) failed, (\d+) repaints", out or "")
    runs = re.findall(r"run \d+/\d+ \w+", out or "")
    starts, failed, repaints = map(int, summary.groups()) if summary else (len(runs), 0, 0)
    crashed = "Fatal Python error" in (out or "") or (isinstance(code, int) and code < 0) or code == 134
    return {"code": code, "crashed": crashed, "starts": starts, "failed": failed, "repaints": repaints,
            "seconds": time.monotonic() - t0, "tail": (out or "")[-1500:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="driver processes per interpreter")
    parser.add_argument("--cycles", type=int, default=3, help="finish + stop/continue scenarios per process")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--min-repaints", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--python", action="append", default=None,
                        help="interpreter to soak (repeatable; default: this one)")
    args = parser.parse_args(argv)
    pythons = args.python or [sys.executable]
    rows = []
    for python in pythons:
        versions = subprocess.run([python, "-c", VERSIONS], capture_output=True, text=True).stdout.split()
        results = [soak_once(python, args.cycles, args.epochs, args.min_repaints, args.timeout)
                   for _ in range(args.repeats)]
        for i, r in enumerate(results, 1):
            print(f"{python} #{i}: exit {r['code']}, {'CRASH' if r['crashed'] else 'ok'}, {r['starts']} starts, "
                  f"{r['repaints']} repaints, {r['seconds']:.0f} s", flush=True)
            if r["crashed"]:
                fatal = [ln for ln in r["tail"].splitlines() if "Fatal Python error" in ln]
                print(f"    {fatal[0] if fatal else r['tail'].splitlines()[-1:]}", flush=True)
        rows.append((versions, results))
    print()
    print(f"{'python':<8}{'PySide6':<10}{'pyqtgraph':<11}{'processes':>10}{'crashed':>9}{'starts':>8}"
          f"{'failed':>8}{'repaints':>10}{'s/process':>11}")
    for versions, results in rows:
        pyside, pqg, py = (versions + ["?", "?", "?"])[:3]
        n = len(results)
        print(f"{py:<8}{pyside:<10}{pqg:<11}{n:>10}{sum(r['crashed'] for r in results):>9}"
              f"{sum(r['starts'] for r in results):>8}{sum(r['failed'] for r in results):>8}"
              f"{sum(r['repaints'] for r in results):>10}{sum(r['seconds'] for r in results) / max(n, 1):>11.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
