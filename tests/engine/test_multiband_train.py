"""Multi-band images end to end: a 13-band task only the near-infrared/red-edge bands can solve is
learnt from all bands and not from the RGB bands alone; the CLI trains, evaluates, predicts,
explains and exports (every format takes [N, H, W, 13] and agrees with the Keras model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnn_studio.cli import main
from cnn_studio.core.fsutil import read_json
from cnn_studio.data import bands as band_io
from cnn_studio.synthetic.multiband import make_multiband_dataset

pytestmark = pytest.mark.slow

EPOCHS = "8"


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return make_multiband_dataset(tmp_path_factory.mktemp("mbt") / "tiles", classes=("barley", "wheat"),
                                  per_class=40, size=16, seed=7)


def _train(tiles, out, *extra):
    code = main(["train", str(tiles), "--backbone", "small_cnn", "--weights", "none", "--image-size", "16",
                 "--epochs", EPOCHS, "--batch-size", "16", "--learning-rate", "0.003", "--val-fraction", "0.25",
                 "--seed", "0", "--out", str(out), *extra])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def run_all(tiles, tmp_path_factory):
    return _train(tiles, tmp_path_factory.mktemp("mbrun") / "all")


def _val_accuracy(run):
    rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    col = rows[0].index("val_accuracy")
    return float(rows[-1][col]), [float(r[rows[0].index("loss")]) for r in rows[1:]]  # the last epoch's


def test_all_bands_learn_what_the_rgb_bands_cannot(run_all, tiles, tmp_path, capsys):
    acc_all, losses = _val_accuracy(run_all)
    assert losses[-1] < 0.5 * losses[0], losses
    assert acc_all >= 0.9
    rgb_run = _train(tiles, tmp_path / "rgb", "--bands", "2,3,4")
    acc_rgb, _ = _val_accuracy(rgb_run)
    assert acc_rgb <= 0.75 and acc_all - acc_rgb >= 0.2, (acc_all, acc_rgb)
    info = band_io.read_run_bands(rgb_run)
    assert info.selected == (2, 3, 4) and info.rgb == (4, 3, 2) and info.count == 13
    capsys.readouterr()


def test_bands_json_holds_the_training_statistics(run_all):
    info = band_io.read_run_bands(run_all)
    assert (info.count, info.dtype, info.names[7], info.used, info.rgb) == (13, "uint16", "B08", tuple(range(1, 14)),
                                                                          (4, 3, 2))
    split = read_json(run_all / "split.json")
    train_paths = [r["path"] for r in split["train"]]
    expected = band_io.band_statistics(train_paths, names=info.names)
    assert [round(s.mean, 3) for s in info.stats] == [round(s.mean, 3) for s in expected]
    assert info.files_measured == len(train_paths)


def test_band_numbers_out_of_range_fail_before_anything_is_written(tiles, tmp_path, capsys):
    out = tmp_path / "bad"
    code = main(["train", str(tiles), "--backbone", "small_cnn", "--weights", "none", "--epochs", "1",
                 "--bands", "1,14", "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and "band numbers go from 1 to 13" in err
    assert not (out / "config.json").exists()


def test_evaluate_predict_explain_robustness_on_a_multiband_run(run_all, tiles, tmp_path, capsys):
    assert main(["evaluate", str(run_all), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_images"] == 20 and metrics["accuracy"] >= 0.9
    tile = tiles / "wheat" / "tile_0003.tif"
    assert main(["predict", str(run_all), str(tile), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    rows = pred if isinstance(pred, list) else pred.get("predictions", pred)
    assert rows[0]["top"][0][0] == "wheat" and rows[0]["error"] is None
    png = tmp_path / "cam.png"
    assert main(["explain", str(run_all), str(tile), "--out", str(png), "--rgb", "8,4,3"]) == 0
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (16, 16) and im.mode == "RGB"
    capsys.readouterr()
    from cnn_studio.explain.robustness import run_robustness

    report = run_robustness(run_all, max_images=8, levels={"gaussian_noise": (5.0,), "jpeg": (40.0,)},
                            epsilons=(0.01,))
    assert {r["perturbation"] for r in report.rows} == {"gaussian_noise", "fgsm"}
    assert report.notes and "jpeg" in report.notes[0] and "band" in report.epsilon_note


def test_a_picture_given_to_a_multiband_model_is_an_error_row(run_all, tmp_path):
    from PIL import Image

    from cnn_studio.predict.predictor import classify

    photo = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), "green").save(photo)
    (row,) = classify(run_all, [photo])
    assert row.error is not None and "13 bands" in row.error


def test_every_export_takes_13_bands_and_agrees(run_all, tiles, tmp_path, capsys):
    out = tmp_path / "export"
    formats = ["keras", "savedmodel", "tflite"]
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401

        formats.append("onnx")
    except ImportError:
        pass
    args = ["export", str(run_all), "--out", str(out), "--json"]
    for f in formats:
        args += ["--format", f]
    assert main(args) == 0
    records = json.loads(capsys.readouterr().out)
    assert all(r["verified"] for r in records) and len(records) == len(formats)
    assert all("13" in r["notes"][-1] for r in records)
    card = read_json(out / "model_card.json")
    assert card["input_spec"].startswith("13 bands, raw values (uint16)") and "[N, H, W, 13]" in card["input_spec"]

    from cnn_studio.data.pipeline import load_images
    from cnn_studio.export.formats import FORMATS
    from cnn_studio.runs.run_folder import load_model

    x = load_images([tiles / "wheat" / "tile_0000.tif", tiles / "barley" / "tile_0000.tif"], 16)
    assert x.shape == (2, 16, 16, 13)
    reference = np.asarray(load_model(run_all / "best.keras").predict_on_batch(x))
    files = {"keras": "model.keras", "savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
    for f in formats:
        got = FORMATS[f].reload(out / files[f])(x)
        np.testing.assert_allclose(got, reference, atol=1e-4, err_msg=f)


def test_a_stopped_multiband_run_resumes_with_its_bands(tiles, tmp_path, tiny_config):
    """Stop after the first epoch, resume: the model keeps its 13-band input, its band choice and the
    statistics of bands.json (nothing is measured again), and finishes its epochs."""
    import keras

    from cnn_studio.core import events as ev
    from cnn_studio.core.cancel import Cancelled, CancelToken
    from cnn_studio.core.paths import RunLayout
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.trainer import resume, train

    split = make_split(scan(tiles), val_fraction=0.25, seed=0)
    config = tiny_config.replace(image_size=16, epochs=3, bands=(2, 3, 4, 8, 9), rgb_bands=(8, 4, 3))
    token = CancelToken()

    def sink(e):
        if isinstance(e, ev.EpochEnded) and e.epoch == 0:
            token.cancel()

    run = tmp_path / "run"
    with pytest.raises(Cancelled):
        train(config, split, run, sink=sink, cancel=token)
    layout = RunLayout(run)
    before = layout.bands.read_bytes()
    assert resume(run).epochs_done == 3
    assert layout.bands.read_bytes() == before
    info = band_io.read_run_bands(run)
    assert info.used == (2, 3, 4, 8, 9) and info.rgb == (8, 4, 3)
    model = keras.saving.load_model(layout.best_model, safe_mode=True)
    assert model.inputs[0].shape[-1] == 13
    assert model.get_layer("band_select").kernel.shape[-1] == 5
