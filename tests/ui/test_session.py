"""StudioSession: each setter emits its signal and marks the project unsaved; save/load round trip."""

from __future__ import annotations

import pytest
from cnn_studio.ui.session import StudioSession

from cnn_studio.core.errors import ProjectError
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split
from cnn_studio.training.config import TrainConfig


def test_setters_emit_and_mark_dirty(qtbot, image_folder, tmp_path):
    s = StudioSession()
    index = scan(image_folder())
    assert not s.dirty
    with qtbot.waitSignal(s.dataset_changed, timeout=1000):
        s.set_dataset(index, [], None)
    assert s.dirty and s.project.dataset_path == index.root
    split = make_split(index, val_fraction=0.25, seed=1)
    with qtbot.waitSignal(s.split_changed, timeout=1000):
        s.set_split(split)
    cfg = TrainConfig(backbone="small_cnn", weights="none")
    with qtbot.waitSignal(s.config_changed, timeout=1000):
        s.set_config(cfg)
    with qtbot.waitSignal(s.run_changed, timeout=1000):
        s.set_run(tmp_path / "run")
    assert s.run_info() is None  # the folder holds no run: None, not an exception
    assert s.project.current_run == str(tmp_path / "run")

    with qtbot.waitSignal(s.project_changed, timeout=1000):
        path = s.save(tmp_path / "proj")
    assert not s.dirty and path.suffix == ".cnnstudio"

    t = StudioSession()
    t.load(path)
    assert t.config == cfg and t.split == split and t.run_dir == tmp_path / "run" and not t.dirty


def test_load_damaged_leaves_session_unchanged(tmp_path):
    bad = tmp_path / "bad.cnnstudio"
    bad.write_text("not json", encoding="utf-8")
    s = StudioSession()
    s.set_config(TrainConfig(epochs=7))
    with pytest.raises(ProjectError):
        s.load(bad)
    assert s.config.epochs == 7


def test_settings_live_in_cnn_studio_home_when_set(studio_home):
    from cnn_studio.ui.settings import StudioSettings

    s = StudioSettings()
    s.add_recent_dataset(studio_home)
    s.sync()
    assert (studio_home / "settings.ini").exists()
    assert StudioSettings().recent_datasets() == [studio_home.resolve()]


def test_project_data_is_derived_from_the_typed_objects(qtbot, image_folder, tmp_path):
    """One owner per fact: the project dicts are made from index/split/config/run when asked for."""
    s = StudioSession()
    index = scan(image_folder())
    split = make_split(index, val_fraction=0.25, seed=3)
    s.set_dataset(index, [], None)
    s.set_split(split)
    s.set_config(TrainConfig(backbone="small_cnn", epochs=4))
    s.set_run(tmp_path / "a")
    s.set_run(tmp_path / "b")
    p = s.project
    assert p.dataset_path == index.root and p.split == split.to_dict()
    assert p.config == s.config.to_dict() and p.config["epochs"] == 4
    assert p.runs == (str(tmp_path / "a"), str(tmp_path / "b")) and p.current_run == str(tmp_path / "b")
    s.config = s.config.replace(epochs=9)  # a typed object changed: the project data follows
    assert s.project.config["epochs"] == 9

    path = s.save(tmp_path / "proj")
    t = StudioSession()
    with qtbot.waitSignal(t.project_opened, timeout=1000):
        t.load(path)
    assert t.index is None and t.dataset_path == index.root  # the dataset is read again by the Data page
    assert t.project.runs == p.runs and t.project.name == "proj"
    t.set_dataset(None)
    assert t.dataset_path is None and t.project.dataset_path is None
    with qtbot.waitSignal(t.project_opened, timeout=1000):
        t.new_project()
    assert t.project.runs == () and t.project.split is None and t.project.current_run is None


def test_close_emits_closing(qtbot):
    s = StudioSession()
    with qtbot.waitSignal(s.closing, timeout=1000):
        s.close()
