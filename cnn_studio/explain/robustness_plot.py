"""The robustness check's picture: accuracy against level, one panel per perturbation, drawn with Pillow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from cnn_studio.core.fsutil import atomic_path

if TYPE_CHECKING:
    from cnn_studio.explain.robustness import RobustnessReport


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 RGB picture atomically as PNG."""
    with atomic_path(path) as tmp:
        Image.fromarray(image, "RGB").save(tmp, format="PNG")


def _level_label(value: float) -> str:
    return f"{value:g}"


def draw_plot(report: RobustnessReport, *, panel: tuple[int, int] = (300, 200)) -> np.ndarray:
    """Accuracy vs level, one panel per perturbation (FGSM last), drawn with Pillow: uint8 RGB.

    Levels are evenly spaced in the order they were tried; the dashed line is clean accuracy.
    """

    names = list(dict.fromkeys(r["perturbation"] for r in report.rows))
    cols = 3
    rows_n = max(1, -(-len(names) // cols))
    pw, ph = panel
    img = Image.new("RGB", (cols * pw, rows_n * ph), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 36, 12, 22, 30
    for n, name in enumerate(names):
        ox, oy = (n % cols) * pw, (n // cols) * ph
        x0, x1, y0, y1 = ox + left, ox + pw - right, oy + top, oy + ph - bottom
        pts = [r for r in report.rows if r["perturbation"] == name]
        draw.text((ox + left, oy + 4), name.replace("_", " "), fill="black")
        draw.rectangle([x0, y0, x1, y1], outline=(160, 160, 160))
        for frac in (0.0, 0.5, 1.0):
            y = y1 - frac * (y1 - y0)
            draw.line([x0 - 3, y, x0, y], fill="black")
            draw.text((ox + 4, y - 6), f"{frac:.1f}", fill="black")
        yc = y1 - report.clean_accuracy * (y1 - y0)
        for xs in range(int(x0), int(x1), 8):
            draw.line([xs, yc, min(xs + 4, x1), yc], fill=(120, 120, 120))

        def x_of(i: int, count: int, lo: float = x0 + 12, hi: float = x1 - 12) -> float:
            return (lo + hi) / 2 if count == 1 else lo + i * (hi - lo) / (count - 1)

        xy = [(x_of(i, len(pts)), y1 - float(r["accuracy"]) * (y1 - y0)) for i, r in enumerate(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=(31, 119, 180), width=2)
        for (x, y), r in zip(xy, pts, strict=True):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(31, 119, 180))
            draw.text((x - 10, y1 + 4), _level_label(float(r["level"])), fill="black")
    return np.asarray(img)


def save_plot(report: RobustnessReport, path: str | Path) -> Path:
    """Draw :func:`draw_plot` and write it atomically as PNG."""
    path = Path(path)
    save_png(path, draw_plot(report))
    return path
