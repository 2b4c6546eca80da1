"""Peak memory of decoding one large picture: reduced while read vs a plain full decode.

    python3 bench/decode_memory.py [--side 9990] [--size 224]

Writes a SIDE×SIDE PNG and JPEG (a gradient: small files, like the 97 KB PNG of issue 8), then
decodes each in a fresh process and prints that process's peak RSS (``ru_maxrss``) for:

* ``full``: ``decode_file(path)`` then the resize to SIZE (what ``pipeline.load_image`` does);
* ``reduced``: ``decode_file(path, reduce_to=SIZE)`` then the same resize (what ``predict`` does):
  JPEG decodes at 1/8 scale (Pillow ``draft``), PNG is box-reduced before any RGB copy;
* ``baseline``: the same process importing everything but decoding nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import resource, sys
import numpy as np
from cnn_studio.data.decode import decode_file
from cnn_studio.data.pipeline import resize_image
path, size, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
resize_image(np.zeros((2 * size, 2 * size, 3), np.uint8), size, "stretch")  # TensorFlow in first: its peak is the floor
if mode == "baseline":  # TensorFlow imported and one small resize: what every mode pays anyway
    img = np.zeros((2 * size, 2 * size, 3), np.uint8)
else:
    img = decode_file(path, reduce_to=size if mode == "reduced" else None)
out = np.asarray(resize_image(img, size, "stretch"))
assert out.shape == (size, size, 3), out.shape
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""

MAKE = r"""
import sys
import numpy as np
from PIL import Image
side, folder = int(sys.argv[1]), sys.argv[2]
row = np.linspace(0, 255, side, dtype=np.float32)
grey = (row[None, :] * 0.5 + row[:, None] * 0.5).astype(np.uint8)
img = Image.fromarray(np.stack([grey, grey[::-1], grey.T], axis=-1))
img.save(f"{folder}/big.png", optimize=False)
img.save(f"{folder}/big.jpg", quality=85)
"""


def _run(code: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=9990)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", MAKE, str(args.side), tmp], check=True)
        base = int(_run(CHILD, f"{tmp}/big.png", str(args.size), "baseline"))
        print(f"{args.side}x{args.side} pictures resized to {args.size} px; peak RSS of a fresh process "
              f"(baseline: TensorFlow imported, one small resize: {base} MB)")
        print(f"{'file':<10}{'size on disk':>14}{'full decode':>14}{'reduced':>10}  above baseline: full / reduced")
        for name in ("big.png", "big.jpg"):
            path = Path(tmp) / name
            full = int(_run(CHILD, str(path), str(args.size), "full"))
            reduced = int(_run(CHILD, str(path), str(args.size), "reduced"))
            print(f"{name:<10}{path.stat().st_size / 1e6:>11.2f} MB{full:>11} MB{reduced:>7} MB"
                  f"  {full - base} MB / {reduced - base} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
