"""``cnn-studio explain`` and ``cnn-studio robustness`` end to end on a small run folder."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from cnn_studio.backbones import registry
from cnn_studio.core.errors import StudioError

SIZE = 32
CLASSES = ("healthy", "rust")


def cli(argv: list[str]) -> int:
    """Parse with this module's subcommands and run them as ``cnn_studio.cli.main`` does."""
    from cnn_studio.cli import explain

    parser = argparse.ArgumentParser(prog="cnn-studio")
    explain.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except StudioError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}")
        return exc.exit_code


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An (untrained) small_cnn run folder with a split of 8 PNGs, as the trainer writes it."""
    import keras

    from cnn_studio.backbones.classifier import build_classifier
    from cnn_studio.core.fsutil import write_json, write_text
    from cnn_studio.core.paths import RunLayout
    from cnn_studio.data.records import ImageRecord, Split
    from cnn_studio.training.config import TrainConfig

    root = tmp_path_factory.mktemp("run")
    layout = RunLayout(root)
    rng = np.random.default_rng(0)
    records = []
    for i in range(8):
        label = i % 2
        arr = rng.integers(0, 80, (40, 56, 3), dtype=np.uint8)  # not square: overlays keep this shape
        arr[label * 20:label * 20 + 20, :28] = 220
        path = root / f"{CLASSES[label]}_{i}.png"
        Image.fromarray(arr).save(path)
        records.append(ImageRecord(path=str(path), label=label))
    keras.utils.set_random_seed(0)
    build_classifier(registry.get("small_cnn"), 2, image_size=SIZE).save(layout.best_model)
    write_json(layout.config, TrainConfig(backbone="small_cnn", weights="none", image_size=SIZE).to_dict())
    write_text(layout.labels, "\n".join(CLASSES) + "\n")
    write_json(layout.split, Split(class_names=CLASSES, train=tuple(records[:4]), val=tuple(records[4:])).to_dict())
    return root


@pytest.mark.slow
def test_explain_writes_heatmap_png_over_the_original(run_dir, tmp_path, capsys):
    out = tmp_path / "heat.png"
    image = run_dir / "rust_1.png"
    assert cli(["explain", str(run_dir), str(image), "--out", str(out), "--class", "rust",
                "--method", "gradcam++", "--alpha", "0.5"]) == 0
    with Image.open(out) as png:
        assert png.size == (56, 40) and png.mode == "RGB"
        assert not np.array_equal(np.asarray(png), np.asarray(Image.open(image).convert("RGB")))
    text = capsys.readouterr().out
    assert "rust" in text and "backbone/" in text and str(out) in text


@pytest.mark.slow
def test_explain_layer_grid_list_layers_and_architecture(run_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert cli(["explain", str(run_dir), str(run_dir / "healthy_0.png"), "--layer", "backbone/block1_conv",
                "--channels", "4", "--out", str(out)]) == 0
    with Image.open(out) as png:
        assert png.size == (2 * 64 + 2, 2 * 64 + 2)  # 4 maps of 32x32, doubled, 2 per row
    assert cli(["explain", str(run_dir), "--list-layers"]) == 0
    layers = capsys.readouterr().out
    assert "backbone/block1_conv" in layers and "kernel 3x3" in layers
    assert cli(["explain", str(run_dir), "--architecture"]) == 0
    assert "parameters" in capsys.readouterr().out


@pytest.mark.slow
def test_explain_a_keras_file_with_labels_beside_it(run_dir, tmp_path, capsys):
    shutil.copy(run_dir / "best.keras", tmp_path / "model.keras")
    (tmp_path / "labels.txt").write_text("healthy\nrust\n", encoding="utf-8")
    out = tmp_path / "h.png"
    assert cli(["explain", str(tmp_path / "model.keras"), str(run_dir / "healthy_0.png"), "--out", str(out)]) == 0
    assert out.is_file()
    assert cli(["explain", str(tmp_path / "model.keras"), str(run_dir / "healthy_0.png"), "--out", str(out),
                "--class", "blight"]) == 2
    assert "healthy, rust" in capsys.readouterr().out
    assert cli(["explain", str(tmp_path / "model.keras")]) == 2  # no image: says how to call it


@pytest.mark.slow
def test_robustness_json(run_dir, capsys):
    assert cli(["robustness", str(run_dir), "--json", "--max-images", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_images"] == 4 and report["subset"] == "val"
    assert {r["perturbation"] for r in report["rows"]} == {"gaussian_noise", "brightness", "contrast", "blur",
                                                            "jpeg", "fgsm"}
    assert json.loads((run_dir / "robustness.json").read_text())["rows"] == report["rows"]
    assert (run_dir / report["plot"]).is_file()
