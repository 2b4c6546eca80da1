"""The shared engine contracts: atomic files, cancel token, TrainConfig, records, run folders, CLI."""

from __future__ import annotations

import errno
import json
import os
import threading

import pytest

from cnn_studio import events as ev
from cnn_studio import fsutil
from cnn_studio.cancel import Cancelled, CancelToken, raise_if_cancelled
from cnn_studio.data.records import DatasetIndex, ImageRecord, Split
from cnn_studio.errors import ConfigError, RunError, StudioError
from cnn_studio.training.config import TrainConfig
from cnn_studio.training.run_folder import open_run


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


def test_cancel_token_across_threads():
    token = CancelToken()
    raise_if_cancelled(token)
    raise_if_cancelled(None)
    t = threading.Thread(target=token.cancel)
    t.start()
    t.join()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()


def test_train_config_validation_messages():
    TrainConfig().validate()
    with pytest.raises(ConfigError, match=r"batch_size.*expected a whole number from 1 to 4096.*received 0"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment=("wobble",)).validate()
    with pytest.raises(ConfigError, match="val_fraction"):
        TrainConfig(val_fraction=0.6, test_fraction=0.5).validate()
    with pytest.raises(ConfigError, match="at least one epoch"):
        TrainConfig(epochs=0, fine_tune_epochs=0).validate()


def test_train_config_json_round_trip_keeps_unknown_keys():
    c = TrainConfig(backbone="vgg16", augment=("flip", "zoom"), image_size=64)
    d = json.loads(json.dumps(c.to_dict()))
    assert TrainConfig.from_dict(d) == c
    d["from_the_future"] = 3
    assert TrainConfig.from_dict(d).extra == {"from_the_future": 3}


def test_records_round_trip():
    recs = tuple(ImageRecord(path=f"/d/{c}/{i}.png", label=li, group=f"p{i}") for li, c in enumerate("ab") for i in range(3))
    idx = DatasetIndex(root="/d", layout="class_folders", class_names=("a", "b"), records=recs)
    assert idx.counts() == {"a": 3, "b": 3}
    assert DatasetIndex.from_dict(json.loads(json.dumps(idx.to_dict()))) == idx
    sp = Split(class_names=("a", "b"), train=recs[:4], val=recs[4:])
    assert Split.from_dict(json.loads(json.dumps(sp.to_dict()))) == sp
    with pytest.raises(KeyError):
        sp.subset("holdout")


def test_open_run_errors_name_what_to_do(tmp_path):
    with pytest.raises(RunError, match="No run folder"):
        open_run(tmp_path / "missing")
    with pytest.raises(RunError, match="not a CNN Studio run folder"):
        open_run(tmp_path)
    fsutil.write_json(tmp_path / "config.json", TrainConfig().to_dict())
    with pytest.raises(RunError) as info:
        open_run(tmp_path)
    assert "resume" in info.value.hint


def test_event_catalogue_is_frozen_and_closed():
    e = ev.EpochEnded(phase="head", epoch=0, epochs=3, logs={"loss": 1.0})
    with pytest.raises(AttributeError):
        e.epoch = 2  # type: ignore[misc]
    for cls in ev.ALL_EVENTS:
        assert cls.__doc__, f"{cls.__name__} needs a one-line docstring"
        assert cls.__dataclass_params__.frozen


def test_cli_help_lists_every_subcommand(capsys):
    from cnn_studio.cli import SUBCOMMANDS, main

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out
