"""The GUI entry point explains a missing screen instead of letting Qt abort."""

from __future__ import annotations

import os
import subprocess
import sys

from cnn_studio.ui.app import display_problem


def test_display_problem_only_without_any_screen():
    assert display_problem({}, "linux") is not None
    assert "xvfb-run" in display_problem({}, "linux")
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None


def test_cnn_studio_without_a_screen_exits_2_with_advice(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["CNN_STUDIO_HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "cnn_studio"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no screen" in proc.stderr and "cnn-studio --help" in proc.stderr
