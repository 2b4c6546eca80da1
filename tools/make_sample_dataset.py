"""Build the bundled sample dataset ``resources/sample/<digit>/*.png`` from scikit-learn's digits.

The images come from ``sklearn.datasets.load_digits`` (shipped inside the scikit-learn package:
no download): 8x8 greyscale scans with values 0..16. We keep the digits 0, 1, 2 and 7, the first
``--per-class`` images of each (in the dataset's own order), scale 0..16 to 0..255 (a bright digit
on black, as in the source), and upscale 8x8 → 32x32 with NEAREST resampling so every source pixel
becomes a crisp 4x4 block (no invented detail).

Run from the repository root::

    python tools/make_sample_dataset.py            # writes resources/sample/
    python tools/make_sample_dataset.py --per-class 60 --size 32 --out resources/sample

The output folder's class sub-folders are replaced atomically; ``README.md`` is left alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DIGITS = (0, 1, 2, 7)
CLASS_NAMES = {0: "zero", 1: "one", 2: "two", 7: "seven"}


def build(out: Path, per_class: int = 60, size: int = 32) -> dict[str, int]:
    """Write ``out/<class>/<class>_NNN.png``; return images written per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from cnn_studio.core.fsutil import atomic_dir

    digits = load_digits()
    written: dict[str, int] = {}
    for digit in DIGITS:
        name = CLASS_NAMES[digit]
        idx = np.flatnonzero(digits.target == digit)[:per_class]
        with atomic_dir(out / name) as tmp:
            tmp.chmod(0o755)  # mkdtemp makes it private; the bundled folder must be readable by all
            for n, i in enumerate(idx):
                pixels = np.round(digits.images[i] * (255.0 / 16.0)).astype(np.uint8)
                img = Image.fromarray(pixels, "L").resize((size, size), Image.Resampling.NEAREST)
                img.save(tmp / f"{name}_{n:03d}.png", optimize=True)
        written[name] = len(idx)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "sample")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    written = build(args.out, args.per_class, args.size)
    total = sum(p.stat().st_size for p in args.out.rglob("*.png"))
    print(f"wrote {sum(written.values())} images {written} to {args.out} ({total / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
