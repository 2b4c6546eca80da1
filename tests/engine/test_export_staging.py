"""Issue 23: an export's temporaries name their writer; only a dead writer's are removed, never a user's file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnn_studio.export import staging


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_a_dead_writers_temporaries_are_stale(tmp_path):
    host = staging.host_tag()
    dead = _dead_pid()
    left = [f".cnn-studio-export-{host}-{dead}-0a1b2c3d.model.keras", f".cnn-studio-export-{host}-{dead}-old.saved_model"]
    kept = [
        f".cnn-studio-export-{host}-{os.getppid()}-0a1b2c3d.model.tflite",  # a live process is writing it
        f".cnn-studio-export-{host}-{os.getpid()}-0a1b2c3d.model.onnx",  # this process
        f".cnn-studio-export-{'0' * 6 if host != '0' * 6 else '1' * 6}-{dead}-0a1b2c3d.model.keras",  # other computer
        ".model.k3j_x9ab.keras", ".saved_model.ab12cd34", "notes.txt", ".cnn-studio-export-mine.keras",
        f"cnn-studio-export-{host}-{dead}-0a1b2c3d.model.keras",  # not hidden: not ours
    ]
    for name in left + kept:
        (tmp_path / name).mkdir() if "saved_model" in name else (tmp_path / name).write_text("x")
    (tmp_path / left[1] / "variables").mkdir()
    assert staging.stale(tmp_path) == sorted(tmp_path / n for n in left)
    assert staging.remove_stale(tmp_path) == sorted(tmp_path / n for n in left)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_staged_names_its_writer_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "model.keras"
    with staging.staged(target) as tmp:
        assert tmp.name.startswith(f".cnn-studio-export-{staging.host_tag()}-{os.getpid()}-")
        assert tmp.name.endswith(".model.keras") and not tmp.exists()
        tmp.write_text("new")
    assert target.read_text() == "new"
    folder = tmp_path / "saved_model"
    folder.mkdir()
    (folder / "old.pb").write_text("old")
    with pytest.raises(RuntimeError), staging.staged(folder, is_dir=True) as tmp:
        (tmp / "saved_model.pb").write_text("half")
        raise RuntimeError("converter failed")
    assert [p.name for p in folder.iterdir()] == ["old.pb"]
    with staging.staged(folder, is_dir=True) as tmp:
        (tmp / "saved_model.pb").write_text("new")
    assert [p.name for p in folder.iterdir()] == ["saved_model.pb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "saved_model"]
