"""The occlusion test of the shortcut check: do the answers depend on a small place at the picture's edge?

Grad-CAM works at the resolution of the last convolution: 2×2 to 4×4 cells for a 64 px picture in
VGG16, coarser than any border strip, so it cannot see a side marker in a corner. This test does
not depend on the network's layers: it changes the pictures and watches the answers.

For each sampled validation image and each region (:func:`regions`: the four corners, each
:data:`CORNER` of the side, and the four edge strips, :data:`STRIP` of the side wide) the model
answers two altered copies:

* **masked**: the region filled with the image's own median colour (per channel), so whatever is
  there (a letter, a ruler, a frame) is gone and nothing new is drawn;
* **swapped**: the region taken from another sampled image that the model answers differently
  (the "donor"): a side marker that decides the class carries the donor's class with it.

Each edge region is compared with a central control of the same shape and area (a corner with the
central square, a strip with the band through the middle). A region is flagged when the answers it
changes (masked: the answer is no longer the model's first answer; swapped: it becomes the donor's)
are at least :data:`MIN_RATE` of the images and the lower end of their 95% Wilson interval lies
above the upper end of the control's, or when masking lowers the model's confidence in its answer
by :data:`MIN_DROP` on average and, image by image, clearly more than masking the control does
(the 95% interval of the excess above :data:`MIN_DROP_EXCESS`): the model's answers hang on that
small place off the object much more than on the same area of the middle. Everything is predicted in batches; the cost is
``images × (1 + 2 × 11)`` predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.evaluation.intervals import wilson
from cnn_studio.predict.predictor import predict_probabilities

CORNER = 0.25
STRIP = 0.125
MIN_RATE = 0.25
MIN_CHANGED = 4
MIN_DROP = 0.2
MIN_DROP_EXCESS = 0.1
MIN_PAIRED = 8
PREDICT_BATCH = 32
TASK = "Checking for shortcuts"

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the model's input


@dataclass(frozen=True)
class Region:
    """A place tested by masking: ``box`` in fractions of the model input; ``control`` its central twin."""

    name: str
    words: str
    box: Box
    control: str = ""


def regions() -> tuple[Region, ...]:
    """The eight edge regions, then the three central controls they are compared with."""
    c, s, lo, hi = CORNER, STRIP, 0.5 - CORNER / 2, 0.5 + CORNER / 2
    return (
        Region("top_left", "top-left corner", (0.0, 0.0, c, c), "centre"),
        Region("top_right", "top-right corner", (1 - c, 0.0, 1.0, c), "centre"),
        Region("bottom_left", "bottom-left corner", (0.0, 1 - c, c, 1.0), "centre"),
        Region("bottom_right", "bottom-right corner", (1 - c, 1 - c, 1.0, 1.0), "centre"),
        Region("top", "top edge", (0.0, 0.0, 1.0, s), "middle_row"),
        Region("bottom", "bottom edge", (0.0, 1 - s, 1.0, 1.0), "middle_row"),
        Region("left", "left edge", (0.0, 0.0, s, 1.0), "middle_column"),
        Region("right", "right edge", (1 - s, 0.0, 1.0, 1.0), "middle_column"),
        Region("centre", "centre", (lo, lo, hi, hi)),
        Region("middle_row", "middle row", (0.0, 0.5 - s / 2, 1.0, 0.5 + s / 2)),
        Region("middle_column", "middle column", (0.5 - s / 2, 0.0, 0.5 + s / 2, 1.0)),
    )


def pixel_box(box: Box, size: int) -> tuple[int, int, int, int]:
    """``box`` in pixels of a ``size`` × ``size`` input: (x0, y0, x1, y1), at least one pixel each way."""
    x0, y0, x1, y1 = (int(round(v * size)) for v in box)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def masked(images: np.ndarray, box: Box) -> np.ndarray:
    """A copy of ``images`` ``[N, S, S, C]`` with ``box`` filled by each image's median colour."""
    out = np.array(images, np.float32, copy=True)
    x0, y0, x1, y1 = pixel_box(box, out.shape[1])
    out[:, y0:y1, x0:x1, :] = np.median(out, axis=(1, 2))[:, None, None, :]
    return out


def swapped(images: np.ndarray, donors: np.ndarray, box: Box) -> np.ndarray:
    """A copy of ``images`` with ``box`` taken from ``donors`` (same shape)."""
    out = np.array(images, np.float32, copy=True)
    x0, y0, x1, y1 = pixel_box(box, out.shape[1])
    out[:, y0:y1, x0:x1, :] = donors[:, y0:y1, x0:x1, :]
    return out


def pick_donors(answers: Sequence[int]) -> np.ndarray:
    """For each image, the next one (cyclically) the model answers differently; -1 when there is none."""
    answers = np.asarray(answers)
    n = len(answers)
    out = np.full(n, -1, np.int64)
    for i in range(n):
        for step in range(1, n):
            j = (i + step) % n
            if answers[j] != answers[i]:
                out[i] = j
                break
    return out


def _predict(model, batch: np.ndarray) -> np.ndarray:
    return np.concatenate([predict_probabilities(model, batch[i:i + PREDICT_BATCH])
                           for i in range(0, len(batch), PREDICT_BATCH)])


def occlusion_answers(model, images: np.ndarray, *, sink: ev.EventSink = ev.null_sink,
                      cancel: CancelToken | None = None, chunk: int = 4) -> dict[str, np.ndarray]:
    """The model's probabilities for ``images`` as they are, and masked and swapped at every region.

    Returns ``{"base": [N, K], "donors": [N], "masked:<region>": [N, K], "swapped:<region>": [N, K]}``
    (a swapped row of an image without a donor repeats its base row). Emits ``TaskProgress`` per
    ``chunk`` images.
    """
    n = len(images)
    sink(ev.TaskProgress(TASK, 0, n, f"{TASK}: masking corners and edges, 0/{n} images"))
    base = _predict(model, images) if n else np.zeros((0, 0))
    donors = pick_donors(base.argmax(axis=1)) if n else np.zeros(0, np.int64)
    donor_images = images[np.where(donors >= 0, donors, np.arange(n))] if n else images
    out: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, chunk):
        raise_if_cancelled(cancel)
        part, donor_part = images[start:start + chunk], donor_images[start:start + chunk]
        variants = [(f"masked:{r.name}", masked(part, r.box)) for r in regions()]
        variants += [(f"swapped:{r.name}", swapped(part, donor_part, r.box)) for r in regions()]
        probs = _predict(model, np.concatenate([v for _, v in variants]))
        for k, (name, _) in enumerate(variants):
            out.setdefault(name, []).append(probs[k * len(part):(k + 1) * len(part)])
        done = min(n, start + chunk)
        sink(ev.TaskProgress(TASK, done, n, f"{TASK}: masking corners and edges, {done}/{n} images"))
    result = {name: np.concatenate(parts) for name, parts in out.items()}
    return {"base": base, "donors": donors, **result}


def _measure(changed: np.ndarray, n: int) -> dict[str, Any]:
    count = int(changed.sum())
    low, high = wilson(count, n)
    return {"changed": count, "n": int(n), "rate": count / n if n else 0.0, "low": low, "high": high}


def measure_regions(answers: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per region: how many answers masking changes and swapping hands to the donor, and the confidence drop."""
    base, donors = answers["base"], answers["donors"]
    first = base.argmax(axis=1)
    rows = np.arange(len(base))
    has_donor = donors >= 0
    donor_answer = first[np.where(has_donor, donors, 0)] if len(base) else first
    out = {}
    for r in regions():
        m, s = answers[f"masked:{r.name}"], answers[f"swapped:{r.name}"]
        mask_changed = m.argmax(axis=1) != first
        swap_changed = has_donor & (s.argmax(axis=1) == donor_answer)
        out[r.name] = {"masked": _measure(mask_changed, len(base)),
                       "swapped": _measure(swap_changed, int(has_donor.sum())),
                       "confidence_drop": float(np.mean(base[rows, first] - m[rows, first])) if len(base) else 0.0,
                       "drops": base[rows, first] - m[rows, first],
                       "masked_images": np.nonzero(mask_changed)[0].tolist(),
                       "swapped_images": np.nonzero(swap_changed)[0].tolist()}
    return out


def _stands_out(row: dict[str, Any], control: dict[str, Any]) -> bool:
    return (row["changed"] >= MIN_CHANGED and row["rate"] >= MIN_RATE and row["low"] > control["high"])


def _drop_gap(drops: np.ndarray, control: np.ndarray) -> float | None:
    """The paired excess of masking's confidence drop over the control's, when it is clearly there.

    Given when the region's mean drop is at least :data:`MIN_DROP` and the lower end of the 95%
    interval of the per-image excess is at least :data:`MIN_DROP_EXCESS` (on :data:`MIN_PAIRED`
    images or more); ``None`` otherwise.
    """
    d = np.asarray(drops, np.float64) - np.asarray(control, np.float64)
    if len(d) < MIN_PAIRED or float(np.mean(drops)) < MIN_DROP:
        return None
    low = float(d.mean() - 1.96 * d.std(ddof=1) / np.sqrt(len(d)))
    return float(d.mean()) if low >= MIN_DROP_EXCESS else None


def _region_gap(row: dict[str, Any], ctl: dict[str, Any]) -> float | None:
    gaps = [row[k]["rate"] - ctl[k]["rate"] for k in ("masked", "swapped") if _stands_out(row[k], ctl[k])]
    drop = _drop_gap(row["drops"], ctl["drops"])
    gaps += [drop] if drop is not None else []
    return max(gaps) if gaps else None


def _touches(corner: Region, strip: Region) -> bool:
    (a0, b0, a1, b1), (c0, d0, c1, d1) = corner.box, strip.box
    return a0 < c1 and c0 < a1 and b0 < d1 and d0 < b1


def flagged_regions(measures: dict[str, dict[str, Any]]) -> list[tuple[Region, float]]:
    """The edge regions whose answers or confidence stand out from their control's, strongest first.

    The strength is the largest gap to the control (change rates, or the mean confidence drop). A
    corner inside the strongest edge strip comes first when it has at least half the strip's gap:
    the smaller place is the more specific answer (a side marker sits in a corner and in both
    strips through it).
    """
    found = []
    for r in regions():
        if r.control:
            gap = _region_gap(measures[r.name], measures[r.control])
            if gap is not None:
                found.append((r, gap))
    found.sort(key=lambda t: -t[1])
    if found and found[0][0].control != "centre":
        best, gap = found[0]
        corner = next((t for t in found if t[0].control == "centre" and _touches(t[0], best) and t[1] >= gap / 2),
                      None)
        if corner is not None:
            found.remove(corner)
            found.insert(0, corner)
    return found


def _count_words(row: dict[str, Any]) -> str:
    return f"{row['changed']} of {row['n']}"


def _affected(measure: dict[str, Any], answers: dict[str, np.ndarray], region: Region, keys: Sequence[str],
              class_names: Sequence[str]) -> list[dict[str, Any]]:
    """The images whose answer the region changed, most changed first, with what the model said."""
    first = answers["base"].argmax(axis=1)
    m = answers[f"masked:{region.name}"]
    s = answers[f"swapped:{region.name}"]
    rows = np.arange(len(first))
    drop = answers["base"][rows, first] - m[rows, first]
    masked_set, swapped_set = set(measure["masked_images"]), set(measure["swapped_images"])
    hit = sorted(masked_set | swapped_set, key=lambda i: (-((i in masked_set) + (i in swapped_set)), -drop[i], i))
    return [{"key": str(keys[i]), "answer": class_names[first[i]],
             "masked_answer": class_names[int(m[i].argmax())], "swapped_answer": class_names[int(s[i].argmax())],
             "masked_changed": i in masked_set, "swapped_changed": i in swapped_set,
             "confidence_drop": round(float(drop[i]), 4)} for i in hit]


def describe_finding(region: Region, measures: dict[str, dict[str, Any]], image_size: int) -> str:
    """The finding in words, with its counts and the control's."""
    row, ctl = measures[region.name], measures[region.control]
    x0, y0, x1, y1 = pixel_box(region.box, image_size)
    area = (x1 - x0) * (y1 - y0) / image_size ** 2
    where = {"centre": "in the centre", "middle_row": "across the middle", "middle_column": "down the middle"}
    same = "the same area" if region.control == "centre" else "a band as large"
    text = (f"The model's answers depend on the {region.words}: masking it ({x1 - x0}×{y1 - y0} px, "
            f"{area:.0%} of the picture) changes {_count_words(row['masked'])} answers and lowers its confidence "
            f"in its answer by {row['confidence_drop']:.2f} on average; masking {same} {where[region.control]} "
            f"changes {_count_words(ctl['masked'])} ({ctl['confidence_drop']:.2f}).")
    if row["swapped"]["n"]:
        text += (f" Swapping in the {region.words} of a picture it answers differently makes it give that "
                 f"picture's answer in {_count_words(row['swapped'])} images (the same swap "
                 f"{where[region.control]}: {_count_words(ctl['swapped'])}).")
    return text + " It may be reading a marker, a label, a ruler or a frame there instead of the object."


def occlusion_verdict(answers: dict[str, np.ndarray], keys: Sequence[str], class_names: Sequence[str],
                      image_size: int) -> dict[str, Any]:
    """The occlusion test's result (JSON-ready): ``suspected``, the region and its box, the message,
    the affected images, and every region's counts (``regions``).
    """
    measures = measure_regions(answers)
    table = {name: {k: v for k, v in row.items() if not k.endswith("_images") and k != "drops"}
             for name, row in measures.items()}
    out: dict[str, Any] = {"suspected": False, "n_images": int(len(answers["base"])), "region": "", "box": None,
                           "message": "", "affected": [], "regions": table, "also": [],
                           "rule": (f"an edge region (corners {CORNER:.0%} of the side, edge strips {STRIP:.1%}) "
                                    f"whose masking or swapping changes ≥ {MIN_RATE:.0%} (≥ {MIN_CHANGED}) of the "
                                    "answers, its 95% interval above that of a central region of the same area; "
                                    f"or whose masking lowers the confidence by ≥ {MIN_DROP} on average, the "
                                    f"paired excess over the central region's ≥ {MIN_DROP_EXCESS} (95% interval)")}
    found = flagged_regions(measures)
    if not found:
        worst = max((r for r in regions() if r.control), key=lambda r: table[r.name]["masked"]["rate"])
        most = table[worst.name]["masked"]
        out["message"] = ("Masking the corners and edges changes no answers." if not most["changed"] else
                          f"Masking the corners and edges changes few answers (at most {_count_words(most)}, "
                          f"at the {worst.words}; the centre {_count_words(table['centre']['masked'])}).")
        return out
    region = found[0][0]
    out.update(suspected=True, region=region.words, region_key=region.name, box=list(region.box),
               message=describe_finding(region, measures, image_size),
               affected=_affected(measures[region.name], answers, region, keys, class_names),
               also=[r.words for r, _ in found[1:]])
    return out


def box_on_picture(box: Box, original_size: tuple[int, int], image_size: int, resize: str = "stretch") -> Box:
    """``box`` (fractions of the model's square input) as fractions of the original ``(H, W)`` picture.

    Undoes the pipeline's resize policy as :func:`cnn_studio.explain.gradcam.heatmap_on_original`
    does: "stretch" keeps the fractions, "crop" places them on the central square, "pad" removes
    the padding bands (a box in the padding is clipped to the picture's edge).
    """
    h, w = float(original_size[0]), float(original_size[1])
    x0, y0, x1, y1 = box
    if resize == "crop":
        side = min(h, w)
        left, top = (w - side) / 2, (h - side) / 2
        return ((left + x0 * side) / w, (top + y0 * side) / h, (left + x1 * side) / w, (top + y1 * side) / h)
    if resize == "pad":
        scale = image_size / max(h, w)
        cw, ch = w * scale / image_size, h * scale / image_size  # the picture's share of the square
        ox, oy = (1 - cw) / 2, (1 - ch) / 2
        clip = lambda v: min(1.0, max(0.0, v))  # noqa: E731
        return (clip((x0 - ox) / cw), clip((y0 - oy) / ch), clip((x1 - ox) / cw), clip((y1 - oy) / ch))
    return (x0, y0, x1, y1)
