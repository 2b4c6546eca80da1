"""With the real ImageNet VGG16/Xception no-top weights (built offline by
``tools/offline_imagenet_weights.py``): importing them, and a VGG16 run that learns.

The files' folder is ``$CNN_STUDIO_TEST_WEIGHTS`` (default ``~/.cache/cnn-studio-test-weights``,
the tool's default). Without them every test here is skipped and says how to make them.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from cnn_studio.backbones import registry, weights_store

WEIGHTS_DIR = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser()
VGG16 = WEIGHTS_DIR / "vgg16_imagenet_notop.weights.h5"
XCEPTION = WEIGHTS_DIR / "xception_imagenet_notop.weights.h5"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path.name} not found in {WEIGHTS_DIR} (set CNN_STUDIO_TEST_WEIGHTS, or run "
                    "`python3 tools/offline_imagenet_weights.py` once: about a minute, 150 MB)")
    return path


pytestmark = [pytest.mark.pretrained, pytest.mark.slow]


@pytest.fixture
def app_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "app"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "app"


@pytest.mark.parametrize("name,key", [("vgg16", "vgg16"), ("xception", "xception")])
def test_import_recognises_the_backbone_and_checks_by_loading(name, key, app_home):
    src = _need({"vgg16": VGG16, "xception": XCEPTION}[name])
    stat = src.stat()
    assert weights_store.recognise_backbone(src) == key
    assert weights_store.keras_original_of(src) is None, "converted files are not Keras' published download"
    entry = weights_store.import_weights(src)  # no --backbone: recognised from the arrays
    assert (entry.backbone, entry.origin) == (key, weights_store.ORIGIN_CHECKED)
    assert "checked" in entry.label
    assert src.stat().st_mtime_ns == stat.st_mtime_ns and src.stat().st_size == stat.st_size, "the user's file is untouched"
    status = weights_store.offline_status(registry.get(key))
    assert status.available and status.source == "store"


def test_import_refuses_a_file_for_another_backbone(app_home):
    from cnn_studio.core.errors import WeightsUnavailable

    with pytest.raises(WeightsUnavailable, match="does not fit VGG19"):
        weights_store.import_weights(_need(VGG16), registry.get("vgg19"))
    assert weights_store.stored(registry.get("vgg19")) is None


def test_renamed_to_the_keras_cache_name_still_loads(app_home, tmp_path):
    """A .weights.h5 copied into Keras' cache under the .h5 name: loaded by its layout, and not deleted."""
    from cnn_studio.backbones.classifier import build_backbone
    from cnn_studio.backbones.registry import get

    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    target = cache / get("vgg16").weights_file_notop
    target.write_bytes(_need(VGG16).read_bytes())
    assert not weights_store.offline_status(registry.get("vgg16")).available, "it would not load under Keras' own loader"
    base = build_backbone(registry.get("vgg16"), 32, "imagenet")
    assert target.exists(), "never deleted"
    import h5py

    with h5py.File(VGG16) as f:
        first = np.asarray(f["layers"]["conv2d"]["vars"]["0"])
    assert np.array_equal(base.get_layer("block1_conv1").kernel.numpy(), first)


def _shapes_folder(root: Path, per_class: int, size: int = 48) -> Path:
    """Three classes of 'real-looking' pictures: discs, stripes and checkerboards in random colours."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(7)
    for label, name in enumerate(("disc", "stripes", "checks")):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            bg = tuple(int(v) for v in rng.integers(0, 256, 3))
            fg = tuple(int(v) for v in rng.integers(0, 256, 3))
            img = Image.new("RGB", (size, size), bg)
            draw = ImageDraw.Draw(img)
            step = int(rng.integers(4, 9))
            if label == 0:
                r = int(rng.integers(size // 5, size // 3))
                cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
            elif label == 1:
                for y in range(0, size, 2 * step):
                    draw.rectangle((0, y, size, y + step - 1), fill=fg)
            else:
                for y in range(0, size, step):
                    for x in range(0, size, step):
                        if (x // step + y // step) % 2:
                            draw.rectangle((x, y, x + step - 1, y + step - 1), fill=fg)
            noise = rng.integers(-20, 21, (size, size, 3))
            arr = np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{name}_{i:02d}.png")
    return root


def test_vgg16_with_imported_imagenet_weights_trains(app_home, tmp_path, capsys):
    """The user's path: import the file, then `cnn-studio train --backbone vgg16` (weights default: imagenet)."""
    from cnn_studio.cli import main

    assert main(["weights", "import", str(_need(VGG16))]) == 0
    data = _shapes_folder(tmp_path / "data", per_class=20)
    out = tmp_path / "run"
    code = main(["train", str(data), "--backbone", "vgg16", "--image-size", "48", "--epochs", "8",
                 "--batch-size", "16", "--learning-rate", "3e-3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    best = max(float(r["val_accuracy"]) for r in rows)
    assert {r.get("phase", "head") for r in rows} <= {"head", "fine_tune"}, "pretrained: head phase first"
    print(f"VGG16 best val accuracy {best:.2f} over {len(rows)} epochs")
    assert best >= 0.8, f"ImageNet VGG16 features should separate discs/stripes/checks; best val accuracy {best}"
