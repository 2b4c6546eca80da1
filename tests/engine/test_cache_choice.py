"""The ``auto`` cache: the decision on fake machines, and a real run on a simulated small one."""

from __future__ import annotations

import pytest

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.core.errors import ConfigError
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.records import CACHE_MODES, ImageRecord
from cnn_studio.training import cache_choice
from cnn_studio.training.cache_choice import (
    DISK_RESERVE,
    MEMORY_BUDGET_ENV,
    UNKNOWN_MEMORY_CAP,
    CacheWords,
    available_memory,
    choose,
    choose_image_cache,
    decoded_bytes,
    parse_bytes,
    shuffle_buffer,
)
from cnn_studio.training.config import TrainConfig

GB = 10**9


def _records(n: int, bands: int = 0) -> list[ImageRecord]:
    return [ImageRecord(path=f"/data/a/{i}.png", label=0, fmt="PNG", width=64, height=64, mode="RGB", bands=bands)
            for i in range(n)]


def test_auto_is_the_default_everywhere():
    assert CACHE_MODES[0] == "auto" and TrainConfig().cache == "auto"
    TrainConfig().validate()


def test_fits_comfortably_in_memory():
    c = choose(int(1.2 * GB), memory=20 * GB, disk=100 * GB)
    assert c.mode == "memory"
    assert c.reason == "memory: the decoded images take about 1.2 GB of the 20 GB of memory available"


def test_too_big_for_memory_goes_to_disk():
    c = choose(30 * GB, memory=16 * GB, disk=100 * GB, words=CacheWords(disk_place="RUN/cache/images"))
    assert c.mode == "disk"
    assert "30 GB" in c.reason and "16 GB of memory" in c.reason and "RUN/cache/images" in c.reason
    # "comfortably": more than half of the memory available is too much
    assert choose(9 * GB, memory=16 * GB, disk=100 * GB).mode == "disk"
    assert choose(7 * GB, memory=16 * GB, disk=100 * GB).mode == "memory"


def test_no_room_on_disk_either_means_no_cache():
    c = choose(30 * GB, memory=16 * GB, disk=30 * GB + DISK_RESERVE - 1)
    assert c.mode == "none" and "decoded again every epoch" in c.reason
    assert choose(30 * GB, memory=16 * GB, disk=None).mode == "none"


def test_unknown_memory_is_assumed_up_to_a_stated_cap():
    c = choose(UNKNOWN_MEMORY_CAP, memory=None, disk=100 * GB)
    assert c.mode == "memory" and "could not be read" in c.reason
    assert choose(UNKNOWN_MEMORY_CAP + 1, memory=None, disk=100 * GB).mode == "disk"


def test_memory_taken_by_another_cache_counts():
    assert choose(3 * GB, memory=10 * GB, disk=100 * GB).mode == "memory"
    assert choose(3 * GB, memory=10 * GB, disk=100 * GB, reserved=5 * GB).mode == "disk"


def test_decoded_size_pictures_uint8_and_bands_float32():
    assert decoded_bytes(_records(10), 224) == 10 * 224 * 224 * 3
    assert decoded_bytes(_records(10, bands=13), 64) == 10 * 64 * 64 * 13 * 4
    # 200,000 tiles of 13 bands at 224 px: ~522 GB, never "memory" on a 64 GB machine
    many = _records(200, bands=13)
    assert decoded_bytes(many, 224) * 1000 > 500 * GB


def test_budget_variable_simulates_a_smaller_computer(tmp_path):
    assert available_memory({MEMORY_BUDGET_ENV: "2G"}) == (2 * 1024**3, MEMORY_BUDGET_ENV)
    assert parse_bytes("500M") == 500 * 1024**2 and parse_bytes("1234") == 1234
    with pytest.raises(ConfigError):
        parse_bytes("lots")
    records = _records(100)  # 100 × 64² × 3 = 1.2 MB
    small = choose_image_cache("auto", records, 64, tmp_path / "cache", environ={MEMORY_BUDGET_ENV: "1M"})
    assert small.mode == "disk" and MEMORY_BUDGET_ENV in small.reason
    big = choose_image_cache("auto", records, 64, tmp_path / "cache", environ={MEMORY_BUDGET_ENV: "1G"})
    assert big.mode == "memory"
    asked = choose_image_cache("none", records, 64, tmp_path, environ={MEMORY_BUDGET_ENV: "1G"})
    assert (asked.mode, asked.asked) == ("none", "none")


def test_memory_available_is_read_from_the_system():
    value, source = available_memory({})
    assert source in ("MemAvailable", "sysconf", "unknown")
    assert value is None or value > 0


def test_pipeline_refuses_an_unresolved_auto():
    from cnn_studio.data.pipeline import make_dataset

    with pytest.raises(ConfigError, match="auto"):
        make_dataset(_records(2), 16, 2, cache="auto")


def test_shuffle_buffer_is_bounded_without_the_memory_cache():
    records = _records(10_000)  # 64 px: 12 KB each, 123 MB in all
    assert shuffle_buffer("memory", records, 64, memory=10**6) is None  # cached in memory anyway
    assert shuffle_buffer("disk", records, 64, memory=100 * GB) is None  # all fit in an eighth
    assert shuffle_buffer("disk", records, 64, memory=80 * 10**6) == 10**7 // (64 * 64 * 3)
    assert shuffle_buffer("none", records, 64, memory=10) == 256  # never fewer
    assert shuffle_buffer("disk", _records(30_000), 64, memory=None) == 2 * 10**9 // 8 // (64 * 64 * 3)


def test_a_small_shuffle_buffer_still_gives_every_image_in_a_new_order(image_folder, tmp_path):
    from cnn_studio.data.index import scan
    from cnn_studio.data.pipeline import make_dataset

    records = sorted(scan(image_folder(per_class=12, size=16)).records, key=lambda r: r.label)
    ds = make_dataset(records, 16, 4, shuffle=True, seed=3, cache="disk", cache_dir=tmp_path / "c",
                      shuffle_buffer=4)
    epochs = [[int(v) for _, y in ds for v in y.numpy()] for _ in range(2)]
    assert all(sorted(e) == [0] * 12 + [1] * 12 for e in epochs)
    assert epochs[0] != epochs[1] and epochs[0][:12] != [0] * 12  # not the folders' class order


@pytest.mark.slow
def test_small_budget_makes_a_real_run_use_the_disk(image_folder, tiny_config, tmp_path, monkeypatch):
    """Images and features bigger than the simulated memory: both go to disk; the run finishes its epochs."""
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.trainer import train

    split = make_split(scan(image_folder(per_class=12, size=32)), val_fraction=0.25, seed=0)
    weights = tmp_path / "pretrained.weights.h5"  # a weights file gives the run a frozen "head" phase
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "8K")  # the 24 images take 74 KB decoded
    seen = []
    monkeypatch.setattr(cache_choice, "free_disk", lambda folder: (seen.append(folder), 100 * GB)[1])
    events = []
    cfg = tiny_config.replace(cache="auto", weights=str(weights), epochs=2, fine_tune_epochs=1, fine_tune_layers=2)
    result = train(cfg, split, tmp_path / "run", sink=events.append)

    assert result.epochs_done == 3
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == [0, 1, 2]
    layout = RunLayout(result.run_dir)
    config = read_json(layout.config)
    assert config["cache"] == "disk" and config["extra"]["cache_asked"] == "auto"
    assert config["extra"]["cache_reason"].startswith("disk: the decoded images")
    assert config["extra"]["feature_cache_reason"].startswith("disk: the backbone's features")
    assert any((layout.feature_cache / "images").iterdir()), "the decoded images were cached on disk"
    assert not (layout.feature_cache / "features").exists(), "the features are removed after the head phase"
    logs = [e.text for e in events if isinstance(e, ev.LogMessage)]
    assert any(t.startswith("Decoded-image cache (auto): disk") for t in logs), logs
    assert any(t.startswith("Feature cache (") and ": disk" in t for t in logs), logs
    # the frozen layers' activations (disk too) serve the head's pooled features and the fine-tune phase
    assert any(t.startswith("Activation cache (") and ": disk" in t for t in logs), logs
    assert [p.uses_feature_cache for p in events if isinstance(p, ev.PhaseStarted)] == [True, True]
    assert not (layout.feature_cache / "activations").exists(), "the activations are removed after fine-tuning"
    assert seen and all(str(layout.feature_cache) in str(f) for f in seen)
