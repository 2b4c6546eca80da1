"""The shortcut check: does the model decide from the picture's edge or one fixed spot (a text marker,
a ruler, a scanner label) instead of the object?

Two tests on a sample of validation images (at most :data:`MAX_IMAGES`, spread over the classes):

1. **Occlusion** (:mod:`cnn_studio.explain.occlusion`, the deciding test): each corner and edge strip
   is masked with the image's median colour, and swapped in from an image the model answers
   differently; a region whose changed answers stand well above those of a central region of the
   same area is reported with its box and the images it changed. It does not depend on the
   network's resolution, so a side marker in a 64 px picture (VGG16's last convolution: 4×4
   cells) is found as well as in a large one.
2. **Grad-CAM** (below), as before: it still raises the alarm on its own, but a map of fewer than
   :data:`MIN_CAM_CELLS` cells a side (each wider than the border strip) cannot see a small mark
   at the edge, and its "no shortcut" says so.

For the Grad-CAM test, the heat map of the predicted class is enlarged to the
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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import StudioError
from cnn_studio.explain.gradcam import find_last_conv_layer, gradcam_batch, upsample
from cnn_studio.explain.occlusion import TASK, occlusion_answers, occlusion_verdict
from cnn_studio.predict.predictor import iter_image_batches

BORDER_FRACTION = 0.125
BORDER_SHARE = 0.70
REGION_AREA = 0.10
REGION_SHARE = 0.35
REGION_IOU = 0.5
MAX_PER_CLASS = 16
MAX_IMAGES = 48
MIN_IMAGES = 4
REVIEW_MIN_IMAGES = 24  # the check after training looks at no fewer (when there are as many)
REVIEW_IMAGES_PER = 40  # ... and one per this many training and validation images, up to MAX_IMAGES
MIN_CAM_CELLS = 7
EXAMPLES = 8
GRADCAM_BATCH = 16  # images Grad-CAM'd in one pass (one at a time cost ~0.1 s each in Python and eager overhead)
HINT = ("Look at the example images: crop or mask the edges/labels, make every class come from the same "
        "devices and settings, and check Grad-CAM on the Classify step.")


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


def _blank_verdict(n_images: int) -> dict[str, Any]:
    """The Grad-CAM test's record before anything is measured, with the rule it applies."""
    return {"suspected": False, "kind": None, "n_images": int(n_images), "examples": [],
            "border_area": None, "border_share": None, "region": "", "message": "", "hint": "",
            "rule": f"border: median ≥ {BORDER_SHARE:.0%} of Grad-CAM mass in the outer "
                    f"{BORDER_FRACTION:.1%} strip; region: every class's hottest "
                    f"{REGION_AREA:.0%} holds ≥ {REGION_SHARE:.0%} and overlaps (IoU ≥ {REGION_IOU})"}


def _class_regions(maps: np.ndarray, labels: np.ndarray,
                   present: list[int]) -> tuple[dict[int, np.ndarray], dict[int, float], list[float]]:
    """Each present class's hottest region of its mean map, the share of its mass there, and the pairs' IoUs."""
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
    return regions, region_shares, ious


def _border_finding(out: dict[str, Any], maps: np.ndarray, shares: np.ndarray, border: np.ndarray,
                    paths: Sequence[str]) -> dict[str, Any]:
    top = np.argsort(-shares, kind="stable")[:5]
    hot = _hot_region((maps * border).mean(axis=0))
    return dict(suspected=True, kind="border", region=place_words(hot), examples=[paths[i] for i in top],
                message=(f"The model mostly looks at the image border: {out['border_share']:.0%} of its attention "
                         f"(Grad-CAM) falls in the outer strip, which is {out['border_area']:.0%} of the picture, "
                         f"mostly at the {place_words(hot)}. It may have learnt a marker, a ruler or a frame "
                         "instead of the object."), hint=HINT)


def _same_region_finding(maps: np.ndarray, union: np.ndarray, region_shares: dict[int, float],
                         paths: Sequence[str]) -> dict[str, Any]:
    per_image = (maps * union).reshape(len(maps), -1).sum(axis=1)
    top = np.argsort(-per_image, kind="stable")[:5]
    where = place_words(union)
    return dict(suspected=True, kind="same_region", region=where, examples=[paths[i] for i in top],
                message=(f"Whatever the class, the model looks at the same small place ({where}, "
                         f"{REGION_AREA:.0%} of the picture holds {min(region_shares.values()):.0%} or more of "
                         "its attention). A text marker or label there may be giving the class away."), hint=HINT)


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
    out = _blank_verdict(len(maps))
    if len(maps) < MIN_IMAGES:
        out["message"] = f"Too few validation images to check ({len(maps)} with a heat map; needs {MIN_IMAGES})."
        return out
    maps = maps / maps.reshape(len(maps), -1).sum(axis=1)[:, None, None]
    border = border_mask(maps.shape[1])
    shares = (maps * border).reshape(len(maps), -1).sum(axis=1)
    out["border_area"] = float(border.mean())
    out["border_share"] = float(np.median(shares))
    present = [c for c in range(len(class_names)) if (labels == c).any()]
    regions, region_shares, ious = _class_regions(maps, labels, present)
    out["region_share"] = {class_names[c]: region_shares[c] for c in present}
    out["region_iou"] = min(ious) if ious else None
    if out["border_share"] >= BORDER_SHARE:
        out.update(_border_finding(out, maps, shares, border, paths))
    elif (len(present) >= 2 and ious and min(ious) >= REGION_IOU and min(region_shares.values()) >= REGION_SHARE
          and _off_centre(np.logical_or.reduce([regions[c] for c in present]))):
        union = np.logical_or.reduce([regions[c] for c in present])
        out.update(_same_region_finding(maps, union, region_shares, paths))
    else:
        out["message"] = (f"No shortcut seen: {out['border_share']:.0%} of the attention is in the border strip "
                          f"({out['border_area']:.0%} of the picture) and the classes are told apart in different places.")
    return out


def review_sample_size(run_images: int) -> int:
    """Images the check after training looks at, for a run of ``run_images`` training and validation images.

    Each image costs 23 passes through the network (11 places masked, 11 swapped, and Grad-CAM), so a
    fixed 48 would cost more than the whole training on a small set at a large image size (VGG16 at
    224 px: 48 × 23 passes take about 5 minutes on 2 CPU cores). One image per
    :data:`REVIEW_IMAGES_PER` (at least :data:`REVIEW_MIN_IMAGES`, at most :data:`MAX_IMAGES`) keeps
    its cost near half a pass over the run's images.
    """
    return int(min(MAX_IMAGES, max(REVIEW_MIN_IMAGES, run_images // REVIEW_IMAGES_PER)))


def sample_indices(labels: Sequence[int], n_classes: int, max_per_class: int = MAX_PER_CLASS,
                   max_images: int = MAX_IMAGES, seed: int = 0) -> list[int]:
    """Indices of at most ``max_per_class`` images of each class and ``max_images`` in all (seeded)."""
    rng = np.random.default_rng(seed)
    per_class = max(1, min(max_per_class, max_images // max(1, n_classes)))
    chosen: list[int] = []
    for c in range(n_classes):
        idx = [i for i, lab in enumerate(labels) if lab == c]
        if len(idx) > per_class:
            idx = sorted(rng.choice(idx, per_class, replace=False).tolist())
        chosen += idx
    return sorted(chosen)


@dataclass(frozen=True)
class ShortcutSample:
    """The readable images of the sample, as the model's pipeline sizes them, with their keys and labels."""

    images: np.ndarray
    keys: list[str]
    labels: list[int]


def _load(paths: Sequence[str], labels: Sequence[int], image_size: int, resize: str,
          cancel: CancelToken | None) -> ShortcutSample:
    images, keys, kept = [], [], []
    for ok, batch, _errors in iter_image_batches(paths, image_size, resize, 32):
        raise_if_cancelled(cancel)
        images += list(batch)
        keys += [paths[i] for i in ok]
        kept += [labels[i] for i in ok]
    arr = np.stack(images).astype(np.float32) if images else np.zeros((0, image_size, image_size, 3), np.float32)
    return ShortcutSample(arr, keys, kept)


def gradcam_evidence(model, sample: ShortcutSample, class_names: Sequence[str], sink: ev.EventSink = ev.null_sink,
                     cancel: CancelToken | None = None) -> dict[str, Any]:
    """:func:`analyse_heatmaps` of the sample's Grad-CAM maps, with ``cells`` (the map's side) and ``layer``."""
    images = sample.images
    layer = find_last_conv_layer(model)
    size = images.shape[1]
    maps, cells = [], 0
    for start in range(0, len(images), GRADCAM_BATCH):
        raise_if_cancelled(cancel)
        heat, _ = gradcam_batch(model, images[start:start + GRADCAM_BATCH], layer=layer)
        cells = int(min(heat.shape[1:]))
        maps += [upsample(h, (size, size)) for h in heat]
        sink(ev.TaskProgress(TASK, len(maps), len(images), f"{TASK}: Grad-CAM, {len(maps)}/{len(images)} images"))
    arr = np.stack(maps) if maps else np.zeros((0, size, size))
    out = analyse_heatmaps(arr, sample.labels, sample.keys, list(class_names))
    out["cells"], out["layer"] = cells, layer
    if cells < MIN_CAM_CELLS:
        out["note"] = (f"Grad-CAM's map ({layer}) is {cells}×{cells} cells, each wider than the "
                       f"{BORDER_FRACTION:.1%} border strip: too coarse to see a small mark at the edge.")
    return out


def spread_examples(affected: Sequence[dict[str, Any]], n: int = EXAMPLES) -> list[str]:
    """Up to ``n`` keys of the affected images, taking each answer class in turn (most changed first)."""
    queues: dict[str, list[str]] = {}
    for a in affected:
        queues.setdefault(a["answer"], []).append(a["key"])
    out: list[str] = []
    while len(out) < n and any(queues.values()):
        for q in queues.values():
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def combine(occ: dict[str, Any], cam: dict[str, Any], resize: str) -> dict[str, Any]:
    """One verdict from the occlusion test (with the region's box and images) and Grad-CAM (either may raise it)."""
    out: dict[str, Any] = {"suspected": False, "kind": None, "region": "", "box": None, "message": "", "hint": "",
                           "examples": [], "affected": [], "n_images": occ.get("n_images", 0), "resize": resize,
                           "occlusion": occ, "gradcam": cam}
    cam_says = bool(cam.get("suspected"))
    if occ.get("suspected"):
        affected = occ["affected"]
        out.update(suspected=True, kind="occlusion", region=occ["region"], box=occ["box"], hint=HINT,
                   affected=affected, examples=spread_examples(affected), message=occ["message"])
        if cam_says:
            out["message"] += f" Grad-CAM agrees: its attention is on the {cam['region']} too."
    elif cam_says:
        out.update(suspected=True, kind=cam["kind"], region=cam["region"], hint=HINT, examples=cam["examples"],
                   message=f"{cam['message']} (Masking the corners and edges did not confirm it: {occ['message']})")
    else:
        parts = [f"No shortcut seen. {occ.get('message', '')}".strip()]
        if cam.get("border_share") is not None:
            parts.append(f"Grad-CAM: {cam['border_share']:.0%} of the attention is in the border strip "
                         f"({cam['border_area']:.0%} of the picture).")
        if cam.get("note"):
            parts.append(cam["note"])
        out["message"] = " ".join(parts)
    return out


def _occlusion(classifier, screen, sample: ShortcutSample, *, sink: ev.EventSink,
               cancel: CancelToken | None) -> dict[str, Any]:
    """The occlusion test's verdict: the ``screen``'s answers first when there is one; the model's own when
    the screen flags a region (or there is no screen). ``screened``: whose answers the verdict rests on."""
    def verdict(model) -> dict[str, Any]:
        return occlusion_verdict(occlusion_answers(model, sample.images, sink=sink, cancel=cancel), sample.keys,
                                 list(classifier.class_names), classifier.image_size)

    if screen is None:
        return verdict(classifier.model) | {"screened": "the model"}
    occ = verdict(screen)
    if not occ["suspected"]:
        return occ | {"screened": "bfloat16 twin: nothing flagged"}
    return verdict(classifier.model) | {"screened": "flagged by the bfloat16 twin, measured with the model"}


@dataclass(frozen=True)
class ShortcutOptions:
    """Which validation images the shortcut check looks at, and whether it runs Grad-CAM as well as masking.

    ``max_per_class``, ``max_images``: at most this many images of each class and in all (a sample drawn
    with ``seed``); ``use_gradcam``: the Grad-CAM test beside the occlusion test; ``screen``: a faster twin
    of the model (``backbones.low_precision.bfloat16_twin``) that answers the masked and swapped pictures
    first; a region it flags is measured again with the model itself, which alone decides.
    """

    max_per_class: int = MAX_PER_CLASS
    max_images: int = MAX_IMAGES
    seed: int = 0
    use_gradcam: bool = True
    screen: object = None


def check_shortcuts(classifier, paths: Sequence[str | os.PathLike[str]], labels: Sequence[int],
                    options: ShortcutOptions | None = None, *, sink: ev.EventSink = ev.null_sink,
                    cancel: CancelToken | None = None, **fields: Any) -> dict[str, Any]:
    """Mask and swap the corners and edges of a sample of labeled images, and Grad-CAM them.

    ``classifier``: a :class:`~cnn_studio.predict.predictor.Classifier` (the model, its class names,
    image size and resize policy); ``options`` (default :class:`ShortcutOptions`), with any of its
    fields given as keywords (``fields``) instead.

    Returns the :func:`combine` dict: ``suspected``, ``kind`` ("occlusion", "border", "same_region"),
    ``region`` (words), ``box`` (left, top, right, bottom as fractions of the model input, for the
    occlusion kind), ``message``, ``hint``, ``examples`` and ``affected`` (the images whose answer
    the region changed), with each test's full record under ``occlusion`` and ``gradcam``.
    Unreadable files are left out. Emits ``TaskProgress`` (images done / total) for each test.
    """
    o = replace(options or ShortcutOptions(), **fields)
    model, class_names = classifier.model, classifier.class_names
    image_size, resize = classifier.image_size, classifier.resize
    labels = list(labels)
    chosen = sample_indices(labels, len(class_names), o.max_per_class, o.max_images, o.seed)
    paths = [str(paths[i]) for i in chosen]
    sink(ev.TaskProgress(TASK, 0, len(paths), f"{TASK}: reading {len(paths)} validation images"))
    sample = _load(paths, [labels[i] for i in chosen], image_size, resize, cancel)
    if len(sample.images) < MIN_IMAGES:
        msg = f"Too few validation images to check ({len(sample.images)}; needs {MIN_IMAGES})."
        return combine({"suspected": False, "n_images": len(sample.images), "message": msg}, {}, resize) | {"message": msg}
    occ = _occlusion(classifier, o.screen, sample, sink=sink, cancel=cancel)
    cam: dict[str, Any] = {}
    if o.use_gradcam:
        try:
            cam = gradcam_evidence(model, sample, class_names, sink, cancel)
        except StudioError as exc:  # a model Grad-CAM cannot explain: the masking test still stands
            cam = {"suspected": False, "note": f"Grad-CAM skipped: {exc.message}"}
    return combine(occ, cam, resize)
