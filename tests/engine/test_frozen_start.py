"""What a frozen (PyInstaller) app needs from the engine: children start the app's own program, the Qt
probe runs through the entry point, and doctor says how each desktop system can use a GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnn_studio.computer import doctor
from cnn_studio.core import child_start


def test_frozen_program_command_is_the_app_itself(monkeypatch, tmp_path):
    app = tmp_path / "cnn-studio"
    app.write_text("")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    assert child_start.program_command("doctor", "--json") == [str(app), "doctor", "--json"]
    assert child_start.child_command() == [str(app), child_start.CHILD_FLAG]


def test_windowed_windows_app_starts_its_children_as_the_console_twin(tmp_path):
    windowed = tmp_path / "CNN Studio.exe"
    windowed.write_text("")
    assert child_start.frozen_program(str(windowed), "win32") == str(windowed)  # no twin: itself
    (tmp_path / child_start.CONSOLE_PROGRAM).write_text("")
    assert child_start.frozen_program(str(windowed), "win32") == str(tmp_path / child_start.CONSOLE_PROGRAM)
    assert child_start.frozen_program(str(windowed), "linux") == str(windowed)


def test_qt_probe_runs_through_the_program_entry_point():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(child_start.program_command(child_start.QT_PROBE_FLAG), capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "PLATFORM=offscreen" in proc.stdout


@pytest.mark.parametrize(("system", "words"), [
    ("linux", ("Linux", "CUDA", "tensorflow[and-cuda]")),
    ("win32", ("Windows", "2.10", "WSL2")),
    ("darwin", ("macOS", "Apple silicon", "tensorflow-metal")),
])
def test_gpu_support_is_one_line_for_each_system(system, words):
    check = doctor.gpu_support_check(system)
    assert check.status == doctor.INFO and "\n" not in check.detail
    assert all(w in check.detail for w in words), check.detail


def test_the_report_explains_gpu_support_for_this_system(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path))
    report = doctor.run_doctor(gpu=False, qt=False)
    lines = [c.detail for c in report.checks if c.name == "GPU support"]
    assert lines == [doctor.GPU_SUPPORT[doctor.platform_key()]]
    assert doctor.GPU_SUPPORT[doctor.platform_key()] in report.to_text()


def test_a_download_without_the_onnx_exporter_says_so_instead_of_pip(monkeypatch):
    from cnn_studio.export import formats

    onnx = formats.FORMATS["onnx"]
    real_find_spec = formats.importlib.util.find_spec
    monkeypatch.setattr(formats.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real_find_spec(name, *a))
    assert onnx.install_hint() == 'pip install "cnn-studio[onnx]"'
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    hint = onnx.install_hint()
    assert "download" in hint and "built without tf2onnx" in hint


def test_doctor_in_the_download_says_to_download_again_not_pip(monkeypatch):
    def broken():
        raise ImportError("libtensorflow_cc.so.2: cannot open shared object file")

    monkeypatch.setattr(doctor.tf_runtime, "import_tensorflow", broken)
    [check] = doctor.gpu_checks({})
    assert check.status == doctor.PROBLEM and check.fix.startswith("pip install")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    [check] = doctor.gpu_checks({})
    assert "pip" not in check.fix and "download CNN Studio again" in check.fix
