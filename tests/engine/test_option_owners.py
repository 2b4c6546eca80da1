"""One owner per option list and default (issue 20): the CLI's choices *are* the engine's tuples (the same
objects, not copies), and the label check's defaults are the ones its engine function uses."""

from __future__ import annotations

from cnn_studio.backbones import registry
from cnn_studio.cli import build_parser
from cnn_studio.data.records import CACHE_MODES, RESIZE_POLICIES, SLICE_AXES, VolumeSlicing
from cnn_studio.labels.checker import DEFAULT_FOLD_EPOCHS, DEFAULT_FOLDS, choose_checker
from cnn_studio.labels.issues import LabelCheckSettings
from cnn_studio.training.config import (
    CLASS_WEIGHTS,
    JIT_MODES,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    STUDY_AGGREGATES,
    TrainConfig,
)


def _options(command: str) -> dict:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices[command]._actions}


def test_train_choices_are_the_engine_tuples():
    opts = _options("train")
    owners = {"class_weight": CLASS_WEIGHTS, "jit": JIT_MODES, "precision": PRECISIONS, "slice_axis": SLICE_AXES,
              "optimizer": OPTIMIZERS,
              "lr_schedule": LR_SCHEDULES, "resize": RESIZE_POLICIES, "cache": CACHE_MODES,
              "study_aggregate": STUDY_AGGREGATES}
    for dest, owner in owners.items():
        assert opts[dest].choices is owner, f"--{dest.replace('_', '-')} writes its choices out again"
    d = TrainConfig()
    for dest, field in (("early_stopping", "early_stopping_patience"), ("workers", "workers"),
                        ("slice_axis", "slice_axis"), ("slices", "slices"), ("jit", "jit"),
                        ("precision", "precision")):
        assert opts[dest].default == getattr(d, field)


def test_scan_and_predict_slice_options_are_the_records_owners():
    scan = _options("scan")
    assert scan["slice_axis"].choices is SLICE_AXES and _options("predict")["slice_axis"].choices is SLICE_AXES
    assert (scan["slice_axis"].default, scan["slices"].default) == (VolumeSlicing().axis, VolumeSlicing().slices)
    assert (TrainConfig().slice_axis, TrainConfig().slices) == (VolumeSlicing().axis, VolumeSlicing().slices)


def test_train_config_defaults_are_the_registry_default_backbone_and_its_weights():
    spec = registry.get(registry.DEFAULT_BACKBONE)
    assert (TrainConfig().backbone, TrainConfig().weights) == (spec.key, spec.default_weights)
    assert registry.get(registry.FALLBACK_BACKBONE).default_weights == "none"


def test_label_check_defaults_have_one_owner():
    opts = _options("label-issues")
    engine = LabelCheckSettings()
    assert opts["folds"].default == engine.folds == DEFAULT_FOLDS
    assert opts["epochs"].default == engine.epochs == DEFAULT_FOLD_EPOCHS
    assert choose_checker(None, "imagenet").backbone == registry.DEFAULT_BACKBONE
    assert choose_checker(None, "none").backbone == registry.FALLBACK_BACKBONE
