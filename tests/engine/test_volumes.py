"""Volumes and studies at scan time: NIfTI slices, DICOM series, slice selection, grouped splits, slice decoding."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.core.errors import ConfigError
from cnn_studio.data.index import scan
from cnn_studio.data.records import VolumeSlicing, parse_key
from cnn_studio.data.split import leakage_report, make_split
from cnn_studio.data.volumes import CONTENT_FRACTION, select_slices, study_counts
from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset


@pytest.fixture(scope="module")
def nifti(tmp_path_factory):
    return make_volume_dataset(tmp_path_factory.mktemp("nii") / "mri", studies_per_class=6, patients=4, seed=3)


@pytest.fixture(scope="module")
def dicom(tmp_path_factory):
    return make_volume_dataset(tmp_path_factory.mktemp("dcm") / "mri", studies_per_class=4, patients=3, seed=4,
                               form=StudyFormat(slices=16, dicom=True))


def _blank_slices(path, axis=2):
    """Slices of a generated volume whose voxels are all background (no tissue): the generator's first and last two."""
    import nibabel

    data = np.asarray(nibabel.load(path).dataobj, np.float64)
    lo, hi = np.percentile(data, [0.5, 99.5])
    bright = data > lo + 0.1 * (hi - lo)
    frac = bright.mean(axis=tuple(a for a in range(3) if a != axis))
    return data.shape[axis], [i for i, f in enumerate(frac) if f < CONTENT_FRACTION]


def test_nifti_scan_counts_studies_slices_patients_with_content_selection(nifti):
    index = scan(nifti.root)
    counts = study_counts(index)
    assert (counts.studies, counts.patients) == (12, 4)
    assert counts.describe() == f"12 studies, {counts.slices} slices, 4 patients"
    expected = 0
    for s in nifti.studies:
        n, blank = _blank_slices(s.path)
        assert {0, 1, n - 2, n - 1} <= set(blank)  # the tissue-less ends are left out
        kept = sorted(r.slice_index for r in index.records if r.study == s.path)
        assert kept == [i for i in range(n) if i not in blank]
        assert set(s.lesion_slices) <= set(kept)  # the lesion is never in a left-out slice
        expected += len(kept)
    assert counts.slices == expected == len(index.records)
    r = next(r for r in index.records if r.study == nifti.studies[0].path)
    assert r.fmt == "NIfTI" and r.group == nifti.studies[0].patient and (r.width, r.height) == (32, 32)
    assert r.key == f"{r.path}#slice=2:{r.slice_index}" and parse_key(r.key) == (r.path, 2, r.slice_index)
    assert any("left out" in n and "without content" in n for n in index.notes)
    assert index.studies == tuple(dict.fromkeys(s.path for s in sorted(nifti.studies, key=lambda s: (s.label, s.path))))


def test_middle_k_all_and_other_axes(nifti):
    middle = scan(nifti.root, slicing=VolumeSlicing(2, "middle:5"))
    assert study_counts(middle) == type(study_counts(middle))(12, 60, 4)
    assert {r.slice_index for r in middle.records} == {9, 10, 11, 12, 13}  # 24 slices: 9..13 are the middle five
    everything = scan(nifti.root, slicing=VolumeSlicing(2, "all"))
    assert len(everything.records) == 12 * 24 and not everything.notes
    across = scan(nifti.root, slicing=VolumeSlicing(0, "all"))
    assert len(across.records) == 12 * 32 and {(r.width, r.height) for r in across.records} == {(32, 24)}
    with pytest.raises(ConfigError, match="middle:K"):
        scan(nifti.root, slicing=VolumeSlicing(2, "middle"))
    with pytest.raises(ConfigError, match="axis"):
        scan(nifti.root, slicing=VolumeSlicing(3, "all"))


def test_select_slices_rules():
    assert select_slices(24, "middle:4") == [10, 11, 12, 13]
    assert select_slices(3, "middle:8") == [0, 1, 2]
    assert select_slices(4, "all") == [0, 1, 2, 3]
    assert select_slices(4, "content", [0.0, CONTENT_FRACTION, CONTENT_FRACTION - 1e-9, 1.0]) == [1, 3]


def test_decode_volume_slice_matches_nibabel_windowed_over_the_volume(nifti):
    import nibabel

    from cnn_studio.data import medical
    from cnn_studio.data.decode import decode_key

    study = next(s for s in nifti.studies if s.lesion_slices)
    data = np.asarray(nibabel.load(study.path).dataobj, np.float64)
    lo, hi = np.percentile(data, [0.5, 99.5])
    medical.clear_volume_cache()
    for axis, index in ((2, 0), (2, study.lesion_slices[0]), (0, 5), (1, 31)):
        plane = np.rot90(np.take(data, index, axis=axis))
        expected = np.round(np.clip((plane - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
        got = decode_key(f"{study.path}#slice={axis}:{index}")
        assert got.dtype == np.uint8 and got.shape == expected.shape + (3,)
        np.testing.assert_array_equal(got[..., 0], expected)
        np.testing.assert_array_equal(got[..., 0], got[..., 2])
    assert decode_key(f"{study.path}#slice=2:0").max() < 40  # an empty slice stays dark (not stretched)
    assert medical.volume_cache_stats() == {"loads": 1, "hits": 4}  # one decompression for five slices
    with pytest.raises(Exception, match="does not exist"):
        decode_key(f"{study.path}#slice=2:24")


def test_dicom_series_are_studies_grouped_by_patient_id(dicom):
    index = scan(dicom.root)
    counts = study_counts(index)
    assert (counts.studies, counts.patients) == (8, 3)
    assert {r.study for r in index.records} == {s.path for s in dicom.studies}
    for s in dicom.studies:
        recs = [r for r in index.records if r.study == s.path]
        names = sorted(int(r.path[-8:-4]) - 1 for r in recs)  # IM0001.dcm is slice 0
        assert names == list(range(names[0], names[-1] + 1)) and names[0] >= 2 and names[-1] <= 13  # ends left out
        assert set(s.lesion_slices) <= set(names)
        assert {r.group for r in recs} == {s.patient} and all(r.slice_index is None for r in recs)
    middle = scan(dicom.root, slicing=VolumeSlicing(2, "middle:4"))
    assert len(middle.records) == 8 * 4
    assert {int(r.path[-8:-4]) - 1 for r in middle.records} == {6, 7, 8, 9}


def test_unrelated_dicom_files_stay_pictures(tmp_path, dicom):
    import shutil

    import pydicom

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i, s in enumerate(dicom.studies[:3]):
            ds = pydicom.dcmread(f"{s.path}/IM0008.dcm")
            ds.SeriesInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[cls, str(i)])
            ds.save_as(tmp_path / cls / f"x{i}.dcm")
    shutil.copy(tmp_path / "a" / "x0.dcm", tmp_path / "a" / "copy.dcm")  # same series twice: a study of 2
    index = scan(tmp_path)
    studies = {r.study for r in index.records}
    assert studies == {None, str(tmp_path / "a")} and study_counts(index).studies == 1


@pytest.mark.parametrize("which", ["nifti", "dicom"])
def test_no_study_or_patient_crosses_splits(which, request):
    ds = request.getfixturevalue(which)
    index = scan(ds.root)
    for seed in range(20):
        split = make_split(index, val_fraction=0.25, test_fraction=0.2 if which == "nifti" else 0.0, seed=seed)
        assert split.source == "grouped" and leakage_report(split) == {}
        for attr in ("study", "group"):
            where: dict = {}
            for part in ("train", "val", "test"):
                for r in split.subset(part):
                    where.setdefault(getattr(r, attr), set()).add(part)
            assert all(len(parts) == 1 for parts in where.values()), (seed, attr)
    leaky = make_split(index, val_fraction=0.25, seed=0, group_by="none")
    assert leakage_report(leaky)  # a per-slice split is reported as leaking


def test_slices_are_not_duplicates_of_each_other(nifti):
    from cnn_studio.data.prepare import prepare

    prepared = prepare(nifti.root)
    assert prepared.usable and prepared.split.source == "grouped"
    assert not [f for f in prepared.findings if f.code in ("duplicate_in_class", "label_conflict", "split_leakage",
                                                           "group_leakage")]


def test_the_generator_places_a_lesion_in_the_smallest_volumes_it_accepts(tmp_path):
    from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset

    for slices in (8, 9, 10):  # an even slice count has no slice at the exact centre
        made = make_volume_dataset(tmp_path / str(slices), studies_per_class=2, patients=2, seed=0,
                                   form=StudyFormat(slices=slices, size=16))
        assert all(s.lesion_slices for s in made.studies if s.label == "lesion")


def test_a_scan_reads_each_dicom_header_once(tmp_path, monkeypatch):
    """probe_dicom and the series grouping's dicom_slice_info share one header read per file."""
    import pydicom

    from cnn_studio.data import medical
    from cnn_studio.data.index import scan
    from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset

    data = make_volume_dataset(tmp_path / "dcm", studies_per_class=1, patients=1, seed=1,
                               form=StudyFormat(slices=8, size=16, dicom=True))
    reads: list[str] = []
    real = pydicom.dcmread

    def counting(path, *args, **kwargs):
        if kwargs.get("stop_before_pixels"):
            reads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    medical._header_of.cache_clear()
    index = scan(data.root)
    files = sorted(str(p) for p in data.root.rglob("*.dcm"))
    assert len(index.studies) == 2 and files
    assert sorted(reads) == files  # every file's header read exactly once
