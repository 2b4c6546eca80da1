"""The project file: round trip, backup of the previous save, migration, damaged and newer files."""

from __future__ import annotations

import json

import pytest

from cnn_studio.core.errors import ProjectError
from cnn_studio.runs.project import SCHEMA_VERSION, Project, backup_path, load_project, save_project
from cnn_studio.training.config import TrainConfig


def test_round_trip_and_suffix(tmp_path):
    cfg = TrainConfig(backbone="small_cnn", weights="none", epochs=2).to_dict()
    p = Project(name="Leaves", dataset_path="/data/leaves", config=cfg).with_run(tmp_path / "run1")
    written = save_project(p, tmp_path / "leaves")
    assert written.name == "leaves.cnnstudio"
    back = load_project(written)
    assert back.name == "Leaves" and back.dataset_path == "/data/leaves"
    assert TrainConfig.from_dict(back.config) == TrainConfig.from_dict(cfg)
    assert back.runs == (str(tmp_path / "run1"),) and back.current_run == str(tmp_path / "run1")
    assert json.loads(written.read_text())["schema_version"] == SCHEMA_VERSION


def test_previous_save_is_kept_as_bak(tmp_path):
    path = save_project(Project(name="first"), tmp_path / "p.cnnstudio")
    save_project(Project(name="second"), path)
    assert load_project(path).name == "second"
    assert json.loads(backup_path(path).read_text())["name"] == "first"


def test_corrupt_file_says_damaged_and_points_to_backup(tmp_path):
    path = save_project(Project(name="good"), tmp_path / "p.cnnstudio")
    save_project(Project(name="good2"), path)
    path.write_text('{"schema_version": 1, "name": "trunc', encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        load_project(path)
    assert "damaged" in info.value.message and str(backup_path(path)) in info.value.message
    assert info.value.hint


def test_not_a_project(tmp_path):
    path = tmp_path / "x.cnnstudio"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(ProjectError, match="not a CNN Studio project"):
        load_project(path)


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "future.cnnstudio"
    text = json.dumps({"schema_version": SCHEMA_VERSION + 1, "name": "future", "hologram": True})
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        load_project(path)
    assert f"schema {SCHEMA_VERSION + 1}" in info.value.message and "update" in info.value.hint.lower()
    assert path.read_text(encoding="utf-8") == text


def test_schema_0_is_migrated(tmp_path):
    path = tmp_path / "old.cnnstudio"
    path.write_text(json.dumps({"name": "old", "dataset": "/d", "train_config": {"epochs": 3},
                                "run": "/runs/a"}), encoding="utf-8")
    p = load_project(path)
    assert (p.dataset_path, p.config, p.runs, p.current_run) == ("/d", {"epochs": 3}, ("/runs/a",), "/runs/a")
    assert p.schema_version == SCHEMA_VERSION


def test_missing_file(tmp_path):
    with pytest.raises(ProjectError, match="no project file"):
        load_project(tmp_path / "nope.cnnstudio")
