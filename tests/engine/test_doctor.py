"""``cnn-studio doctor``: version rules, missing system libraries named with their packages, the report, exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_studio.computer import doctor

# TensorFlow's start-up lines a user must not see on the terminal (they go to the log file)
NOISE = ("oneDNN", "cuInit", "cuda_drivers", "cpu_feature_guard", "absl::InitializeLog", "E0000", "I0000")


def test_pyside_612_on_python_311_is_named_as_crashing_with_the_fix():
    found = doctor.version_problems({"PySide6-Essentials": "6.12.0", "pyqtgraph": "0.14.0"}, python=(3, 11))
    assert [c.status for c in found] == [doctor.PROBLEM]
    assert "none_dealloc" in found[0].detail and "<6.12" in found[0].fix


def test_pyside_612_on_python_312_is_only_untested():
    found = doctor.version_problems({"PySide6-Essentials": "6.12.0", "pyqtgraph": "0.14.0"}, python=(3, 12))
    assert [(c.name, c.status) for c in found] == [("PySide6-Essentials version", doctor.WARNING)]


def test_tested_versions_raise_nothing_and_newer_pyqtgraph_is_untested():
    assert doctor.version_problems({"PySide6-Essentials": "6.11.3", "pyqtgraph": "0.14.0"}, python=(3, 11)) == []
    found = doctor.version_problems({"PySide6-Essentials": "6.11.3", "pyqtgraph": "0.15.1"}, python=(3, 11))
    assert [(c.name, c.status) for c in found] == [("pyqtgraph version", doctor.WARNING)]


def test_pyproject_bounds_match_the_tested_ranges():
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"PySide6-Essentials>=6.9,<6.12"' in text
    assert '"pyqtgraph>=0.13.7,<0.15"' in text
    assert doctor.TESTED_RANGES["PySide6-Essentials"] == ((6, 9), (6, 12))
    assert doctor.TESTED_RANGES["pyqtgraph"] == ((0, 13, 7), (0, 15))


@pytest.mark.parametrize(("library", "package"), [
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libEGL.so.1", "libegl1"), ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libdbus-1.so.3", "libdbus-1-3"), ("libxcb-foo.so.2", "libxcb-foo2"), ("libbar-3.so.1", "libbar-3-1"),
])
def test_debian_package_of_a_library(library, package):
    assert doctor.debian_package(library) == package


@pytest.fixture
def fake_ldd(tmp_path, monkeypatch):
    """An ``ldd`` on PATH that reports two xcb libraries as missing (as on a minimal Linux install)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldd = bin_dir / "ldd"
    ldd.write_text("#!/bin/sh\necho '\tlibc.so.6 => /lib/libc.so.6 (0x1)'\n"
                   "echo '\tlibxcb-icccm.so.4 => not found'\necho '\tlibxcb-cursor.so.0 => not found'\n")
    ldd.chmod(ldd.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return ldd


def test_missing_libraries_are_read_from_ldd(fake_ldd, tmp_path):
    lib = tmp_path / "libqxcb.so"
    lib.write_bytes(b"\x7fELF")
    assert doctor.missing_libraries([lib, lib]) == ["libxcb-icccm.so.4", "libxcb-cursor.so.0"]
    assert doctor.missing_libraries([tmp_path / "absent.so"]) == []


def test_report_without_gpu_and_qt(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "home"))
    report = doctor.run_doctor(gpu=False, qt=False)
    names = [c.name for c in report.checks]
    assert names[0] == "Python" and "Versions" in names and "Runs folder" in names
    assert report.facts["runs_folder"] == str(tmp_path / "home" / "runs")
    assert report.facts["free_disk_bytes"] > 0
    assert report.facts["versions"]["tensorflow"] and report.ok
    again = doctor.DoctorReport.from_dict(json.loads(doctor.report_json(report)))
    assert again.checks == report.checks and again.to_text() == report.to_text()
    assert "Everything CNN Studio needs works." in report.to_text()


def _doctor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_studio", "doctor", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_names_missing_system_packages_and_exits_1(fake_ldd, tmp_path):
    env = dict(os.environ, CNN_STUDIO_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="xcb", DISPLAY=":424242")
    proc = _doctor("--json", "--no-gpu", env=env)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    libs = [c for c in report["checks"] if c["name"] == "System libraries for Qt"]
    assert libs and libs[0]["status"] == "problem"
    assert libs[0]["fix"] == "sudo apt-get install libxcb-cursor0 libxcb-icccm4"


@pytest.mark.slow
def test_cli_full_report_is_quiet_and_says_which_device_trains(tmp_path):
    env = dict(os.environ, CNN_STUDIO_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = _doctor(env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok  ] Qt window: Qt starts with the 'offscreen' platform plugin." in proc.stdout
    assert "Training on the CPU" in proc.stdout or "Training on the GPU" in proc.stdout or "GPUs:" in proc.stdout
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, noise
    log = tmp_path / "home" / "logs" / "tensorflow.log"
    assert log.is_file()  # TensorFlow's start-up lines were kept, not lost


@pytest.mark.slow
def test_cli_train_prints_one_device_line_and_no_tensorflow_noise(tmp_path, image_folder):
    data = image_folder(classes=("a", "b"), per_class=6, size=32)
    env = dict(os.environ, CNN_STUDIO_HOME=str(tmp_path / "home"))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-m", "cnn_studio", "train", str(data), "--backbone", "small_cnn",
                           "--weights", "none", "--image-size", "32", "--epochs", "1", "--fine-tune-epochs", "0",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    device_lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("Training on ")]
    assert len(device_lines) == 1, proc.stdout
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, noise
