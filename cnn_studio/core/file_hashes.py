"""SHA-256 of dataset files, remembered between runs by (path, size, modification time).

A run's reproducibility record lists every file with its SHA-256 (:func:`cnn_studio.runs.reproducibility.dataset_fingerprint`).
Hashing a large dataset at every training start would cost seconds to minutes, so the digests are kept
in ``<app data>/cache/file-hashes.json``: a file whose size and modification time (nanoseconds) are
unchanged is not read again. The cache is only a shortcut; a damaged or missing cache is rebuilt, and
a failed write is ignored (the fingerprint is still right, just not remembered).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from cnn_studio.core.errors import StudioError
from cnn_studio.core.fsutil import read_json, write_json
from cnn_studio.core.paths import app_data_dir

_LOCK = threading.Lock()
MAX_ENTRIES = 500_000
"""The cache forgets its oldest entries past this many files (~100 bytes each)."""


def cache_path() -> Path:
    """Where the digests are remembered."""
    return app_data_dir() / "cache" / "file-hashes.json"


def file_hash(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (OSError when it cannot be read); never cached."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes ("" when it cannot be read); never cached."""
    try:
        return file_hash(path)
    except OSError:
        return ""


def _stamp(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def _load() -> dict[str, list[str]]:
    try:
        data = read_json(cache_path())
    except (OSError, ValueError, StudioError):
        return {}
    return data if isinstance(data, dict) else {}


def hashes(paths: Iterable[str]) -> dict[str, str]:
    """``{path: sha256}`` for each distinct path (unreadable: ""), reading only files that changed.

    Examples
    --------
    >>> hashes(["leaf/a.png", "leaf/a.png"])  # doctest: +SKIP
    {'leaf/a.png': '5f0c…'}
    """
    wanted = list(dict.fromkeys(os.fspath(p) for p in paths))
    with _LOCK:
        cache = _load()
        out: dict[str, str] = {}
        changed = False
        for p in wanted:
            key = os.path.abspath(p)
            stamp = _stamp(p)
            hit = cache.get(key)
            if stamp is not None and isinstance(hit, list) and len(hit) == 2 and hit[0] == stamp:
                out[p] = str(hit[1])
                continue
            digest = sha256_of(p) if stamp is not None else ""
            out[p] = digest
            if digest:
                cache.pop(key, None)  # re-inserted last: the newest entries survive trimming
                cache[key] = [stamp, digest]
                changed = True
        if changed:
            if len(cache) > MAX_ENTRIES:
                cache = dict(list(cache.items())[-MAX_ENTRIES:])
            try:
                write_json(cache_path(), cache)
            except (OSError, StudioError):
                pass  # only a shortcut: the digests above are right either way
        return out
