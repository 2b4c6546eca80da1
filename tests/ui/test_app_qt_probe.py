"""First start on a Linux lacking xcb libraries: a clear message and the apt line, not Qt's abort (issue 23)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from cnn_studio.computer import doctor


@pytest.fixture
def fake_ldd(tmp_path):
    """An ``ldd`` that reports the two libraries a fresh install lacked (libxcb-icccm4, libxcb-keysyms1)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldd = bin_dir / "ldd"
    ldd.write_text("#!/bin/sh\necho '\tlibc.so.6 => /lib/libc.so.6 (0x1)'\n"
                   "echo '\tlibxcb-icccm.so.4 => not found'\necho '\tlibxcb-keysyms.so.1 => not found'\n")
    ldd.chmod(ldd.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_missing_xcb_libraries_give_the_apt_line_and_exit_2_instead_of_an_abort(fake_ldd, tmp_path):
    # A library the xcb plugin needs does not load (a genuinely absent one is added to the list), the
    # probe's ldd names the missing ones, and the probe's child Qt aborts (no X server at that display).
    script = textwrap.dedent("""
        import sys
        from cnn_studio.computer import doctor
        doctor.XCB_LIBRARIES += ("libcnn-studio-absent.so.0",)
        from cnn_studio.ui.app import main
        sys.exit(main(["--no-sample"]))
    """)
    env = dict(os.environ, CNN_STUDIO_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="xcb", DISPLAY=":424242",
               PATH=f"{fake_ldd}{os.pathsep}{os.environ['PATH']}")
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr  # not -6 (SIGABRT)
    assert proc.stderr.startswith("CNN Studio cannot open its window.")
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in proc.stderr
    assert "What to do: sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in proc.stderr
    assert "xcb-cursor0" not in proc.stderr  # Qt's misleading line never shows


def test_a_normal_start_costs_only_the_cheap_check(monkeypatch):
    def no_probe(*a, **k):
        raise AssertionError("the subprocess probe ran on a normal start")

    monkeypatch.setattr(doctor, "qt_checks", no_probe)
    monkeypatch.setattr(doctor, "XCB_LIBRARIES", ("libc.so.6",))  # every library loads
    assert doctor.window_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}) is None
    monkeypatch.setattr(doctor, "XCB_LIBRARIES", ("libcnn-studio-absent.so.0",))
    assert doctor.window_problem({"QT_QPA_PLATFORM": "offscreen"}) is None  # not the xcb plugin: no check
    with pytest.raises(AssertionError, match="probe ran"):
        doctor.window_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"})  # a library missing: probe
