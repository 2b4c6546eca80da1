"""Byte-identical image files: same-size files compared by the SHA-1 of their bytes (read in 1 MiB chunks).

Only files that could be identical (equal sizes) are read. The dataset checks
(:mod:`cnn_studio.data.checks`) turn the sets into findings.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict

from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.data.records import ImageRecord

_CHUNK = 1 << 20


def file_sha1(path: str) -> str:
    """SHA-1 of a file's bytes, read in chunks (never the whole file at once)."""
    h = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def duplicate_sets(records: tuple[ImageRecord, ...] | list[ImageRecord], *,
                   cancel: CancelToken | None = None) -> list[list[ImageRecord]]:
    """Sets of records whose files are byte-identical (two or more each, sorted by path).

    The slices of one volume file share that file: it counts once (its first record stands for it)."""
    by_size: dict[int, list[ImageRecord]] = defaultdict(list)
    for r in {r.path: r for r in reversed(list(records))}.values():  # one record per file, the first
        by_size[r.size_bytes or _size(r.path)].append(r)
    by_hash: dict[str, list[ImageRecord]] = defaultdict(list)
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        for r in same_size:
            raise_if_cancelled(cancel)
            try:
                by_hash[file_sha1(r.path)].append(r)
            except OSError:
                continue
    return sorted((sorted(v, key=lambda r: r.path) for v in by_hash.values() if len(v) > 1),
                  key=lambda v: v[0].path)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1
