"""ImageRecords → ``tf.data`` datasets of raw 0–255 pixels, fast, cached and fault-tolerant.

Two decode paths share one pipeline:

* **TensorFlow-native** (``tf.io.decode_image``) for 8-bit RGB/grey JPEG, PNG, BMP and GIF — the
  fast path, parallel in C++ with ``AUTOTUNE``.
* **Python readers** (:func:`cnn_studio.data.decode.decode_file` via ``tf.numpy_function``) for
  everything TensorFlow would get wrong or cannot read: JPEGs with an EXIF orientation other than
  1 (TF ignores EXIF), 16-bit PNG, palette/alpha images (composited on white, like the rest of the
  app), TIFF, WebP, DICOM, NIfTI. This map is parallel too (Pillow, tifffile and numpy release the
  GIL while decoding), so exotic formats do not serialise the pipeline on one core. Measured with
  ``bench/pipeline.py`` (2,000 256² JPEGs, 2 shared cores): ~1,000 images/s through this path
  vs ~1,900 through the TF path, so only the files that need it take it.

Which path a file takes is decided in Python when the dataset is built, from the scan's header
facts (``ImageRecord.fmt``/``.mode``) plus one EXIF read per JPEG (~30 µs a file, measured).
Both paths are one stream (``tf.cond`` per image), so images leave in the order of their records
(unless shuffled) and each carries its record key (``make_dataset(..., with_keys=True)`` hands it
out): whoever pairs images with records never depends on which reader a file needed.

Decoded images are resized by a *policy* (``stretch``, ``pad`` to square keeping the aspect, or
centre ``crop``), rounded to ``uint8`` and cached (memory or disk) **before** shuffling,
augmentation and batching, so from the second epoch on nothing is decoded again and the cache
holds a quarter of what float32 would. Backbone preprocessing is *not* here: it is inside the model.

Multi-band images (``ImageRecord.bands > 0``: GeoTIFF/TIFF with N bands, ``.npy`` arrays) take their
own branch: :func:`cnn_studio.data.bands.read_bands` gives float32 ``(H, W, N)`` with the RAW values,
resized as float32 and cached as float32 (never rounded to uint8 nor clipped to 0–255; the model
normalises each band itself). Their augmentation is geometric only (flip, rotate, zoom): contrast
and brightness are defined on 0–255 pictures and are left out, with a note (:func:`multiband_augment`).
A dataset that mixes pictures and arrays, or arrays of different band counts, is refused.

Unreadable files found only now (a truncated JPEG the header scan could not see) are dropped
and recorded in a :class:`SkipLog`; an epoch never crashes on one bad file.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.core.errors import ConfigError, ImageReadError
from cnn_studio.data import bands as band_io
from cnn_studio.data.augment import build_augmenter, multiband_augment
from cnn_studio.data.decode import decode_key
from cnn_studio.data.pipeline_decode import CACHE_BATCH, SkipLog, decoded_blocks, resize_image
from cnn_studio.data.records import CACHE_MODES, RESIZE_POLICIES, ImageRecord, Split

_IMPORTED_AT = time.time()  # lock files older than this were left by another (dead) process




@dataclass
class Datasets:
    """The train/val/test datasets of one split and what they contain."""

    train: Any
    val: Any
    test: Any | None
    class_names: tuple[str, ...]
    train_count: int
    val_count: int
    test_count: int
    steps_per_epoch: int
    image_size: int
    skips: SkipLog




def _disk_cache_prefix(records: Sequence[ImageRecord], image_size: int, resize: str, cache_dir: str | Path,
                       name: str, n_bands: int = 0) -> str:
    """The cache file prefix for exactly these records, size and policy; clears a crashed run's leftovers.

    The name carries a fingerprint of (path, label, byte size) of every record, so a changed split or
    an edited file never reads a stale cache. TensorFlow only renames its cache into place when a
    pass completes (an interrupted pass leaves no cache), but a *killed* process leaves its lock
    file behind, which would make every later run fail with "concurrent caching iterator"; lock
    and temp files older than this process are therefore removed.
    """
    layout = f"{image_size}|{resize}|batched{CACHE_BATCH}|keyed" + (f"|float32x{n_bands}" if n_bands else "")
    digest = hashlib.sha1(layout.encode())  # the cache's element layout
    for r in records:
        digest.update(f"{r.path}\t{r.label}\t{r.size_bytes}\n".encode("utf-8", "surrogateescape"))
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"{name}_{image_size}_{resize}_{digest.hexdigest()[:12]}"
    for leftover in [*folder.glob(f"{prefix}_*.lockfile"), *folder.glob(f"{prefix}*.tempstate*")]:
        try:
            if leftover.stat().st_mtime < _IMPORTED_AT:
                leftover.unlink()
        except OSError:
            pass  # already gone, or not ours to remove: TF will say so
    return str(folder / prefix)


@dataclass(frozen=True)
class DatasetOptions:
    """How :func:`make_dataset` reads, caches, orders and hands out the images.

    ``resize``: "stretch", "pad" (keep aspect, black bars) or "crop" (centre square).
    ``shuffle``, ``seed``: reshuffle every epoch with a fixed seed (training only).
    ``shuffle_buffer``: images the per-epoch shuffle holds (None: all of them, a second copy of the decoded
    set in memory). A smaller buffer keeps a disk cache's memory bounded: the records are then put in a
    seeded random order once, before decoding, and each epoch shuffles within the buffer.
    ``augment``: names from :data:`cnn_studio.data.augment.AUGMENTATIONS`, applied per batch (training only).
    ``cache``: "memory", "disk" (a file in ``cache_dir`` named after ``cache_name``) or "none" ("auto" is
    resolved before, by :func:`cnn_studio.training.cache_choice.choose_image_cache`). The cache holds
    decoded, resized uint8 and is filled during the first complete pass; a pass that stops early (cancel)
    keeps no cache and the next pass decodes again. Disk cache names carry a fingerprint of the records.
    ``drop_remainder``: leave out a last, smaller batch.
    ``skips``: a :class:`SkipLog` that collects dropped files (a new one if None).
    ``dtype``: "float32" (default), or "uint8" to hand a Keras model the cached bytes as they are: the
    model casts its input itself (on the GPU, when there is one), so a quarter of the bytes leave the
    pipeline. Augmentation works on floats, so with ``augment`` the batches are float32 anyway.
    ``with_keys``: add a third element to each batch, its record keys (``ImageRecord.key`` as bytes).
    """

    resize: str = "stretch"
    shuffle: bool = False
    seed: int = 0
    augment: Sequence[str] = ()
    cache: str = "memory"
    cache_dir: str | Path | None = None
    cache_name: str = "data"
    drop_remainder: bool = False
    skips: SkipLog | None = None
    dtype: str = "float32"
    shuffle_buffer: int | None = None
    with_keys: bool = False


def make_dataset(records: Sequence[ImageRecord], image_size: int, batch_size: int,
                 options: DatasetOptions | None = None, **fields: Any):
    """Build a batched dataset of ``(float32 [B,S,S,3] raw 0–255, int32 [B])`` from records.

    ``records``: the images and their labels; ``image_size``: side ``S`` of the square output;
    ``batch_size``: images per batch; ``options`` (default :class:`DatasetOptions`), with any of its
    fields given as keywords (``fields``) instead.

    Without ``shuffle`` the images come out in the order of ``records`` (dropped files left out),
    whatever reader each one needs; ``with_keys`` adds a third element, the batch's record keys
    (``ImageRecord.key`` as UTF-8/filesystem bytes), for callers that pair images with records.

    Multi-band records (``bands = N``) give ``float32 [B,S,S,N]`` raw values (whatever ``dtype`` asks),
    cached as float32; ``augment`` keeps its geometric names only (:func:`multiband_augment`).

    Returns
    -------
    tf.data.Dataset

    Examples
    --------
    >>> ds = make_dataset(split.train, 224, 32, shuffle=True, augment=("flip",))  # doctest: +SKIP
    """
    import tensorflow as tf

    o = replace(options or DatasetOptions(), **fields)
    _check_dataset_options(o)
    skips = o.skips if o.skips is not None else SkipLog()
    records, buffer = _ordered(records, o)
    ds, n_bands = decoded_blocks(records, image_size, o.resize, skips)
    augment = multiband_augment(o.augment)[0] if n_bands else o.augment
    # The cache holds the blocks of up to CACHE_BATCH images (with their labels and keys) that _decoded yields.
    if o.cache == "memory":
        ds = ds.cache()
    elif o.cache == "disk":
        ds = ds.cache(_disk_cache_prefix(records, image_size, o.resize, o.cache_dir, o.cache_name, n_bands))
    ds = _batched(ds, batch_size, o, buffer)
    if not o.with_keys:
        ds = ds.map(lambda x, y, k: (x, y))
    return without_autotune(_pixels_for_model(ds, augment, o.seed, o.dtype, multiband=bool(n_bands))
                            .prefetch(tf.data.AUTOTUNE))


def without_autotune(ds):
    """``ds`` (and whatever is built on it) with tf.data's autotuning off: parallel maps then take one call per
    core and prefetching a small buffer of its own.

    Found in a profile of the fine-tune phase on 2 CPU cores (TensorFlow 2.21): each time an iterator
    ends (Keras makes one per epoch) its destruction waits for the autotuning thread to wake, often
    about 2 s with the CPU idle, and that thread competes with the training for the cores. With
    bench/autotune_stalls.py, 8 epochs of VGG16's block5 on cached activations took 23.7 s without
    autotuning and 29.9 s with it (slowest epoch 3.6 against 5.2 s); a small CNN on decoded images
    took the same time either way.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _batched(ds, batch_size: int, o: DatasetOptions, buffer: int):
    """The cached blocks re-cut into batches of ``batch_size``, shuffled per epoch within ``buffer`` images."""
    if o.shuffle or o.drop_remainder or batch_size != CACHE_BATCH:  # else the blocks are the batches
        ds = ds.unbatch()
        if o.shuffle:
            ds = ds.shuffle(max(buffer, 1), seed=o.seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=o.drop_remainder)
    return ds


def _check_dataset_options(o: DatasetOptions) -> None:
    """ConfigError for a pixel type, resize policy or cache mode :func:`make_dataset` does not take."""
    dtype, resize, cache, cache_dir = o.dtype, o.resize, o.cache, o.cache_dir
    if dtype not in ("float32", "uint8"):
        raise ConfigError(f"Pixel type: expected float32 or uint8, received {dtype!r}.")
    if resize not in RESIZE_POLICIES:
        raise ConfigError(f"Resize policy: expected one of {', '.join(RESIZE_POLICIES)}, received {resize!r}.")
    if cache not in CACHE_MODES or cache == "auto":
        raise ConfigError(f"Cache: expected memory, disk or none, received {cache!r}.",
                          "'auto' is decided by the trainer from the memory available "
                          "(cnn_studio.training.cache_choice.choose_image_cache); pass its mode.")
    if cache == "disk" and cache_dir is None:
        raise ConfigError("cache='disk' needs a cache folder.", "Pass cache_dir, or use cache='memory'.")


def _ordered(records: Sequence[ImageRecord], o: DatasetOptions) -> tuple[list[ImageRecord], int]:
    """The records in decoding order and the shuffle buffer's size: with a buffer smaller than the set, the
    records are put in a seeded random order once (a folder's class order must not survive a small buffer)."""
    records = list(records)
    buffer = len(records) if o.shuffle_buffer is None else max(1, min(int(o.shuffle_buffer), len(records)))
    if o.shuffle and buffer < len(records):
        records = [records[i] for i in np.random.default_rng(o.seed).permutation(len(records))]
    return records, buffer


def _pixels_for_model(ds, augment: Sequence[str], seed: int, dtype: str, *, multiband: bool):
    """Augment (training) and cast the batches ``(x, y[, keys])``: only ``x`` changes."""
    import tensorflow as tf

    augmenter = build_augmenter(augment, seed=seed) if augment else None

    def on_x(fn):
        return lambda x, *rest: (fn(x), *rest)

    autotune = tf.data.AUTOTUNE
    if multiband:
        if augmenter is not None:  # raw band values: no 0–255 clipping
            ds = ds.map(on_x(lambda x: augmenter(x, training=True)), num_parallel_calls=autotune)
    elif dtype == "float32" or augmenter is not None:
        ds = ds.map(on_x(lambda x: tf.cast(x, tf.float32)), num_parallel_calls=autotune)
        if augmenter is not None:
            ds = ds.map(on_x(lambda x: tf.clip_by_value(augmenter(x, training=True), 0.0, 255.0)),
                        num_parallel_calls=autotune)
    return ds


def make_datasets(split: Split, image_size: int, batch_size: int, options: DatasetOptions | None = None,
                  **fields: Any) -> Datasets:
    """Train (shuffled, augmented), val and test datasets of a :class:`Split` sharing one :class:`SkipLog`.

    ``options`` (with ``fields`` as keywords instead) are the training set's; val and test take only
    its ``resize``, ``cache``, ``cache_dir`` and ``dtype`` (never shuffled nor augmented).
    """
    train_options = replace(options or DatasetOptions(), **fields)
    skips = SkipLog()
    common = dict(resize=train_options.resize, cache=train_options.cache, cache_dir=train_options.cache_dir,
                  skips=skips, dtype=train_options.dtype)
    train = make_dataset(split.train, image_size, batch_size, replace(train_options, shuffle=True,
                                                                      cache_name="train", skips=skips))
    val = make_dataset(split.val, image_size, batch_size, cache_name="val", **common)
    test = make_dataset(split.test, image_size, batch_size, cache_name="test", **common) if split.test else None
    steps = max(1, -(-len(split.train) // batch_size))
    return Datasets(train=train, val=val, test=test, class_names=tuple(split.class_names),
                    train_count=len(split.train), val_count=len(split.val), test_count=len(split.test),
                    steps_per_epoch=steps, image_size=image_size, skips=skips)


# ---------------------------------------------------------------------------- single images


def load_image(path: str | Path, image_size: int, resize: str = "stretch", *, reduce: bool = False) -> np.ndarray:
    """One file or record key → what the model takes, decoded and resized as the pipeline does.

    A picture (or a slice of a volume, ``path#slice=AXIS:INDEX``) gives float32 ``(S, S, 3)`` raw
    0–255; a multi-band file (:func:`cnn_studio.data.bands.is_multiband`) float32 ``(S, S, N)`` with
    its raw band values. ``reduce``: a large picture is reduced while it is read (see ``decode_file``).

    Raises :class:`~cnn_studio.core.errors.ImageReadError` for an unreadable file.
    """

    key = os.fspath(path)
    if band_io.is_multiband_key(key):
        return resize_image(band_io.read_bands(key), image_size, resize).numpy().astype(np.float32)
    img = resize_image(decode_key(key, reduce_to=image_size if reduce else None), image_size, resize)
    return np.round(np.clip(img.numpy(), 0, 255)).astype(np.float32)


def load_images(paths: Sequence[str | Path], image_size: int, resize: str = "stretch") -> np.ndarray:
    """Several files → float32 ``(N, S, S, C)`` (C = 3, or the band count of multi-band files);
    raises on the first unreadable file, or when the files do not all have C channels."""
    if not paths:
        return np.zeros((0, image_size, image_size, 3), np.float32)
    images = [load_image(p, image_size, resize) for p in paths]
    counts = sorted({int(i.shape[-1]) for i in images})
    if len(counts) > 1:
        raise ImageReadError(f"The images have different channel counts ({', '.join(map(str, counts))}).",
                             "Give only pictures, or only multi-band files with the same bands.")
    return np.stack(images)
