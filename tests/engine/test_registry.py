"""The backbone registry and the ``cnn-studio backbones`` listing (no TensorFlow needed for either)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnn_studio.backbones import registry
from cnn_studio.backbones.preprocessing import MODES
from cnn_studio.core.errors import ConfigError

EXPECTED_KEYS = {
    "vgg16", "vgg19", "inception_v3", "resnet50", "resnet50_v2", "mobilenet_v2", "mobilenet_v3_small",
    "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_v2_b0", "densenet121", "xception", "convnext_tiny", "small_cnn",
}


def test_registry_holds_exactly_the_documented_backbones():
    assert set(registry.keys()) == EXPECTED_KEYS
    assert len(registry.keys()) == len(EXPECTED_KEYS), "no duplicate keys"
    assert [s.key for s in registry.all_specs()] == list(registry.keys())


@pytest.mark.parametrize("spec", registry.all_specs(), ids=lambda s: s.key)
def test_every_spec_is_complete_and_consistent(spec):
    module, _, attr = spec.constructor.partition(":")
    assert module and attr, spec.constructor
    assert spec.preprocess in MODES
    assert spec.speed in ("fast", "medium", "slow")
    assert 16 <= spec.min_size <= spec.input_size
    assert spec.feature_width > 0 and spec.params_millions > 0
    assert spec.when_to_pick and "\n" not in spec.when_to_pick and spec.when_to_pick.endswith(".")
    if spec.key == "small_cnn":
        assert spec.weights_file_notop is None and not spec.has_pretrained_weights
    else:
        assert spec.weights_file_notop.endswith(".h5") and "notop" in spec.weights_file_notop.replace("_", "")
    with pytest.raises(AttributeError):
        spec.key = "changed"  # frozen


@pytest.mark.parametrize("alias,key", [
    ("VGG16", "vgg16"), ("vgg19", "vgg19"), ("InceptionV3", "inception_v3"), ("MobileNetV2", "mobilenet_v2"),
    ("mobilenet-v2", "mobilenet_v2"), ("MobileNetV3 Small", "mobilenet_v3_small"), ("ResNet50V2", "resnet50_v2"),
    ("EfficientNetB0", "efficientnet_b0"), ("EfficientNetV2B0", "efficientnet_v2_b0"), ("DenseNet121", "densenet121"),
    (" ConvNeXt Tiny ", "convnext_tiny"), ("Xception", "xception"), ("SMALL_CNN", "small_cnn"),
])
def test_get_accepts_case_insensitive_names_and_aliases(alias, key):
    assert registry.get(alias).key == key


def test_get_turns_a_key_into_the_backbone_once():
    """Issue 20: one object per backbone; ``get`` is for keys (CLI options, config.json), not for a Backbone."""
    vgg = registry.get("vgg16")
    assert isinstance(vgg, registry.Backbone) and registry.get("VGG-16") is vgg
    with pytest.raises(TypeError, match="itself"):
        registry.get(vgg)
    assert vgg.weights_choices() == ("imagenet", "none", "file") and vgg.default_weights == "imagenet"
    small = registry.get("small_cnn")
    assert small.weights_choices()[0] == small.default_weights == "none"


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        registry.get("nope")
    err = info.value
    assert "'nope'" in err.message
    for key in EXPECTED_KEYS:
        assert key in err.message
    assert "cnn-studio backbones" in err.hint


def test_mobilenet_v2_weights_file_follows_the_image_size():
    spec = registry.get("mobilenet_v2")
    assert spec.weights_file_for(160).endswith("_1.0_160_no_top.h5")
    assert spec.weights_file_for(100) == spec.weights_file_notop  # Keras falls back to the 224 file
    assert registry.get("vgg16").weights_file_for(64) == "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def run_backbones_cli(argv: list[str]) -> int:
    """Parse and run ``cnn-studio backbones`` through its own module (other subcommands are not needed)."""
    import argparse

    from cnn_studio.cli import backbones

    parser = argparse.ArgumentParser(prog="cnn-studio")
    backbones.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_json_lists_every_backbone_with_its_weights_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / registry.get("densenet121").weights_file_notop).write_bytes(b"\x89HDF\r\n")
    assert run_backbones_cli(["backbones", "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == EXPECTED_KEYS
    assert rows["densenet121"]["weights"] == "cached"
    assert rows["vgg16"]["weights"] == "not cached"
    assert rows["small_cnn"]["weights"] == "n/a"
    assert rows["inception_v3"]["input_size"] == 299 and rows["vgg16"]["params_millions"] == 14.7


def test_cli_table_shows_every_key_and_when_to_pick(capsys):
    assert run_backbones_cli(["backbones"]) == 0
    out = capsys.readouterr().out
    for spec in registry.all_specs():
        assert spec.key in out and spec.when_to_pick in out


def test_listing_and_checking_weights_never_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "import argparse\n"
        "from cnn_studio.cli import backbones\n"
        "from cnn_studio.backbones.registry import get\n"
        "from cnn_studio.backbones.weights import weights_status\n"
        "import cnn_studio.backbones.classifier\n"
        "parser = argparse.ArgumentParser()\n"
        "backbones.register(parser.add_subparsers())\n"
        "args = parser.parse_args(['backbones', '--json'])\n"
        "assert args.run(args) == 0\n"
        "assert not weights_status(get('vgg16')).available\n"
        "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    env = {"KERAS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
