"""The label check earns its say: images stay tied to their records, a checker at chance accuses no one and
says why, epochs < 1 is refused, the weights choice is read by the one parser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnn_studio.cli import main
from cnn_studio.core.errors import ConfigError
from cnn_studio.labels.checker import choose_checker, default_checker, judge_checker
from cnn_studio.labels.issues import LabelCheckSettings, find_label_issues


def _stripe(i: int, side: int = 32) -> np.ndarray:
    """A dark square with a bright stripe at columns 2i, 2i+1: the picture says its own index."""
    arr = np.zeros((side, side), np.float64)
    arr[:, 2 * i:2 * i + 2] = 1.0
    return arr


def test_images_are_paired_with_their_own_records_whatever_reader_they_need(tmp_path):
    """8-bit PNGs (TensorFlow's decoder) among 16-bit TIFFs and 16-bit PNGs (the Python readers): every
    image the finder reads is the picture of the record it is paired with (it used to pair by position
    while the pipeline put every Python-read image last: correct labels were accused)."""
    import tifffile

    from cnn_studio.core.events import null_sink
    from cnn_studio.data.index import scan
    from cnn_studio.labels.out_of_fold import load_images

    root = tmp_path / "data"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
    for i in range(14):
        p = root / ("a", "b")[i % 2] / f"img_{i:02d}"
        pic = _stripe(i)
        if i % 3 == 1:
            tifffile.imwrite(p.with_suffix(".tif"), (pic * 3000 + 500).astype(np.uint16))
        elif i % 3 == 2:
            Image.fromarray((pic * 40000 + 100).astype(np.uint16)).save(p.with_suffix(".png"))
        else:
            Image.fromarray((pic * 255).astype(np.uint8)).convert("RGB").save(p.with_suffix(".png"))
    records = list(scan(root).records)
    images, kept = load_images(records, 32, "stretch", 5, sink=null_sink, cancel=None)
    assert len(kept) == len(records) == 14
    for img, rec in zip(images, kept, strict=True):
        shown = int(np.argmax(img[..., 0].mean(0))) // 2
        assert f"img_{shown:02d}" in rec.path, f"{rec.path} paired with the picture of img_{shown:02d}"


def test_judge_checker_by_hand():
    labels = np.array([0] * 40 + [1] * 40 + [2] * 40)
    right = np.eye(3)[labels] * 0.8 + 0.2 / 3
    good = judge_checker(labels, right, ["a", "b", "c"], features=True)
    assert good["verdict"] == "better" and good["trusted"] and good["accuracy"] == 1.0
    assert "better than guessing (33% with 3 classes)" in good["message"] and good["hint"] == ""
    rng = np.random.default_rng(0)
    noise = rng.dirichlet(np.ones(3), size=120)
    noise[:, 0] += 1  # always answers "a": 33% = chance
    bad = judge_checker(labels, noise, ["a", "b", "c"], features=False)
    assert bad["verdict"] == "not_better" and not bad["trusted"]
    assert "not better than guessing" in bad["message"] and "no image is listed as wrong" in bad["message"]
    assert "33.3%" in bad["message"] and "95% interval" in bad["message"]
    assert "pretrained backbone" in bad["hint"]
    few = judge_checker(np.array([0, 0, 1, 1]), np.eye(2)[[0, 0, 1, 0]], ["a", "b"], features=True)
    assert few["verdict"] == "unproven" and not few["trusted"] and "more images per class" in few["hint"]


@pytest.mark.slow
def test_a_checker_at_chance_accuses_no_one_and_says_why(tmp_path, capsys):
    """Random noise with random labels: nothing to learn. The finder says it is not better than guessing,
    lists no image as wrong (it used to list about half), and says what would help; so does the CLI."""
    rng = np.random.default_rng(0)
    root = tmp_path / "noise"
    for c in ("x", "y", "z"):
        (root / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / c / f"{c}_{i}.png")
    issues = find_label_issues(root, backbone="small_cnn", image_size=32, folds=3, epochs=3, corrections=None)
    assert not issues.trusted and issues.check["verdict"] != "better"
    assert issues.suspects == () and issues.withheld > 0
    assert "no image is listed as wrong" in issues.check["message"]
    assert "What would help" in issues.check["hint"]
    d = issues.to_dict()
    assert d["suspects"] == [] and d["check"]["trusted"] is False and d["suspects_withheld"] == issues.withheld
    assert main(["label-issues", str(root), "--backbone", "small_cnn", "--image-size", "32", "--folds", "3",
                 "--epochs", "3", "--corrections", "none"]) == 0
    out = capsys.readouterr().out
    assert "guessing" in out and "What would help" in out and "suspected label issue" not in out


def test_epochs_below_one_are_refused_before_anything_is_read(tmp_path, capsys):
    with pytest.raises(ConfigError, match="Epochs per fold: expected at least 1, received 0"):
        find_label_issues(tmp_path / "does-not-matter", backbone="small_cnn", epochs=0)
    assert main(["label-issues", str(tmp_path), "--epochs", "0"]) == 2
    assert "expected at least 1, received 0" in capsys.readouterr().err


def test_settings_come_whole_or_field_by_field_and_a_keyword_overrides_its_field(tmp_path):
    settings = LabelCheckSettings(backbone="small_cnn", weights="none", epochs=0)
    with pytest.raises(ConfigError, match="received 0"):
        find_label_issues(tmp_path / "does-not-matter", settings)
    with pytest.raises(ConfigError, match="Folds: expected at least 2, received 1"):
        find_label_issues(tmp_path / "does-not-matter", settings, epochs=1, folds=1)  # epochs=0 overridden
    with pytest.raises(TypeError):
        find_label_issues(tmp_path / "does-not-matter", settings, fold=3)  # not a setting: never ignored
    assert settings.epochs == 0  # the caller's settings are not changed


def test_the_weights_choice_is_read_by_the_one_parser(tmp_path, capsys):
    assert choose_checker("vgg16", "imagenet").features
    f = choose_checker("vgg16", "~/w/vgg16.weights.h5")
    assert f.features and f.weights.kind == "file" and not f.weights.path.startswith("~")
    small = choose_checker("small_cnn", " Random ")  # case and spaces as the parser reads them
    assert not small.features and small.weights.kind == "none"
    assert choose_checker("small_cnn", None).describe().endswith(", trained per fold")
    for words in ("random", "scratch", "none", "NONE"):  # a random VGG16 is no feature extractor
        with pytest.raises(ConfigError, match="cannot judge with VGG16"):
            choose_checker("vgg16", words)
    with pytest.raises(ConfigError, match="cannot judge with VGG16"):
        find_label_issues(tmp_path, backbone="vgg16", weights="random")
    assert main(["label-issues", str(tmp_path), "--backbone", "vgg16", "--weights", "random"]) == 2
    err = capsys.readouterr().err
    assert "cannot judge with VGG16" in err and "--weights imagenet" in err


def test_default_checker_takes_pretrained_features_when_any_load_offline(monkeypatch):
    from cnn_studio.backbones import weights_store
    from cnn_studio.backbones.weights_store import OfflineStatus

    def only(key):
        return lambda spec: OfflineStatus(getattr(spec, "key", spec) == key, "store", None, "")

    monkeypatch.setattr(weights_store, "offline_status", only("vgg16"))
    got = default_checker()
    assert (got.backbone, got.weights.kind, got.features) == ("vgg16", "imagenet", True)
    assert choose_checker(None, None).backbone == "vgg16"
    monkeypatch.setattr(weights_store, "offline_status", only("nothing"))
    assert (default_checker().backbone, default_checker().features) == ("small_cnn", False)


@pytest.mark.slow
def test_cli_json_carries_the_check(tmp_path, capsys):
    from studio_testkit import make_class_image

    root = tmp_path / "data"
    for c, name in enumerate(("p", "q")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            make_class_image(c, 32, seed=i).save(root / name / f"{name}_{i}.png")
    assert main(["label-issues", str(root), "--backbone", "small_cnn", "--image-size", "32", "--folds", "3",
                 "--epochs", "8", "--corrections", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    check = out["check"]
    assert check["verdict"] == "better" and check["trusted"] is True
    assert check["low"] > 0.5 and check["chance"] == 0.5 and "better than guessing" in check["message"]
    assert out["weights"] == "none" and out["checker"].endswith("trained per fold")


@pytest.mark.slow
@pytest.mark.pretrained
def test_a_weights_file_gives_frozen_features_on_mixed_formats(tmp_path):
    """VGG16 from the offline ImageNet weights file (weights=PATH): the feature path, a trusted checker, and
    the wrongly filed images found among PNGs and 16-bit TIFFs."""
    import os
    from pathlib import Path

    import tifffile
    from studio_testkit import make_class_image

    weights = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser() \
        / "vgg16_imagenet_notop.weights.h5"
    if not weights.is_file():
        pytest.skip(f"{weights} not found (see tests/engine/test_pretrained_weights.py)")
    root = tmp_path / "data"
    names = ("a", "b", "c")
    wrong = set()
    for c, name in enumerate(names):
        for i in range(14):
            given = names[(c + 1) % 3] if i == 0 else name
            (root / given).mkdir(parents=True, exist_ok=True)
            img = np.asarray(make_class_image(c, 48, seed=i))
            if i % 2:
                p = root / given / f"{name}_{i}.tif"
                tifffile.imwrite(p, img.astype(np.uint16) * 257, photometric="rgb")
            else:
                p = root / given / f"{name}_{i}.png"
                Image.fromarray(img).save(p)
            if given != name:
                wrong.add(str(p))
    issues = find_label_issues(root, backbone="vgg16", weights=str(weights), image_size=48, folds=4,
                               corrections=None)
    assert issues.method == "features" and issues.weights == str(weights) and issues.trusted
    top = {s.path for s in issues.suspects[:2 * len(wrong)]}
    assert wrong <= top, f"found {len(wrong & top)} of {len(wrong)} in the top {2 * len(wrong)}"
