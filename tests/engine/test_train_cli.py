"""``cnn-studio train`` / ``cnn-studio resume`` end to end on a tiny generated folder."""

from __future__ import annotations

import pytest

from cnn_studio.core.fsutil import read_json

pytestmark = pytest.mark.slow


@pytest.fixture
def main(monkeypatch):
    """The real ``cnn-studio`` entry point, with only the subcommands this file tests registered
    (so these tests do not depend on other subcommand modules being present)."""
    import cnn_studio.cli as cli

    monkeypatch.setattr(cli, "SUBCOMMANDS", {"train": "train", "resume": "train"})
    return cli.main


def test_train_then_resume_a_completed_run(main, image_folder, tmp_path, capsys):
    data = image_folder(per_class=8)
    out = tmp_path / "run"
    code = main(["train", str(data), "--backbone", "small_cnn", "--weights", "none", "--image-size", "32",
                 "--epochs", "1", "--batch-size", "8", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert str(out / "best.keras") in captured.out
    assert (out / "best.keras").exists() and read_json(out / "state.json")["status"] == "completed"
    # --cache auto (the default) says what it chose and why, and config.json records it
    assert "Decoded-image cache (auto): memory: the decoded images take about" in captured.err
    config = read_json(out / "config.json")
    assert (config["cache"], config["extra"]["cache_asked"]) == ("memory", "auto")
    assert "epoch 1/1" in captured.err  # TerminalProgress drew the epoch

    code = main(["resume", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and "already completed" in captured.err and "hint:" in captured.err


def test_bad_settings_fail_before_anything_is_written(main, image_folder, tmp_path, capsys):
    data = image_folder(per_class=4)
    out = tmp_path / "x"
    code = main(["train", str(data), "--backbone", "alexnet", "--weights", "none", "--out", str(out)])
    assert code == 2
    assert "mobilenet_v2" in capsys.readouterr().err
    assert not out.exists()

    code = main(["train", str(data), "--backbone", "small_cnn", "--weights", str(tmp_path / "missing.h5"),
                 "--out", str(out)])
    assert code == 2 and "does not exist" in capsys.readouterr().err and not out.exists()

    code = main(["train", str(data), "--backbone", "small_cnn", "--epochs", "0", "--out", str(out)])
    assert code == 2 and "epochs" in capsys.readouterr().err and not out.exists()


def test_resume_of_a_folder_that_is_not_a_run(main, tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a CNN Studio run folder" in capsys.readouterr().err


def test_cache_option_defaults_to_auto():
    import argparse

    from cnn_studio.cli import train as train_cli

    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers())
    assert parser.parse_args(["train", "DATA", "--out", "RUN"]).cache == "auto"
    assert parser.parse_args(["train", "DATA", "--out", "RUN", "--cache", "disk"]).cache == "disk"
