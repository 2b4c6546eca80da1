"""Image files (or record keys) → float32 batches exactly as a trained model takes them, and its probabilities.

Files are decoded and resized as in training (:func:`cnn_studio.data.pipeline.load_image`, reduced
while read), in parallel threads; a file that cannot be read, or whose channel count is not the
model's (:func:`input_mismatch`), becomes an error row and never ends the batch. Every part of CNN
Studio that runs a model over files (classify, evaluate, the review after training, export checks,
explanations, label suggestions) reads them here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cnn_studio.core.errors import ImageReadError
from cnn_studio.data.bands import is_multiband_key, probe_bands
from cnn_studio.data.pipeline import load_image
from cnn_studio.data.records import parse_key


def _read(key: str, image_size: int, resize: str) -> np.ndarray | str:
    """Decoded (a picture reduced while read, so a huge one costs about its target size), resized as in
    training: RGB 0–255, or a multi-band file's raw bands."""

    try:
        return load_image(key, image_size, resize, reduce=True)
    except ImageReadError as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - one bad file must never end the batch
        return f"could not read {Path(key).name}: {exc}"


def _channel_error(found: int, expected: int) -> str:
    what = lambda n: "an RGB picture" if n == 3 else f"{n} band{'s' if n != 1 else ''}"  # noqa: E731
    return (f"has {what(found)}, but the model takes {what(expected)}: give it files like the ones it was "
            "trained on")


def input_mismatch(key: str | os.PathLike[str], found: int, expected: int, *, pictures_only: bool = False) -> str | None:
    """Why the file ``key``, read with ``found`` channels, cannot go to a model taking ``expected``; None if it can.

    ``pictures_only``: the model is known to take RGB pictures (a run without bands.json), so a
    multi-band file (``.npy``, a multi-band TIFF: raw band values, not 0–255 colours) is refused
    even when it has three bands.
    """
    name = Path(parse_key(os.fspath(key))[0]).name
    if found != expected:
        return f"{name} {_channel_error(found, expected)}"
    if pictures_only and is_multiband_key(os.fspath(key)):
        return (f"{name} is a multi-band file (raw band values), but the model was trained on RGB pictures: "
                "give it pictures like the ones it was trained on (PNG, JPEG, ...)")
    return None


def check_model_input(key: str | os.PathLike[str], expected: int, *, pictures_only: bool = False) -> None:
    """Raise :class:`ImageReadError` (the reason :func:`input_mismatch` gives) before ``key`` is explained
    by a model taking ``expected`` channels; reads only the file's header."""
    k = os.fspath(key)
    found = probe_bands(parse_key(k)[0]).bands if is_multiband_key(k) else 3
    problem = input_mismatch(k, found, expected, pictures_only=pictures_only)
    if problem:
        raise ImageReadError(problem, "Use a file of the kind the model was trained on, or a model trained on "
                                      "files like this one.")


def iter_image_batches(paths: Sequence[str | os.PathLike[str]], image_size: int, resize: str = "stretch",
                       batch_size: int = 32, channels: int | None = None, *, pictures_only: bool = False,
                       ) -> Iterator[tuple[list[int], np.ndarray, dict[int, str]]]:
    """Decode ``paths`` (files or record keys) in batches (files read in parallel threads).

    ``channels``: what the model takes (3 for pictures, N for a multi-band model); a file with
    another channel count is an error row. None: the first readable file sets it. ``pictures_only``:
    see :func:`input_mismatch`.

    Yields
    ------
    (indices, images, errors)
        ``indices`` of the readable files in this batch, their float32 ``[n, S, S, C]`` pixels (raw
        0–255 RGB, or raw band values), and ``{index: reason}`` for the unreadable ones.
    """
    workers = max(1, min(8, os.cpu_count() or 1))
    expected = channels
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), batch_size):
            chunk = list(range(start, min(start + batch_size, len(paths))))
            results = list(pool.map(lambda i: _read(os.fspath(paths[i]), image_size, resize), chunk))
            if expected is None:
                expected = next((int(r.shape[-1]) for r in results if not isinstance(r, str)), None)
            results = [r if isinstance(r, str) else input_mismatch(paths[i], int(r.shape[-1]), int(expected or 3),
                                                                    pictures_only=pictures_only) or r
                       for i, r in zip(chunk, results, strict=True)]
            ok = [i for i, r in zip(chunk, results, strict=True) if not isinstance(r, str)]
            errors = {i: r for i, r in zip(chunk, results, strict=True) if isinstance(r, str)}
            images = (np.stack([r for r in results if not isinstance(r, str)]) if ok
                      else np.zeros((0, image_size, image_size, expected or 3), np.float32))
            yield ok, images, errors


def predict_probabilities(model, images: np.ndarray) -> np.ndarray:
    """Softmax outputs of ``model`` for a float32 batch, as a float64 numpy array (no Keras progress bar)."""
    if len(images) == 0:
        n = int(model.outputs[0].shape[-1])
        return np.zeros((0, n))
    return np.asarray(model.predict_on_batch(images), dtype=np.float64)
