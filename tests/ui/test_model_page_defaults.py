"""One owner per default (issue 20): ``cnn-studio train`` with no options and the Model step's starting
settings are the same config, and both take their backbone, weights, fine-tune depth and plateau patience
from the engine's owners (a second copy of a default in the CLI or the page would be caught here)."""

from __future__ import annotations

import pytest

from cnn_studio.backbones import registry, weights_store
from cnn_studio.backbones.fine_tune import DEFAULT_DEPTH
from cnn_studio.cli import build_parser
from cnn_studio.cli import train as cli_train
from cnn_studio.core.errors import WeightsUnavailable
from cnn_studio.training.config import PLATEAU_PATIENCE


def _weights_here(monkeypatch, here: bool) -> None:
    """Every backbone's ImageNet weights load offline (``here``) or are nowhere and cannot be downloaded."""

    def status(spec, image_size=None):
        return weights_store.OfflineStatus(here, "store" if here else "none", None, "test")

    def no_download(*_args, **_kwargs):
        raise WeightsUnavailable("no internet in this test", "import the file")

    monkeypatch.setattr(weights_store, "offline_status", status)
    monkeypatch.setattr(cli_train, "offline_status", status)
    monkeypatch.setattr(cli_train, "download_weights", no_download)


def _cli_config(*options: str):
    args = build_parser().parse_args(["train", "data", "--out", "run", *options])
    backbone, weights = cli_train.default_backbone_and_weights(args.backbone, args.weights, sink=lambda e: None)
    return cli_train.config_from_args(args, backbone, weights)


def _model_step(qtbot, tmp_path, monkeypatch):
    from cnn_studio.ui.pages.model_page import ModelPage
    from cnn_studio.ui.session import StudioSession

    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "app"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    page = ModelPage(StudioSession())
    qtbot.addWidget(page)
    return page


@pytest.mark.parametrize("here", [True, False], ids=["weights_here", "no_weights"])
def test_cli_and_model_step_start_from_the_same_defaults(qtbot, tmp_path, monkeypatch, here):
    _weights_here(monkeypatch, here)
    cli = _cli_config()
    page = _model_step(qtbot, tmp_path, monkeypatch)
    ui = page.form_config()
    assert cli == ui, "the CLI and the Model step start from different settings"
    expected = registry.get(registry.DEFAULT_BACKBONE if here else registry.FALLBACK_BACKBONE)
    assert (cli.backbone, cli.weights) == (expected.key, expected.default_weights)
    assert cli.fine_tune_depth == DEFAULT_DEPTH


def test_plateau_means_the_same_patience_in_the_cli_and_the_model_step(qtbot, tmp_path, monkeypatch):
    _weights_here(monkeypatch, True)
    assert _cli_config("--lr-schedule", "plateau").reduce_lr_patience == PLATEAU_PATIENCE
    page = _model_step(qtbot, tmp_path, monkeypatch)
    page.lr_schedule.setCurrentIndex(page.lr_schedule.findData("plateau"))
    assert page.form_config().reduce_lr_patience == PLATEAU_PATIENCE
