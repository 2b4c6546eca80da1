"""Atomic files and folders (fsutil): nothing half-written is ever visible; a full disk keeps the old file."""

from __future__ import annotations

import errno
import os

import pytest

from cnn_studio.core import fsutil
from cnn_studio.core.errors import StudioError


def test_atomic_write_replaces_and_keeps_old_on_failure(tmp_path):
    p = tmp_path / "a.json"
    fsutil.write_json(p, {"v": 1})
    assert fsutil.read_json(p) == {"v": 1}

    with pytest.raises(RuntimeError):
        with fsutil.atomic_path(p) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("crash while writing")
    assert fsutil.read_json(p) == {"v": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"], "temporary file left behind"


def test_full_disk_gives_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "project.json"
    fsutil.write_text(p, "old")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StudioError) as info:
        fsutil.write_text(p, "new")
    assert "disk is full" in info.value.message and "kept" in info.value.hint
    assert p.read_text() == "old"
    assert len(list(tmp_path.iterdir())) == 1


def test_atomic_dir_replaces_whole_folder(tmp_path):
    d = tmp_path / "saved"
    with fsutil.atomic_dir(d) as tmp:
        (tmp / "one.txt").write_text("1")
    with fsutil.atomic_dir(d) as tmp:
        (tmp / "two.txt").write_text("2")
    assert sorted(f.name for f in d.iterdir()) == ["two.txt"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["saved"]


def test_unicode_json_round_trip(tmp_path):
    p = tmp_path / "Ärzte_肺.json"
    fsutil.write_json(p, {"klasse": "Lunge-肺"})
    assert "肺" in p.read_text(encoding="utf-8")
    assert fsutil.read_json(p)["klasse"] == "Lunge-肺"
