"""Benchmark the dataset fingerprint every training start writes: first start against later starts.

Writes ``--files`` random files of ``--kib`` KiB into a temporary folder (class sub-folders), then
times :func:`cnn_studio.runs.reproducibility.dataset_fingerprint` three ways in the same run:

* ``plain``: hashing every file (what each start cost before the hash cache),
* ``cold``:  the first start with an empty cache (hashes and remembers),
* ``warm``:  a later start (size and modification time unchanged: nothing is read).

Run::

    python bench/fingerprint.py                 # 2,000 files of 256 KiB (~500 MB)
    python bench/fingerprint.py --files 500 --kib 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--kib", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CNN_STUDIO_HOME"] = str(Path(tmp) / "home")
        from cnn_studio.core import file_hashes
        from cnn_studio.data.records import ImageRecord, Split
        from cnn_studio.runs import reproducibility as runs

        recs = []
        for i in range(args.files):
            p = Path(tmp) / "data" / f"class{i % 2}" / f"{i:05d}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(args.kib * 1024))
            recs.append(ImageRecord(str(p), i % 2))
        split = Split(("class0", "class1"), train=tuple(recs[: len(recs) * 4 // 5]), val=tuple(recs[len(recs) * 4 // 5:]))

        t = time.perf_counter()
        for r in recs:
            file_hashes.sha256_of(r.path)
        plain = time.perf_counter() - t
        t = time.perf_counter()
        cold = runs.dataset_fingerprint(split)
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        warm = runs.dataset_fingerprint(split)
        warm_s = time.perf_counter() - t
        assert warm["sha256"] == cold["sha256"]
        size_mb = args.files * args.kib / 1024
        print(f"{args.files} files, {size_mb:.0f} MB (page cache warm for every line)")
        print(f"{'way':<8}{'seconds':>10}{'vs plain':>10}")
        for name, s in (("plain", plain), ("cold", cold_s), ("warm", warm_s)):
            print(f"{name:<8}{s:>10.3f}{s / plain:>9.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
