"""Check an export: run it in its own runtime on real images and compare with the Keras model.

Two rules, one per kind of export:

* **float32** exports must reproduce the trained model's probabilities: the largest difference on
  :data:`N_SAMPLES` real images must stay within the format's tolerance
  (:meth:`~cnn_studio.export.formats.ExportFormat.tolerance`).
* **quantized** exports (float16, dynamic-range int8, full-integer int8) are judged the way users
  judge them, by their *answers* on the run's validation images (all of them, or a seeded sample
  of :data:`N_JUDGED` = 300): the share of images on which the export's top answer equals the
  trained model's (top-1 agreement), and both models' accuracy on those labelled images. Small
  shifts in probabilities are expected and only reported. The export is refused only when its
  answers change materially (:func:`material_change`):

  - its accuracy falls by more than :data:`MAX_ACCURACY_DROP` = 2 percentage points **and** it
    gets at least :data:`MIN_IMAGES_CHANGED` = 2 more images wrong than the trained model; or
  - its top answer differs from the trained model's on more than :data:`MAX_DISAGREEMENT` = 10%
    of the images **and** on at least :data:`MIN_IMAGES_CHANGED` = 2 of them.

  One changed image on a tiny validation set is never enough to refuse (it cannot be told from
  noise); an output that is not finite, or of the wrong shape, always is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_studio.core.errors import ExportError
from cnn_studio.data.bands import read_run_bands
from cnn_studio.export.formats import ExportFormat
from cnn_studio.predict.predictor import iter_image_batches
from cnn_studio.runs.run_folder import RunInfo

N_SAMPLES = 4
N_JUDGED = 300
N_REPRESENTATIVE = 100
MAX_ACCURACY_DROP = 0.02
MAX_DISAGREEMENT = 0.10
MIN_IMAGES_CHANGED = 2
SAMPLE_SEED = 0


@dataclass(frozen=True)
class SampleImages:
    """The images an export is checked on; ``real`` is False when no image of the run could be read."""

    images: np.ndarray
    paths: tuple[str, ...]
    real: bool


def sample_images(run: RunInfo, image_size: int, sample_paths: Sequence[str | Path] | None = None,
                  n: int = N_SAMPLES, channels: int = 3) -> SampleImages:
    """Up to ``n`` readable images: ``sample_paths``, else the run's test then val then train images.

    ``channels``: what the model takes (3, or a multi-band model's band count); files with another
    count are passed over. Falls back to seeded random values (``real=False``) when none can be read:
    0–255 for pictures, the training set's band ranges for a multi-band model.
    """

    if sample_paths:
        candidates = [str(p) for p in sample_paths]
    elif run.split is not None:
        candidates = [r.key for r in (*run.split.test, *run.split.val, *run.split.train)]
    else:
        candidates = []
    got: list[np.ndarray] = []
    paths: list[str] = []
    for start in range(0, len(candidates), n):
        for ok, images, _errors in iter_image_batches(candidates[start : start + n], image_size,
                                                       run.config.resize, batch_size=n, channels=channels):
            got += list(images)
            paths += [candidates[start + i] for i in ok]
        if len(got) >= n:
            break
    if got:
        return SampleImages(np.stack(got[:n]).astype(np.float32), tuple(paths[:n]), True)
    rng = np.random.default_rng(0)
    bands = read_run_bands(run.root) if channels != 3 else None
    if bands is not None and len(bands.stats) == channels:
        lo = np.array([s.min for s in bands.stats], np.float32)
        hi = np.array([s.max for s in bands.stats], np.float32)
        noise = (lo + rng.uniform(0, 1, (n, image_size, image_size, channels)) * (hi - lo)).astype(np.float32)
    else:
        noise = rng.uniform(0, 255, (n, image_size, image_size, channels)).astype(np.float32)
    return SampleImages(noise, (), False)


@dataclass(frozen=True)
class LabelledImages:
    """Images with their true labels (``subset``: "validation", "test", "training" or "" for unlabelled)."""

    images: np.ndarray
    labels: np.ndarray
    paths: tuple[str, ...]
    subset: str


def _read(records, image_size: int, resize: str, n: int, seed: int = SAMPLE_SEED,
          channels: int | None = None) -> tuple[list, list, list]:
    """Up to ``n`` readable records (all when fewer; else a seeded sample in their original order)."""

    records = list(records)
    if len(records) > n:
        keep = sorted(np.random.default_rng(seed).choice(len(records), n, replace=False))
        records = [records[i] for i in keep]
    images, labels, paths = [], [], []
    for ok, batch, _errors in iter_image_batches([r.key for r in records], image_size, resize, batch_size=32,
                                                 channels=channels):
        images += list(batch)
        labels += [records[i].label for i in ok]
        paths += [records[i].key for i in ok]
    return images, labels, paths


def judging_images(run: RunInfo, image_size: int, n: int = N_JUDGED, channels: int = 3) -> LabelledImages:
    """The labelled images a quantized export is judged on: the run's validation images (else its test,
    else its training images), all of them or a seeded sample of ``n``."""
    split = run.split
    for subset, records in (("validation", split.val if split else ()), ("test", split.test if split else ()),
                            ("training", split.train if split else ())):
        images, labels, paths = _read(records, image_size, run.config.resize, n, channels=channels)
        if images:
            return LabelledImages(np.stack(images).astype(np.float32), np.asarray(labels, np.int64), tuple(paths),
                                  subset)
    empty = np.zeros((0, image_size, image_size, channels), np.float32)
    return LabelledImages(empty, np.zeros(0, np.int64), (), "")


def representative_images(run: RunInfo, image_size: int, n: int = N_REPRESENTATIVE, channels: int = 3) -> np.ndarray:
    """A seeded sample of up to ``n`` of the run's *training* images (float32 raw pixels), the
    representative set a full-integer export calibrates its activations on."""
    records = run.split.train if run.split is not None else ()
    images, _labels, _paths = _read(records, image_size, run.config.resize, n, channels=channels)
    return (np.stack(images).astype(np.float32) if images
            else np.zeros((0, image_size, image_size, channels), np.float32))


def compare_answers(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None) -> dict:
    """How the export's answers compare with the trained model's.

    Returns ``{n, agreement, changed, accuracy_trained, accuracy_export, accuracy_change, wrong_more,
    max_abs_diff}`` (accuracies None without labels).
    """
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    n = len(reference)
    diff = max_abs_difference(reference, candidate)
    if not np.isfinite(diff):
        return {"n": n, "agreement": 0.0, "changed": n, "accuracy_trained": None, "accuracy_export": None,
                "accuracy_change": None, "wrong_more": n, "max_abs_diff": diff}
    a, b = reference.argmax(axis=1), candidate.argmax(axis=1)
    changed = int((a != b).sum())
    out = {"n": n, "agreement": 1.0 - changed / n if n else 1.0, "changed": changed, "accuracy_trained": None,
           "accuracy_export": None, "accuracy_change": None, "wrong_more": 0, "max_abs_diff": diff}
    if labels is not None and len(labels) == n and n:
        right_a, right_b = int((a == labels).sum()), int((b == labels).sum())
        out.update(accuracy_trained=right_a / n, accuracy_export=right_b / n, accuracy_change=(right_b - right_a) / n,
                   wrong_more=right_a - right_b)
    return out


def material_change(judged: dict) -> str:
    """Why the export's answers changed materially (the module's rule), or "" when they did not."""
    n = judged["n"]
    if not np.isfinite(judged["max_abs_diff"]):
        return "its outputs are not numbers of the right shape"
    drop = -(judged["accuracy_change"] or 0.0)
    if drop > MAX_ACCURACY_DROP and judged["wrong_more"] >= MIN_IMAGES_CHANGED:
        return (f"its accuracy falls from {judged['accuracy_trained']:.1%} to {judged['accuracy_export']:.1%} "
                f"({judged['wrong_more']} more of {n} images wrong; allowed: {MAX_ACCURACY_DROP:.0%} points)")
    if 1.0 - judged["agreement"] > MAX_DISAGREEMENT and judged["changed"] >= MIN_IMAGES_CHANGED:
        return (f"its top answer differs from the trained model's on {judged['changed']} of {n} images "
                f"({1 - judged['agreement']:.1%}; allowed: {MAX_DISAGREEMENT:.0%})")
    return ""


def describe_answers(judged: dict, subset: str = "validation") -> str:
    """One line for people: "same top answer on 99.3% of 300 validation images; accuracy 79.0% → 78.7%"."""
    where = f"{judged['n']} {subset + ' ' if subset else ''}images"
    text = f"same top answer on {judged['agreement']:.1%} of {where}"
    if judged.get("accuracy_trained") is not None:
        change = 100 * (judged["accuracy_export"] - judged["accuracy_trained"])
        text += (f"; accuracy {judged['accuracy_trained']:.1%} → {judged['accuracy_export']:.1%} "
                 f"({change:+.1f} points)")
    return text


def judge_quantized_export(fmt: ExportFormat, path: Path, reference: np.ndarray, judged: LabelledImages,
                           quantization: str) -> dict:
    """Reload a quantized export, run it on ``judged`` and compare its answers with ``reference`` (the
    trained model's probabilities on the same images).

    Returns the :func:`compare_answers` dict. Raises :class:`ExportError` when the export cannot be
    run or its answers change materially (:func:`material_change`).
    """
    try:
        got = fmt.reload(path)(judged.images)
    except Exception as exc:  # noqa: BLE001 - every runtime has its own error types
        raise ExportError(f"The {fmt.label} export could not be run in {fmt.runtime}: {exc}",
                          "Nothing was written. Try another format, and report this problem.") from exc
    result = compare_answers(reference, got, judged.labels if judged.subset else None)
    why = material_change(result)
    if why:
        raise ExportError(
            f"The {quantization} {fmt.label} export changes the model's answers too much: {why}; "
            f"{describe_answers(result, judged.subset)}.",
            "Nothing was written. Try float16 or dynamic-range int8, or a float32 export.")
    return result


def max_abs_difference(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Largest |Δ| between two output arrays; ``inf`` when shapes differ or values are not finite."""
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape or not np.all(np.isfinite(candidate)):
        return float("inf")
    return float(np.max(np.abs(reference - candidate))) if reference.size else 0.0


def verify_export(fmt: ExportFormat, path: Path, reference: np.ndarray, samples: SampleImages,
                  tolerance: float) -> float:
    """Reload ``path`` in its runtime, predict ``samples`` and compare with ``reference``.

    Returns
    -------
    float
        The max |Δ probability|.

    Raises
    ------
    ExportError
        The export cannot be loaded or run, or differs by more than ``tolerance``.
    """
    try:
        predict = fmt.reload(path)
        got = predict(samples.images)
    except Exception as exc:  # noqa: BLE001 - every runtime has its own error types
        raise ExportError(f"The {fmt.label} export could not be run in {fmt.runtime}: {exc}",
                          "Nothing was written. Try another format, and report this problem.") from exc
    diff = max_abs_difference(reference, got)
    if not diff <= tolerance:
        raise ExportError(
            f"The {fmt.label} export does not give the same answers as the trained model "
            f"(largest difference {diff:.3g}, allowed {tolerance:g}, on {len(samples.images)} images).",
            "Nothing was written. Try another format or a float32 export, and report this problem.")
    return diff
