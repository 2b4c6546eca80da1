"""The file-hash cache behind a run's dataset fingerprint: read once, re-read only when a file changes."""

from __future__ import annotations

import hashlib
import os

from cnn_studio.core import file_hashes
from cnn_studio.data.records import ImageRecord, Split
from cnn_studio.runs import reproducibility as runs


def _counting(monkeypatch) -> list[str]:
    read: list[str] = []
    real = file_hashes.sha256_of

    def counted(path):
        read.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(file_hashes, "sha256_of", counted)
    return read


def test_unchanged_files_are_not_read_again(tmp_path, monkeypatch):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"alpha")
    b.write_bytes(b"beta")
    read = _counting(monkeypatch)
    first = file_hashes.hashes([str(a), str(b), str(a)])
    assert first == {str(a): hashlib.sha256(b"alpha").hexdigest(), str(b): hashlib.sha256(b"beta").hexdigest()}
    assert sorted(read) == sorted([str(a), str(b)])  # a listed twice, read once
    read.clear()
    assert file_hashes.hashes([str(a), str(b)]) == first
    assert read == []  # both remembered
    b.write_bytes(b"beta, edited")
    os.utime(b, ns=(1, 1))  # a different modification time, as an edit gives
    again = file_hashes.hashes([str(a), str(b)])
    assert read == [str(b)]
    assert again[str(b)] == hashlib.sha256(b"beta, edited").hexdigest()


def test_damaged_cache_is_rebuilt_and_missing_files_hash_empty(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x")
    file_hashes.cache_path().parent.mkdir(parents=True, exist_ok=True)
    file_hashes.cache_path().write_text("{not json", encoding="utf-8")
    out = file_hashes.hashes([str(a), str(tmp_path / "gone.bin")])
    assert out[str(a)] == hashlib.sha256(b"x").hexdigest()
    assert out[str(tmp_path / "gone.bin")] == ""
    assert file_hashes.hashes([str(a)]) == {str(a): out[str(a)]}


def test_fingerprint_names_slices_by_key_and_reads_a_volume_once(tmp_path, monkeypatch):
    vol = tmp_path / "data" / "lesion" / "s01.nii.gz"
    vol.parent.mkdir(parents=True)
    vol.write_bytes(b"not really a volume, only bytes to hash")
    recs = tuple(ImageRecord(str(vol), 0, study=str(vol), slice_index=i) for i in range(5))
    split = Split(("lesion", "healthy"), train=recs[:4], val=recs[4:])
    read = _counting(monkeypatch)
    fp = runs.dataset_fingerprint(split)
    assert read == [str(vol)]
    assert fp["n_files"] == 5 and fp["unreadable"] == 0
    assert len({f["path"] for f in fp["files"]}) == 5
    assert all(f["path"].startswith(os.path.join("lesion", "s01.nii.gz#slice=2:")) for f in fp["files"])
    assert runs.dataset_fingerprint(split)["sha256"] == fp["sha256"]
