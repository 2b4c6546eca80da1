"""The shortcut check: does the model decide from the picture's edge or one fixed spot (a text marker,
a ruler, a scanner label) instead of the object?

For a sample of validation images, the Grad-CAM heat map of the predicted class is enlarged to the
model's input size and normalised to a total mass of 1. Two signals are measured:

* **border**: the share of the mass in the outer strip (:data:`BORDER_FRACTION` = 1/8 of the side
  on each edge, 43.75% of the area). The check fires when the median image puts at least
  :data:`BORDER_SHARE` = 70% of its mass there.
* **same small region across classes**: for each class the hottest :data:`REGION_AREA` = 10% of
  the pixels of its mean heat map. The check fires when every class's region holds at least
  :data:`REGION_SHARE` = 35% of that class's mass (3.5× an even spread) and the regions of the
  classes overlap (intersection over union ≥ :data:`REGION_IOU` = 0.5) away from the middle (the
  region's centre outside the central half of the picture, where photographed objects usually
  are and markers, rulers and labels usually are not): whatever the class, the model looks at the
  same small place off the object.

Either way the result names the place ("top-left corner") and lists example files (the images
with the most mass there), so a person can look.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from cnn_studio import events as ev
from cnn_studio.cancel import CancelToken, raise_if_cancelled
from cnn_studio.explain.gradcam import find_last_conv_layer, gradcam, upsample
from cnn_studio.predict import iter_image_batches

TASK = "Checking for shortcuts"
BORDER_FRACTION = 0.125
BORDER_SHARE = 0.70
REGION_AREA = 0.10
REGION_SHARE = 0.35
REGION_IOU = 0.5
MAX_PER_CLASS = 16
MIN_IMAGES = 4


def border_mask(size: int, fraction: float = BORDER_FRACTION) -> np.ndarray:
    """Boolean ``(size, size)`` mask of the outer strip, ``max(1, round(fraction·size))`` pixels wide."""
    w = max(1, int(round(fraction * size)))
    m = np.ones((size, size), bool)
    m[w:size - w, w:size - w] = False
    return m


def _hot_region(mean_map: np.ndarray, area: float = REGION_AREA) -> np.ndarray:
    k = max(1, int(round(area * mean_map.size)))
    cut = np.partition(mean_map.ravel(), -k)[-k]
    return mean_map >= cut


def _off_centre(mask: np.ndarray) -> bool:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return abs(ys.mean() / h - 0.5) > 0.25 or abs(xs.mean() / w - 0.5) > 0.25


def place_words(mask: np.ndarray) -> str:
    """Where a region is, in words: "top-left corner", "bottom edge", "centre" ..."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    cy, cx = ys.mean() / h, xs.mean() / w
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    if row == "middle" and col == "centre":
        return "centre"
    if row == "middle":
        return f"{col} edge"
    if col == "centre":
        return f"{row} edge"
    return f"{row}-{col} corner"


def analyse_heatmaps(maps: np.ndarray, labels: Sequence[int], paths: Sequence[str],
                     class_names: Sequence[str]) -> dict[str, Any]:
    """Decide from heat maps ``[N, S, S]`` (any scale; each is normalised here) whether a shortcut is likely.

    Pure numpy, so it is tested on hand-made maps as well as on a trained model's.
    """
    maps = np.asarray(maps, np.float64)
    labels = np.asarray(labels, np.int64)
    mass = maps.reshape(len(maps), -1).sum(axis=1) if len(maps) else np.zeros(0)
    keep = mass > 0
    maps, labels, paths = maps[keep], labels[keep], [p for p, k in zip(paths, keep, strict=True) if k]
    out: dict[str, Any] = {"suspected": False, "kind": None, "n_images": int(len(maps)), "examples": [],
                           "border_area": None, "border_share": None, "region": "", "message": "", "hint": "",
                           "rule": f"border: median ≥ {BORDER_SHARE:.0%} of Grad-CAM mass in the outer "
                                   f"{BORDER_FRACTION:.1%} strip; region: every class's hottest "
                                   f"{REGION_AREA:.0%} holds ≥ {REGION_SHARE:.0%} and overlaps (IoU ≥ {REGION_IOU})"}
    if len(maps) < MIN_IMAGES:
        out["message"] = f"Too few validation images to check ({len(maps)} with a heat map; needs {MIN_IMAGES})."
        return out
    maps = maps / maps.reshape(len(maps), -1).sum(axis=1)[:, None, None]
    size = maps.shape[1]
    border = border_mask(size)
    shares = (maps * border).reshape(len(maps), -1).sum(axis=1)
    out["border_area"] = float(border.mean())
    out["border_share"] = float(np.median(shares))
    present = [c for c in range(len(class_names)) if (labels == c).any()]
    regions, region_shares = {}, {}
    for c in present:
        mean = maps[labels == c].mean(axis=0)
        regions[c] = _hot_region(mean)
        region_shares[c] = float(mean[regions[c]].sum())
    ious = []
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            inter = np.logical_and(regions[a], regions[b]).sum()
            ious.append(float(inter / max(1, np.logical_or(regions[a], regions[b]).sum())))
    out["region_share"] = {class_names[c]: region_shares[c] for c in present}
    out["region_iou"] = min(ious) if ious else None
    hint = ("Look at the example images: crop or mask the edges/labels, make every class come from the same "
            "devices and settings, and check Grad-CAM on the Classify step.")
    if out["border_share"] >= BORDER_SHARE:
        top = np.argsort(-shares, kind="stable")[:5]
        hot = _hot_region((maps * border).mean(axis=0))
        out.update(suspected=True, kind="border", region=place_words(hot), examples=[paths[i] for i in top],
                   message=(f"The model mostly looks at the image border: {out['border_share']:.0%} of its attention "
                            f"(Grad-CAM) falls in the outer strip, which is {out['border_area']:.0%} of the picture, "
                            f"mostly at the {place_words(hot)}. It may have learnt a marker, a ruler or a frame "
                            "instead of the object."), hint=hint)
    elif (len(present) >= 2 and ious and min(ious) >= REGION_IOU and min(region_shares.values()) >= REGION_SHARE
          and _off_centre(np.logical_or.reduce([regions[c] for c in present]))):
        union = np.logical_or.reduce([regions[c] for c in present])
        per_image = (maps * union).reshape(len(maps), -1).sum(axis=1)
        top = np.argsort(-per_image, kind="stable")[:5]
        where = place_words(union)
        out.update(suspected=True, kind="same_region", region=where, examples=[paths[i] for i in top],
                   message=(f"Whatever the class, the model looks at the same small place ({where}, "
                            f"{REGION_AREA:.0%} of the picture holds {min(region_shares.values()):.0%} or more of "
                            "its attention). A text marker or label there may be giving the class away."), hint=hint)
    else:
        out["message"] = (f"No shortcut seen: {out['border_share']:.0%} of the attention is in the border strip "
                          f"({out['border_area']:.0%} of the picture) and the classes are told apart in different places.")
    return out


def check_shortcuts(model, paths: Sequence[str | os.PathLike[str]], labels: Sequence[int],
                    class_names: Sequence[str], image_size: int, resize: str = "stretch", *,
                    max_per_class: int = MAX_PER_CLASS, seed: int = 0, sink: ev.EventSink = ev.null_sink,
                    cancel: CancelToken | None = None) -> dict[str, Any]:
    """Grad-CAM a sample of labeled images (at most ``max_per_class`` per class) and analyse where it falls.

    Returns the :func:`analyse_heatmaps` dict (``suspected``, ``kind``, ``region``, ``examples``,
    ``message``, ``hint`` ...). Unreadable files are left out. Emits ``TaskProgress`` per image.
    """

    rng = np.random.default_rng(seed)
    labels = list(labels)
    chosen: list[int] = []
    for c in range(len(class_names)):
        idx = [i for i, lab in enumerate(labels) if lab == c]
        if len(idx) > max_per_class:
            idx = sorted(rng.choice(idx, max_per_class, replace=False).tolist())
        chosen += idx
    chosen.sort()
    sample = [str(paths[i]) for i in chosen]
    layer = find_last_conv_layer(model)
    maps, kept_labels, kept_paths = [], [], []
    done = 0
    sink(ev.TaskProgress(TASK, 0, len(sample)))
    for ok, images, errors in iter_image_batches(sample, image_size, resize, 16):
        for j, i in enumerate(ok):
            raise_if_cancelled(cancel)
            cam = gradcam(model, images[j], layer=layer)
            maps.append(upsample(cam.heatmap, (image_size, image_size)))
            kept_labels.append(labels[chosen[i]])
            kept_paths.append(sample[i])
        done += len(ok) + len(errors)
        sink(ev.TaskProgress(TASK, done, len(sample)))
    arr = np.stack(maps) if maps else np.zeros((0, image_size, image_size))
    return analyse_heatmaps(arr, kept_labels, kept_paths, list(class_names))
