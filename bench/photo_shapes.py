"""Photo-like generated pictures of shapes, for benchmarks that need data nobody hand-made.

A shape of random colour, size, place and rotation on a shaded, textured background with
distractors and uneven lighting, saved in one of several formats (PNG, JPEG, JPEG with an EXIF
rotation, 16-bit RGB TIFF, 16-bit grey DICOM). :data:`SHAPES` has ten classes, some close to each
other at a small size (pentagon, hexagon and circle; the two stars), so a model has room to be
better or worse; the label-issue bench uses the first four.

    python bench/photo_shapes.py DEST [--per-class 180] [--seed 0] [--formats png,jpg]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test kit's DICOM writer
from studio_testkit import DicomTags, write_dicom  # noqa: E402

SHAPES = ("circle", "square", "triangle", "star", "pentagon", "hexagon", "cross", "ellipse", "star6", "arrow")
FORMATS = ("png", "jpg", "jpg_rotated", "tif16", "dcm")


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        corners = [np.pi / 4 + k * np.pi / 2 for k in range(4)]
        radii = [r] * 4
    elif shape == "triangle":
        corners = [k * 2 * np.pi / 3 for k in range(3)]
        radii = [r * 1.15] * 3
    elif shape == "star":
        corners = [k * np.pi / 5 for k in range(10)]
        radii = [r * 1.1 if k % 2 == 0 else r * 0.45 for k in range(10)]
    elif shape in ("pentagon", "hexagon"):
        n = 5 if shape == "pentagon" else 6
        corners = [k * 2 * np.pi / n for k in range(n)]
        radii = [r] * n
    elif shape == "star6":
        corners = [k * np.pi / 6 for k in range(12)]
        radii = [r * 1.05 if k % 2 == 0 else r * 0.6 for k in range(12)]
    elif shape == "cross":
        w = 0.38
        pts = [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1), (-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w),
               (-w, 1)]
        corners = [np.arctan2(y, x) for x, y in pts]
        radii = [r * np.hypot(x, y) * 0.85 for x, y in pts]
    elif shape == "arrow":
        pts = [(1, 0), (0.1, 0.75), (0.1, 0.3), (-1, 0.3), (-1, -0.3), (0.1, -0.3), (0.1, -0.75)]
        corners = [np.arctan2(y, x) for x, y in pts]
        radii = [r * np.hypot(x, y) for x, y in pts]
    elif shape == "ellipse":
        corners = [k * 2 * np.pi / 48 for k in range(48)]
        radii = [r / np.hypot(np.cos(a) / 1.0, np.sin(a) / 0.5) for a in corners]
    else:  # circle
        corners = [k * 2 * np.pi / 48 for k in range(48)]
        radii = [r * 0.9] * 48
    return [(cx + q * np.cos(a + angle), cy + q * np.sin(a + angle)) for a, q in zip(corners, radii, strict=True)]


def photo_like(shape: str, rng: np.random.Generator, side: int = 128):
    """One RGB picture: a shape of random colour, size, place and angle on a shaded, textured background."""
    from PIL import Image, ImageDraw, ImageFilter

    yy, xx = np.mgrid[0:side, 0:side] / side
    c0, c1 = rng.uniform(30, 200, 3), rng.uniform(30, 200, 3)
    t = np.clip(xx * np.cos(rng.uniform(0, 6.3)) + yy * np.sin(rng.uniform(0, 6.3)), -1, 1)[..., None] * 0.5 + 0.5
    low = np.asarray(Image.fromarray(rng.uniform(-40, 40, (6, 6, 3)).astype(np.float32)[..., 0]).resize(
        (side, side), Image.BICUBIC))[..., None]
    bg = c0 * (1 - t) + c1 * t + low + rng.normal(0, 10, (side, side, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(1, 4)):  # distractors
        x, y, w = rng.uniform(0, side, 2).tolist() + [rng.uniform(4, side / 6)]
        draw.ellipse([x, y, x + w, y + w * rng.uniform(0.3, 1)], fill=tuple(rng.integers(0, 256, 3).tolist()))
    lum = bg.mean()
    colour = rng.uniform(0, 255, 3)
    colour = np.clip(colour + (90 if colour.mean() >= lum else -90), 0, 255)  # stands out from the background
    r = rng.uniform(0.18, 0.32) * side
    cx, cy = rng.uniform(r + 4, side - r - 4, 2)
    draw.polygon(_polygon(shape, cx, cy, r, rng.uniform(0, 2 * np.pi)), fill=tuple(int(v) for v in colour))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    shade = 1 + 0.25 * (xx - 0.5)[..., None] * rng.choice([-1, 1])  # uneven lighting
    arr = np.asarray(img).astype(np.float64) * shade + rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def save_as(img, path_stem: Path, fmt: str) -> Path:
    """Save ``img`` in one of :data:`FORMATS` (the file the reader must decode back to the same picture)."""
    from PIL import Image

    arr = np.asarray(img)
    if fmt == "png":
        out = path_stem.with_suffix(".png")
        img.save(out)
    elif fmt == "jpg":
        out = path_stem.with_suffix(".jpg")
        img.save(out, quality=88)
    elif fmt == "jpg_rotated":  # stored turned, with the EXIF orientation that turns it back for display
        out = path_stem.with_suffix(".jpg")
        stored = img.transpose(Image.Transpose.ROTATE_90)
        exif = stored.getexif()
        exif[0x0112] = 6
        stored.save(out, quality=88, exif=exif)
    elif fmt == "tif16":
        import tifffile

        out = path_stem.with_suffix(".tif")
        tifffile.imwrite(out, arr.astype(np.uint16) * 257, photometric="rgb")
    elif fmt == "dcm":
        out = path_stem.with_suffix(".dcm")
        pixels = (arr.astype(np.float64) @ [0.299, 0.587, 0.114] * 16).astype(np.uint16)
        write_dicom(out, pixels, DicomTags(patient=None, bits_stored=12))  # 12 of 16 bits used
    else:
        raise ValueError(fmt)
    return out


def write_set(dest: Path, per_class: int, seed: int = 0, formats: tuple[str, ...] = ("png",),
              shapes: tuple[str, ...] = SHAPES, side: int = 128) -> int:
    """``per_class`` pictures of each of ``shapes`` into ``dest/<shape>/``; returns the count written."""
    rng = np.random.default_rng(seed)
    n = 0
    for shape in shapes:
        (dest / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            save_as(photo_like(shape, rng, side), dest / shape / f"{shape}_{i:04d}", formats[i % len(formats)])
            n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--per-class", type=int, default=180)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default="png")
    ap.add_argument("--side", type=int, default=128)
    args = ap.parse_args()
    n = write_set(args.dest, args.per_class, args.seed, tuple(args.formats.split(",")), side=args.side)
    print(f"{n} pictures in {len(SHAPES)} classes written to {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
