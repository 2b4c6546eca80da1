"""The plain records (ImageRecord, DatasetIndex, Split) round-trip through JSON."""

from __future__ import annotations

import json

import pytest

from cnn_studio.data.records import DatasetIndex, ImageRecord, Split


def test_records_round_trip():
    recs = tuple(ImageRecord(path=f"/d/{c}/{i}.png", label=li, group=f"p{i}") for li, c in enumerate("ab") for i in range(3))
    idx = DatasetIndex(root="/d", layout="class_folders", class_names=("a", "b"), records=recs)
    assert idx.counts() == {"a": 3, "b": 3}
    assert DatasetIndex.from_dict(json.loads(json.dumps(idx.to_dict()))) == idx
    sp = Split(class_names=("a", "b"), train=recs[:4], val=recs[4:])
    assert Split.from_dict(json.loads(json.dumps(sp.to_dict()))) == sp
    with pytest.raises(KeyError):
        sp.subset("holdout")
