"""GUI soak test: the real main window, in its own process, trains again and again while the curves repaint.

A crash of the Qt bindings (PySide6 6.12.0: "Fatal Python error: none_dealloc" during a repaint)
kills that process, so this test sees it as a non-zero exit status and the fatal error text; it
never hides it. bench/soak.py runs the same driver longer and prints crashes per run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).parents[2] / "tools" / "gui_soak.py"


def test_trainings_with_live_curves_stop_continue_and_close_without_a_crash(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_STUDIO_HOME=str(tmp_path / "home"),
               PYTHONFAULTHANDLER="1")
    proc = subprocess.run([sys.executable, str(DRIVER), "--cycles", "1", "--epochs", "3", "--min-repaints", "2000"],
                          capture_output=True, text=True, timeout=900, env=env)
    out = proc.stdout + proc.stderr
    assert "Fatal Python error" not in out, out[-4000:]
    assert proc.returncode == 0, out[-4000:]
    summary = re.search(r"soak: (\d+) training starts, (\d+) scenarios, (\d+) failed, (\d+) repaints", out)
    assert summary, out[-2000:]
    starts, scenarios, failed, repaints = map(int, summary.groups())
    assert (starts, scenarios, failed) == (4, 3, 0)
    assert repaints >= 2000
    for scenario in ("finish", "stop", "close"):
        assert re.search(rf"run \d/3 {scenario}\s+ok", out), out
