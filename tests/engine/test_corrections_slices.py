"""Corrections on volumes: a decision on one slice (its record key) or on the whole file (its path)."""

from __future__ import annotations

from cnn_studio.data.index import scan
from cnn_studio.labels.corrections import Corrections, apply_corrections
from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset


def test_a_slice_key_corrects_that_slice_and_a_file_path_every_slice(tmp_path):
    ds = make_volume_dataset(tmp_path / "mri", studies_per_class=2, patients=2, seed=0,
                             form=StudyFormat(slices=12, size=16))
    index = scan(ds.root)
    by_study: dict[str, list] = {}
    for r in index.records:
        by_study.setdefault(r.study, []).append(r)
    (a, a_slices), (b, b_slices) = sorted(by_study.items())[:2]
    assert a_slices[0].key != a_slices[0].path  # slices of a volume file
    other = index.class_names[1 - a_slices[0].label]
    c = Corrections()
    c.relabel(a_slices[0].key, index.class_names[a_slices[0].label], other)
    c.exclude(b, index.class_names[b_slices[0].label])  # the whole volume file
    fixed, applied = apply_corrections(index, c)
    labels = {r.key: index.class_names[r.label] for r in fixed.records}
    assert labels[a_slices[0].key] == other
    assert all(labels[r.key] == index.class_names[r.label] for r in a_slices[1:])  # its siblings unchanged
    assert not any(r.study == b for r in fixed.records)
    assert (applied.relabelled, applied.excluded, applied.unmatched) == (1, len(b_slices), 0)
    again, _ = apply_corrections(fixed, c)  # applying twice gives the same index
    assert again.records == fixed.records
