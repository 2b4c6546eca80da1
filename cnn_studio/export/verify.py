"""Check an export: run it in its own runtime on real images and compare with the Keras model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_studio.errors import ExportError
from cnn_studio.export.formats import ExportFormat
from cnn_studio.training.run_folder import RunInfo

N_SAMPLES = 4


@dataclass(frozen=True)
class SampleImages:
    """The images an export is checked on; ``real`` is False when no image of the run could be read."""

    images: np.ndarray
    paths: tuple[str, ...]
    real: bool


def sample_images(run: RunInfo, image_size: int, sample_paths: Sequence[str | Path] | None = None,
                  n: int = N_SAMPLES) -> SampleImages:
    """Up to ``n`` readable images: ``sample_paths``, else the run's test then val then train images.

    Falls back to seeded random pixels (``real=False``) when none can be read.
    """
    from cnn_studio.predict import iter_image_batches

    if sample_paths:
        candidates = [str(p) for p in sample_paths]
    elif run.split is not None:
        candidates = [r.path for r in (*run.split.test, *run.split.val, *run.split.train)]
    else:
        candidates = []
    got: list[np.ndarray] = []
    paths: list[str] = []
    for start in range(0, len(candidates), n):
        for ok, images, _errors in iter_image_batches(candidates[start : start + n], image_size,
                                                       run.config.resize, batch_size=n):
            got += list(images)
            paths += [candidates[start + i] for i in ok]
        if len(got) >= n:
            break
    if got:
        return SampleImages(np.stack(got[:n]).astype(np.float32), tuple(paths[:n]), True)
    noise = np.random.default_rng(0).uniform(0, 255, (n, image_size, image_size, 3)).astype(np.float32)
    return SampleImages(noise, (), False)


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
