"""What the terminal shows: an error comes first and alone, and library noise goes to the log (issue 23)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import pytest


def test_train_on_a_missing_folder_prints_the_error_first_and_alone(tmp_path, capsys):
    from cnn_studio.cli import main

    missing = tmp_path / "no such folder"
    code = main(["train", str(missing), "--out", str(tmp_path / "run")])  # default backbone: no weights offline
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.splitlines() == [f"error: The dataset {missing} does not exist.",
                                         "hint: Check the path, or choose the folder again (it may have been "
                                         "moved or renamed)."]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tflite_onnx_export_and_predict_keep_library_lines_out_of_stderr(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("run.lock"))
    image = next(p for p in (trained_run.parent / "data").rglob("*.png"))
    formats = [("tflite", "int8_full")] + ([("onnx", "float32")] if importlib.util.find_spec("tf2onnx") else [])
    script = textwrap.dedent(f"""
        from cnn_studio.cli import main
        for fmt, q in {formats!r}:
            assert main(["export", {str(run)!r}, "--format", fmt, "--quantization", q,
                         "--out", {str(tmp_path / "out")!r} + fmt]) == 0
        assert main(["predict", {str(run)!r}, {str(image)!r}]) == 0
    """)
    home = tmp_path / "home"
    env = {**os.environ, "CNN_STUDIO_HOME": str(home)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    for noise in ("XNNPACK", "fully_quantize", "FutureWarning", "np.object", "I0000", "E0000"):
        assert noise not in done.stderr, done.stderr
    assert "export tflite: done" in done.stderr  # our own progress still shows
    log = (home / "logs" / "tensorflow.log").read_text(encoding="utf-8")
    assert "XNNPACK" in log and "fully_quantize" in log  # kept for a bug report
