"""Fine-tuning depth in the user's words: blocks or conv layers, the plan (layers, weights), the trainer's
unfreeze step, the config's backward compatibility, the CLI options, and the precomputed tables."""

from __future__ import annotations

import argparse
import re

import pytest

from cnn_studio.backbones import fine_tune, registry
from cnn_studio.backbones.fine_tune import Depth, parse_depth, table_plan
from cnn_studio.cli import train as cli_train
from cnn_studio.core.errors import ConfigError
from cnn_studio.training.config import TrainConfig

VGG_BLOCK5 = 3 * (512 * 512 * 9 + 512)  # 7,079,424
VGG_BLOCK4 = (256 * 512 * 9 + 512) + 2 * (512 * 512 * 9 + 512)  # 5,899,776
VGG_TOTAL = 14_714_688


def test_depths_are_read_in_plain_words():
    assert parse_depth("2 blocks") == Depth("blocks", 2)
    assert parse_depth("1 Block") == Depth("blocks", 1)
    assert parse_depth("6 conv") == parse_depth("6 convs") == parse_depth("6 conv layers") == Depth("conv", 6)
    assert parse_depth(" all ") == Depth("all")
    assert parse_depth("none") == parse_depth("0") == Depth("conv", 0)
    assert parse_depth("block5") == Depth("from_block", block="block5")
    assert parse_depth("20 layers") == Depth("layers", 20)
    assert str(parse_depth("2 blocks")) == "2 blocks" and str(parse_depth("1 blocks")) == "1 block"
    with pytest.raises(ConfigError, match="N blocks"):
        parse_depth("the top half")


def test_vgg16_plan_from_the_table_counts_conv_layers_and_weights():
    plan = table_plan(registry.get("vgg16"), "6 conv")
    assert plan.layers == ("block4_conv1", "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2",
                           "block5_conv3")
    assert plan.trainable_params == VGG_BLOCK4 + VGG_BLOCK5 and plan.total_params == VGG_TOTAL
    assert table_plan(registry.get("vgg16"), "1 block").trainable_params == VGG_BLOCK5
    assert table_plan(registry.get("vgg16"), "block5") == table_plan(registry.get("vgg16"), "1 block").__class__(
        "block5", ("block5_conv1", "block5_conv2", "block5_conv3"), ("block5",), 3, VGG_BLOCK5, VGG_TOTAL)
    assert table_plan(registry.get("vgg16"), "2 blocks").trainable_params == VGG_BLOCK4 + VGG_BLOCK5
    assert table_plan(registry.get("vgg16"), "none").layers == ()
    assert table_plan(registry.get("vgg16"), "all").trainable_params == VGG_TOTAL
    assert table_plan(registry.get("vgg16"), "6 conv").summary() == "retrains 6 conv layers (block4, block5), 12.98 M of 14.71 M weights"
    with pytest.raises(ConfigError, match="block1, block2"):
        table_plan(registry.get("vgg16"), "block9")


def test_blocks_follow_each_family():
    assert fine_tune.block_names(registry.get("vgg16")) == ("block1", "block2", "block3", "block4", "block5")
    assert fine_tune.block_names(registry.get("resnet50")) == ("conv1", "conv2", "conv3", "conv4", "conv5")
    assert fine_tune.block_names(registry.get("densenet121")) == ("conv1", "conv2", "conv3", "conv4", "conv5")
    assert fine_tune.block_names(registry.get("mobilenet_v2"))[-2:] == ("block_15", "block_16")
    assert fine_tune.block_names(registry.get("efficientnet_b0")) == ("stem", *(f"block{i}" for i in range(1, 8)))
    assert fine_tune.block_names(registry.get("convnext_tiny")) == ("stem", "stage_0", "stage_1", "stage_2", "stage_3")
    assert fine_tune.block_names(registry.get("inception_v3"))[-1] == "mixed10"
    assert fine_tune.block_names(registry.get("xception"))[-1] == "block14"
    # the unnamed top conv belongs to the block below it; BatchNorm never trains
    resnet = table_plan(registry.get("resnet50"), "1 block")
    assert all(name.startswith("conv5_") for name in resnet.layers) and not any("_bn" in n for n in resnet.layers)
    assert "Conv_1" in table_plan(registry.get("mobilenet_v2"), "1 block").layers
    assert "top_conv" in table_plan(registry.get("efficientnet_b0"), "1 block").layers


def test_config_reads_old_files_with_the_old_meaning_and_new_ones_with_depth():
    old = TrainConfig.from_dict({"backbone": "vgg16", "fine_tune_layers": 20})
    assert old.fine_tune_depth is None and old.effective_fine_tune_depth == "20 layers"
    new = TrainConfig(backbone="vgg16", fine_tune_depth="2 blocks").validate()
    assert TrainConfig.from_dict(new.to_dict()) == new and new.effective_fine_tune_depth == "2 blocks"
    with pytest.raises(ConfigError, match="Fine-tune depth"):
        TrainConfig(fine_tune_depth="lots").validate()
    assert TrainConfig(reduce_lr_patience=3).lr_schedule == "plateau" and TrainConfig().lr_schedule == "constant"


def _train_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_train.register(parser.add_subparsers())
    return parser.parse_args(["train", "DATA", "--out", "RUN", *argv])


def test_cli_options_fine_tune_depth_dropout_and_schedule():
    c = cli_train.config_from_args(_train_args("--fine-tune-depth", "2 blocks", "--dropout", "0.4",
                                               "--lr-schedule", "plateau"), "vgg16", "imagenet")
    assert (c.fine_tune_depth, c.dropout, c.reduce_lr_patience, c.lr_schedule) == ("2 blocks", 0.4, 2, "plateau")
    c = cli_train.config_from_args(_train_args("--reduce-lr-patience", "4"), "vgg16", "imagenet")
    assert (c.reduce_lr_patience, c.fine_tune_depth) == (4, fine_tune.DEFAULT_DEPTH)
    c = cli_train.config_from_args(_train_args("--fine-tune-layers", "20"), "vgg16", "imagenet")
    assert c.fine_tune_depth == "20 conv", "--fine-tune-layers now counts conv layers only"
    with pytest.raises(ConfigError, match="not both"):
        cli_train.config_from_args(_train_args("--fine-tune-layers", "2", "--fine-tune-depth", "all"), "vgg16", "none")
    with pytest.raises(ConfigError, match="contradict"):
        cli_train.config_from_args(_train_args("--lr-schedule", "constant", "--reduce-lr-patience", "3"),
                                   "vgg16", "none")


def test_cli_show_fine_tune_lists_layers_and_weights(capsys):
    assert cli_train.run_train(_train_args("--backbone", "vgg16", "--fine-tune-depth", "block5",
                                           "--show-fine-tune")) == 0
    out = capsys.readouterr().out
    assert "retrains 3 conv layers (block5), 7.08 M of 14.71 M weights" in out and "block5_conv3" in out


@pytest.mark.slow
def test_unfreeze_depth_unfreezes_exactly_the_intended_vgg16_conv_layers():
    """The issue's bug: the old count of 20 layers (BatchNorm and all) unfroze all 14.7 M weights of VGG16."""
    from cnn_studio.backbones.classifier import (
        backbone_of,
        build_classifier,
        fine_tune_plan,
        freeze_backbone,
        unfreeze_depth,
        unfreeze_top,
    )

    model = build_classifier(registry.get("vgg16"), 3, image_size=32)
    base = backbone_of(model)

    def trained():
        return ([layer.name for layer in base.layers if layer.trainable_weights],
                sum(_n(w) for w in base.trainable_weights))

    freeze_backbone(model)
    plan = unfreeze_depth(model, "6 conv")
    names, params = trained()
    assert names == list(plan.layers) == [f"block{b}_conv{i}" for b in (4, 5) for i in (1, 2, 3)]
    assert params == plan.trainable_params == VGG_BLOCK4 + VGG_BLOCK5
    plan = unfreeze_depth(model, "1 block")
    assert trained() == (["block5_conv1", "block5_conv2", "block5_conv3"], VGG_BLOCK5)
    assert fine_tune_plan(registry.get("vgg16"), 32, "1 block") == plan == table_plan(registry.get("vgg16"), "1 block")
    unfreeze_top(model, 20)  # the old setting: everything
    assert trained()[1] == VGG_TOTAL
    assert unfreeze_depth(model, "20 layers").trainable_params == VGG_TOTAL, "old configs keep their meaning"


def _n(w) -> int:
    n = 1
    for d in w.shape:
        n *= int(d)
    return n


@pytest.mark.slow
def test_unfreeze_depth_keeps_batchnorm_frozen_in_resnet50():
    import keras

    from cnn_studio.backbones.classifier import backbone_of, build_classifier, unfreeze_depth

    model = build_classifier(registry.get("resnet50"), 2, image_size=32)
    plan = unfreeze_depth(model, "1 block")
    base = backbone_of(model)
    trainable = [layer for layer in base.layers if layer.trainable_weights]
    assert [layer.name for layer in trainable] == list(plan.layers)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    assert {layer.name.split("_")[0] for layer in trainable} == {"conv5"}
    assert sum(_n(w) for w in base.trainable_weights) == plan.trainable_params


_AUTO_NAME = re.compile(r"^(conv2d|batch_normalization|layer_normalization|normalization|rescaling)(_\d+)?$")


def _named(rows):
    """Automatic Keras names (conv2d_N in InceptionV3/Xception, EfficientNet's normalization_N) depend on what
    was built before in the process: compared as '*'."""
    return [("*" if _AUTO_NAME.match(r[0]) else r[0], *r[1:]) for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("key", registry.keys())
def test_precomputed_tables_match_the_real_models(key):
    """layer_tables.TABLES (what the Model step shows) measured again from the Keras model."""
    from cnn_studio.backbones.classifier import measure_layer_tables

    total, rows = measure_layer_tables((key,))[key]
    want_total, want_rows = fine_tune.TABLES[key]
    assert total == want_total and _named(rows) == _named(want_rows)


def test_layer_tables_file_is_exactly_what_the_tool_writes():
    """resources/layer_tables.json is generated data: rendering its own tables gives the file back byte for
    byte (a hand edit in another format fails), it carries the generator's note, and it covers every
    backbone of the registry (the slow test above checks each table against the real model)."""
    from cnn_studio.backbones import layer_tables

    text = layer_tables.file_text()
    assert layer_tables.render(layer_tables.parse(text)) == text
    assert layer_tables.GENERATED_NOTE in text and "tools/make_layer_tables.py" in text
    assert set(layer_tables.tables()) == set(registry.keys())
