"""Cases of issue 23's fault campaign (tools/fault_campaign.py) that still failed when it was re-run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image


def _image(path):
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(path)
    return path


def test_explain_names_the_missing_config_of_a_run_folder(trained_run, tmp_path, capsys):
    """A run folder that lost config.json: explain says so (it said 'No model at RUN')."""
    from cnn_studio.cli import main

    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "config.json").unlink()
    assert main(["explain", str(run), str(_image(tmp_path / "img.png")), "--out", str(tmp_path / "cam.png")]) == 2
    err = capsys.readouterr().err
    assert "config.json is missing" in err and "No model at" not in err
    assert not (tmp_path / "cam.png").exists()


@pytest.mark.slow
def test_explain_refuses_a_keras_model_cnn_studio_did_not_make(tmp_path, capsys):
    """A .keras from elsewhere given to explain: a clear message (it was a ValueError traceback)."""
    import keras

    from cnn_studio.cli import main

    foreign = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    foreign.save(tmp_path / "foreign.keras")
    img = _image(tmp_path / "img.png")
    assert main(["explain", str(tmp_path / "foreign.keras"), str(img), "--out", str(tmp_path / "cam.png")]) == 2
    err = capsys.readouterr().err
    assert "not a model made by CNN Studio" in err and "flatten" in err
    assert not (tmp_path / "cam.png").exists()
    # its architecture can still be listed: that needs no CNN Studio layers
    assert main(["explain", str(tmp_path / "foreign.keras"), "--architecture"]) == 0
