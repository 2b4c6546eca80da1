"""data.split.make_split: stratified, seeded, grouped (no leakage), preset; clear errors."""

from __future__ import annotations

from collections import Counter

import pytest

from cnn_studio.core.errors import ConfigError, DatasetError
from cnn_studio.data.records import DatasetIndex, ImageRecord, Split
from cnn_studio.data.split import counts_per_split, leakage_report, make_split


def _index(counts: dict[str, int], groups: dict[str, list[str]] | None = None, preset=None) -> DatasetIndex:
    names = tuple(sorted(counts))
    recs = []
    for label, name in enumerate(names):
        for i in range(counts[name]):
            g = groups[name][i] if groups else None
            p = preset(name, i) if preset else None
            recs.append(ImageRecord(path=f"/d/{name}/{i:03d}.png", label=label, group=g, preset_split=p))
    return DatasetIndex(root="/d", layout="split_folders" if preset else "class_folders", class_names=names,
                        records=tuple(recs))


def _paths(split: Split, name: str) -> set[str]:
    return {r.path for r in split.subset(name)}


def test_stratified_counts_and_reproducible():
    index = _index({"a": 50, "b": 10})
    split = make_split(index, val_fraction=0.2, test_fraction=0.1, seed=7)
    assert split.source == "random" and split.group_by is None
    assert counts_per_split(split) == {"train": {"a": 35, "b": 7}, "val": {"a": 10, "b": 2},
                                       "test": {"a": 5, "b": 1}}
    assert split.info["counts"] == counts_per_split(split)
    all_paths = _paths(split, "train") | _paths(split, "val") | _paths(split, "test")
    assert len(all_paths) == 60  # a partition: nothing lost, nothing twice
    again = make_split(index, val_fraction=0.2, test_fraction=0.1, seed=7)
    assert again == split
    other = make_split(index, val_fraction=0.2, test_fraction=0.1, seed=8)
    assert _paths(other, "val") != _paths(split, "val")
    assert Split.from_dict(split.to_dict()) == split


def test_small_class_gets_one_val_and_too_small_is_explained():
    split = make_split(_index({"a": 2, "b": 20}))
    assert counts_per_split(split)["val"] == {"a": 1, "b": 4}
    with pytest.raises(DatasetError, match="'a' has 1 image; a split needs at least 2") as info:
        make_split(_index({"a": 1, "b": 20}))
    assert "val_fraction" in info.value.hint
    with pytest.raises(DatasetError, match="at least 3"):
        make_split(_index({"a": 2, "b": 20}), test_fraction=0.1)


def test_bad_fractions():
    with pytest.raises(ConfigError, match="Expected"):
        make_split(_index({"a": 5, "b": 5}), val_fraction=0.0)
    with pytest.raises(ConfigError):
        make_split(_index({"a": 5, "b": 5}), val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError):
        make_split(_index({"a": 5, "b": 5}), group_by="patient")


def test_patient_grouped_csv_has_no_leakage_and_is_stratified(tmp_path):
    # 40 patients, 3 images each; patients 0-29 are 'normal', 30-39 'tumour'
    from PIL import Image

    from cnn_studio.data.index import scan

    lines = ["path,label,group"]
    for p in range(40):
        label = "normal" if p < 30 else "tumour"
        for k in range(3):
            name = f"p{p:02d}_{k}.png"
            Image.new("L", (4, 4), (p * 3 + k) % 256).save(tmp_path / name)
            lines.append(f"{name},{label},patient{p:02d}")
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    index = scan(tmp_path / "manifest.csv")

    split = make_split(index, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert split.source == "grouped" and split.group_by == "group"
    assert leakage_report(split) == {}
    groups_of = {s: {r.group for r in split.subset(s)} for s in ("train", "val", "test")}
    assert not (groups_of["train"] & groups_of["val"]) and not (groups_of["val"] & groups_of["test"])
    assert not (groups_of["train"] & groups_of["test"])
    counts = counts_per_split(split)
    assert counts["val"] == {"normal": 18, "tumour": 6}  # 20 % of 90 and 30 images, whole patients
    assert counts["test"] == {"normal": 9, "tumour": 3}
    assert sum(map(sum, (c.values() for c in counts.values()))) == 120
    assert split.info["groups"] == {"train": 28, "val": 8, "test": 4}

    random_split = make_split(index, group_by="none", seed=3)
    assert random_split.source == "random" and leakage_report(random_split)  # would leak patients


def test_grouped_class_with_one_patient_is_explained():
    index = _index({"a": 6, "b": 6}, groups={"a": ["p1"] * 6, "b": [f"q{i}" for i in range(6)]})
    with pytest.raises(DatasetError, match="'a'.*too few groups") as info:
        make_split(index)
    assert "patients" in info.value.hint


def test_preset_split_used_and_val_carved_when_missing():
    preset = make_split(_index({"a": 6, "b": 6}, preset=lambda n, i: ("train", "train", "train", "val", "test",
                                                                           "test")[i]))
    assert preset.source == "preset"
    assert counts_per_split(preset) == {"train": {"a": 3, "b": 3}, "val": {"a": 1, "b": 1},
                                        "test": {"a": 2, "b": 2}}
    no_val = make_split(_index({"a": 10, "b": 10}, preset=lambda n, i: "test" if i < 2 else "train"))
    assert no_val.source == "preset"
    c = counts_per_split(no_val)
    assert c["test"] == {"a": 2, "b": 2} and c["val"]["a"] >= 1 and c["train"]["a"] >= 1
    with pytest.raises(DatasetError, match="no images in the val part"):
        make_split(_index({"a": 3, "b": 3}, preset=lambda n, i: "val" if n == "a" and i == 0 else "train"))


def test_leakage_report_finds_shared_groups():
    recs = (ImageRecord("/x/1.png", 0, group="P1"), ImageRecord("/x/2.png", 0, group="P1"),
            ImageRecord("/x/3.png", 1, group="P2"))
    split = Split(class_names=("a", "b"), train=recs[:1] + recs[2:], val=recs[1:2])
    assert leakage_report(split) == {"P1": ["train", "val"]}
    assert Counter(r.label for r in split.train) == {0: 1, 1: 1}
