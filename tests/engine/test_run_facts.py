"""One owner per fact: the weights setting, the image size rule, total epochs, option lists, and the
resolved values a run folder records (and old run folders without them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnn_studio.backbones import registry
from cnn_studio.backbones.weights import parse_weights
from cnn_studio.core.errors import ConfigError
from cnn_studio.core.fsutil import read_json, write_json, write_text
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.records import ImageRecord, Split
from cnn_studio.runs.run_folder import open_run, recorded_config
from cnn_studio.training.config import TrainConfig


@pytest.mark.parametrize("text", [None, "", "none", "None", " scratch ", "SCRATCH", "random"])
def test_every_way_of_saying_from_scratch_is_none(text):
    choice = parse_weights(text)
    assert (choice.kind, choice.value, choice.pretrained) == ("none", "none", False)


def test_imagenet_and_files_are_read_one_way():
    assert parse_weights(" ImageNet ").value == "imagenet" and parse_weights("imagenet").pretrained
    f = parse_weights("~/w/vgg16_notop.h5")
    assert f.kind == "file" and f.value == str(Path.home() / "w" / "vgg16_notop.h5") and f.pretrained


def test_weights_scratch_trains_in_one_scratch_phase():
    """The ``--weights scratch`` bug: the trainer read "scratch" as pretrained and froze a random backbone."""
    from cnn_studio.training.phases import _phases

    cfg = TrainConfig(backbone="small_cnn", weights="scratch", epochs=3, fine_tune_epochs=2)
    assert [(p.name, p.first_epoch, p.end_epoch) for p in _phases(cfg)] == [("scratch", 0, 5)]
    pre = cfg.replace(weights="imagenet")
    assert [(p.name, p.first_epoch, p.end_epoch) for p in _phases(pre)] == [("head", 0, 3), ("fine_tune", 3, 5)]
    assert cfg.total_epochs == 5


def test_image_size_rule_has_one_owner():
    spec = registry.get("inception_v3")
    assert spec.image_size(None) == spec.image_size(0) == spec.input_size
    assert spec.image_size(spec.min_size) == spec.min_size
    with pytest.raises(ConfigError, match=f"at least {spec.min_size}") as info:
        spec.image_size(spec.min_size - 1)
    assert str(spec.input_size) in info.value.hint


def test_option_lists_are_the_owners_objects():
    import cnn_studio.cli.train as cli_train
    import cnn_studio.training.config as config
    from cnn_studio.data import augment, pipeline, records

    assert config.AUGMENTATIONS is augment.AUGMENTATIONS
    assert config.RESIZE_POLICIES is records.RESIZE_POLICIES is pipeline.RESIZE_POLICIES
    assert config.CACHE_MODES is records.CACHE_MODES is pipeline.CACHE_MODES
    assert cli_train.OPTIMIZERS is config.OPTIMIZERS


def test_cli_export_formats_come_from_the_formats_table():
    from cnn_studio.cli.export import FORMAT_CHOICES
    from cnn_studio.export.formats import FORMATS

    assert FORMAT_CHOICES == (*FORMATS, "all")


def test_split_seed_defaults_to_the_seed():
    assert TrainConfig(seed=4).effective_split_seed == 4
    assert TrainConfig(seed=4, split_seed=9).effective_split_seed == 9


def _split(seed=9, val=0.3, test=0.1, group_by=None):
    recs = tuple(ImageRecord(path=f"/d/{c}/{i}.png", label=li) for li, c in enumerate("ab") for i in range(10))
    return Split(class_names=("a", "b"), train=recs[:14], val=recs[14:18], test=recs[18:], seed=seed,
                 val_fraction=val, test_fraction=test, group_by=group_by)


def test_recorded_config_holds_the_resolved_values():
    # the GUI's config keeps TrainConfig's split defaults; its split was made on the Data page
    cfg = TrainConfig(backbone="Small-CNN", weights=" Scratch", image_size=None, seed=1)
    rec = recorded_config(cfg, _split(seed=9, val=0.3, test=0.1))
    assert (rec.backbone, rec.image_size, rec.weights) == ("small_cnn", registry.get("small_cnn").input_size, "none")
    assert (rec.val_fraction, rec.test_fraction, rec.split_seed, rec.seed) == (0.3, 0.1, 9, 1)
    assert rec.group_by == "none" and recorded_config(cfg, _split(group_by="group")).group_by == "group"
    rec.validate()
    assert recorded_config(cfg.replace(image_size=48), _split()).image_size == 48
    with pytest.raises(ConfigError, match="at least 16"):
        recorded_config(cfg.replace(image_size=8), _split())


def _run_folder(root: Path, config: dict, split: Split) -> Path:
    layout = RunLayout(root)
    root.mkdir(parents=True)
    write_json(layout.config, config)
    write_json(layout.split, split.to_dict())
    write_text(layout.labels, "a\nb\n")
    layout.best_model.write_bytes(b"")  # open_run only needs it to exist
    return root


def test_run_info_reads_the_recorded_values(tmp_path):
    rec = recorded_config(TrainConfig(backbone="small_cnn", weights="none", image_size=40, epochs=2,
                                      fine_tune_epochs=1), _split(seed=9))
    info = open_run(_run_folder(tmp_path / "run", rec.to_dict(), _split(seed=9)))
    assert (info.image_size, info.weights.kind, info.split_seed, info.total_epochs) == (40, "none", 9, 3)
    assert read_json(info.layout.config)["split_seed"] == 9


def test_an_old_run_folder_still_opens_with_sensible_values(tmp_path):
    old = TrainConfig(backbone="mobilenet_v2", weights="imagenet", image_size=None).to_dict()
    del old["split_seed"]  # written before the field existed
    info = open_run(_run_folder(tmp_path / "old", old, _split(seed=3)))
    assert info.image_size == registry.get("mobilenet_v2").input_size
    assert info.weights.kind == "imagenet" and info.split_seed == 3 and info.config.split_seed is None


@pytest.mark.slow
def test_a_trained_run_records_what_it_used(image_folder, tiny_config, tmp_path):
    from cnn_studio.core import events as ev
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.predict.predictor import Classifier
    from cnn_studio.training.trainer import train

    split = make_split(scan(image_folder(per_class=8, size=32)), val_fraction=0.25, seed=11)
    events = []
    cfg = tiny_config.replace(weights="scratch", val_fraction=0.2, seed=0)  # the config's split defaults are stale
    result = train(cfg, split, tmp_path / "run", sink=events.append)
    assert [e.name for e in events if isinstance(e, ev.PhaseStarted)] == ["scratch"]
    recorded = read_json(RunLayout(result.run_dir).config)
    assert (recorded["weights"], recorded["image_size"]) == ("none", 32)
    assert (recorded["val_fraction"], recorded["split_seed"], recorded["seed"]) == (0.25, 11, 0)
    info = open_run(result.run_dir)
    assert info.image_size == 32 and info.split_seed == 11
    assert Classifier.load(result.run_dir).image_size == 32
