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
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cnn_studio.core.errors import ConfigError, ImageReadError
from cnn_studio.data import bands as band_io
from cnn_studio.data.augment import build_augmenter, multiband_augment
from cnn_studio.data.decode import decode_key
from cnn_studio.data.records import CACHE_MODES, RESIZE_POLICIES, ImageRecord, Split

_END_MARK = "\x00end-of-pass:"
_END_MARK_RE = "\x00end-of-pass:.*"
_TF_NATIVE_FORMATS = {"JPEG", "PNG", "BMP", "GIF"}
_TF_NATIVE_MODES = {"RGB", "L"}
_IMPORTED_AT = time.time()  # lock files older than this were left by another (dead) process


@dataclass
class SkipLog:
    """Files the pipeline dropped, with the reason; filled while datasets are iterated.

    Thread-safe: decode threads append concurrently.
    """

    entries: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _expected: dict[str, set[str]] = field(default_factory=dict, repr=False)  # per TF-decoded dataset
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            self.entries.setdefault(path, reason)

    def expect(self, group: str, paths: Sequence[str]) -> None:
        with self._lock:
            self._expected[group] = set(paths)

    def mark_seen(self, path: str) -> None:
        """Record a decoded path; the end marker of a group logs the group's dropped files."""
        if path.startswith(_END_MARK):
            group = path[len(_END_MARK):]
            with self._lock:
                missing = self._expected.get(group, set()) - self._seen
            for p in missing:
                self.add(p, "unreadable (the file is damaged or truncated)")
            return
        with self._lock:
            self._seen.add(path)

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self.entries)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.entries)


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


# ---------------------------------------------------------------------------- routing


def _jpeg_is_rotated(path: str) -> bool:
    """True when a JPEG carries an EXIF orientation other than 1 (reads the header only)."""

    try:
        with Image.open(path) as img:
            return int(img.getexif().get(0x0112, 1) or 1) != 1
    except Exception:  # noqa: BLE001 - unreadable → let the Python reader report why
        return True


def needs_python_reader(record: ImageRecord) -> bool:
    """Whether ``record`` must be decoded by the Python readers instead of TensorFlow."""
    fmt = (record.fmt or "").upper()
    if fmt not in _TF_NATIVE_FORMATS or record.slice_index is not None or record.bands:
        return True
    if record.mode and record.mode not in _TF_NATIVE_MODES:
        return True  # 16-bit, palette, alpha, CMYK ...
    if fmt == "JPEG":
        return _jpeg_is_rotated(record.path)
    return False


# ---------------------------------------------------------------------------- resize


def resize_image(image, image_size: int, policy: str = "stretch"):
    """Resize one ``(H, W, C)`` image tensor to ``(S, S, C)`` float32 by ``policy``."""
    import tensorflow as tf

    if policy not in RESIZE_POLICIES:
        raise ConfigError(f"Resize policy: expected one of {', '.join(RESIZE_POLICIES)}, received {policy!r}.")
    image = tf.cast(image, tf.float32)
    size = [image_size, image_size]
    if policy == "pad":
        return tf.image.resize_with_pad(image, image_size, image_size)
    if policy == "crop":
        shape = tf.shape(image)
        side = tf.minimum(shape[0], shape[1])
        top = (shape[0] - side) // 2
        left = (shape[1] - side) // 2
        image = image[top : top + side, left : left + side, :]
    return tf.image.resize(image, size)


def _to_uint8(image):
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


# ---------------------------------------------------------------------------- datasets


def _python_decoder(skips: SkipLog):
    def decode(key_bytes: bytes) -> tuple[np.ndarray, np.bool_]:
        path = os.fsdecode(key_bytes)  # the record's own key (a non-UTF-8 name keeps its bytes)
        try:
            return decode_key(path), np.bool_(True)
        except ImageReadError as exc:
            skips.add(path, getattr(exc, "reason", "unreadable"))
        except Exception as exc:  # noqa: BLE001 - one bad file must never end the epoch
            skips.add(path, f"unreadable: {exc}")
        return np.zeros((1, 1, 3), np.uint8), np.bool_(False)

    return decode


def _band_decoder(skips: SkipLog, n_bands: int):
    def decode(key_bytes: bytes) -> tuple[np.ndarray, np.bool_]:
        path = os.fsdecode(key_bytes)
        try:
            arr = band_io.read_bands(path)  # a multi-band record's key is its path
            if arr.shape[2] != n_bands:
                skips.add(path, f"has {arr.shape[2]} bands; the other images have {n_bands}")
            else:
                return arr, np.bool_(True)
        except ImageReadError as exc:
            skips.add(path, getattr(exc, "reason", "unreadable"))
        except Exception as exc:  # noqa: BLE001 - one bad file must never end the epoch
            skips.add(path, f"unreadable: {exc}")
        return np.zeros((1, 1, n_bands), np.float32), np.bool_(False)

    return decode


def _decoded_bands(records: Sequence[ImageRecord], n_bands: int, image_size: int, resize: str, skips: SkipLog):
    """The multi-band branch of :func:`_decoded`: blocks of (float32 ``(≤CACHE_BATCH, S, S, N)`` raw values,
    labels, record keys), in record order."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    decode = _band_decoder(skips, n_bands)

    def load(key, label):
        img, ok = tf.numpy_function(decode, [key], (tf.float32, tf.bool), stateful=False)
        img.set_shape([None, None, n_bands])
        return img, label, key, ok

    def resize_bands(img, label, key, ok):
        return resize_image(img, image_size, resize), label, key  # float32, raw values: no rounding, no clipping

    ds = tf.data.Dataset.from_tensor_slices(([os.fsencode(r.key) for r in records],
                                             np.array([r.label for r in records], np.int32)))
    ds = ds.map(load, num_parallel_calls=autotune, deterministic=True)
    ds = ds.filter(lambda img, label, key, ok: ok)
    ds = ds.map(resize_bands, num_parallel_calls=autotune, deterministic=True)
    return ds.batch(CACHE_BATCH)


CACHE_BATCH = 32
"""Images per block in the decoded-image cache (and per batch when it matches ``batch_size``)."""


def _read_ok(key, img, label, ok):
    return ok


def _without_flag(key, img, label, ok):
    return key, img, label


def _decoded(records: Sequence[ImageRecord], image_size: int, resize: str, skips: SkipLog):
    """Blocks ``(uint8 (≤CACHE_BATCH,S,S,3), int32 labels, string record keys)`` in record order; bad files
    dropped and logged (None when there are no records).

    One stream in record order: each record takes TensorFlow's decoder or the Python readers
    (``tf.cond`` per image, decided here by :func:`needs_python_reader`), so a dataset that mixes
    PNGs with 16-bit TIFFs or DICOMs comes out in the order of its records (two branches
    concatenated used to put every Python-read image after the others), and each image carries its key.

    Blocks, not single images: the cache and the bookkeeping below then cost per block (tf.data's
    per-element overhead made the first epoch ~25 % slower than Keras' loader in bench/pipeline.py).
    """
    import tensorflow as tf

    if not records:
        return None
    autotune = tf.data.AUTOTUNE
    slow = np.array([needs_python_reader(r) for r in records], bool)  # EXIF header read once per JPEG (~30 µs)
    keys = [os.fsencode(r.key) for r in records]  # bytes: TF cannot take a non-UTF-8 name as str
    group = f"{id(keys)}-{len(skips._expected)}"
    skips.expect(group, [r.key for r in records])
    python_decode = _python_decoder(skips)

    def mark_seen(key_bytes: np.ndarray) -> np.bool_:
        for k in key_bytes:  # one trip into Python (and its GIL) per block, not per image
            skips.mark_seen(os.fsdecode(k))
        return np.bool_(True)

    def load(key, label, by_python):
        def native():  # a file TF cannot decode raises here, and is dropped by ignore_errors below
            return tf.io.decode_image(tf.io.read_file(key), channels=3, expand_animations=False), tf.constant(True)

        def python():
            img, ok = tf.numpy_function(python_decode, [key], (tf.uint8, tf.bool), stateful=False)
            return img, tf.reshape(ok, [])

        img, ok = tf.cond(by_python, python, native)
        img.set_shape([None, None, 3])
        return key, _to_uint8(resize_image(img, image_size, resize)), label, ok

    def note(key, img, label):
        seen = tf.numpy_function(mark_seen, [key], tf.bool, stateful=True)
        keep = tf.logical_not(tf.strings.regex_full_match(key, _END_MARK_RE))
        with tf.control_dependencies([seen]):
            return tf.boolean_mask(img, keep), tf.boolean_mask(label, keep), tf.boolean_mask(key, keep)

    ds = tf.data.Dataset.from_tensor_slices((keys, np.array([r.label for r in records], np.int32), slow))
    ds = ds.map(load, num_parallel_calls=autotune, deterministic=True)
    ds = ds.ignore_errors()  # a file TF cannot decode is dropped here ...
    ds = ds.filter(_read_ok).map(_without_flag)
    end = tf.data.Dataset.from_tensors(
        (tf.constant(_END_MARK + group), tf.zeros([image_size, image_size, 3], tf.uint8), tf.constant(0, tf.int32)))
    ds = ds.concatenate(end)  # ... and logged when the end-of-pass marker goes by
    # sequential, so the end marker is seen after every file before it
    ds = ds.batch(CACHE_BATCH).map(note)
    return ds.filter(lambda img, label, key: tf.size(label) > 0)  # a block that held only the marker


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


def make_dataset(records: Sequence[ImageRecord], image_size: int, batch_size: int, *, resize: str = "stretch",
                 shuffle: bool = False, seed: int = 0, augment: Sequence[str] = (), cache: str = "memory",
                 cache_dir: str | Path | None = None, cache_name: str = "data", drop_remainder: bool = False,
                 skips: SkipLog | None = None, dtype: str = "float32", shuffle_buffer: int | None = None,
                 with_keys: bool = False):
    """Build a batched dataset of ``(float32 [B,S,S,3] raw 0–255, int32 [B])`` from records.

    Without ``shuffle`` the images come out in the order of ``records`` (dropped files left out),
    whatever reader each one needs; ``with_keys`` adds a third element, the batch's record keys
    (``ImageRecord.key`` as UTF-8/filesystem bytes), for callers that pair images with records.

    Multi-band records (``bands = N``) give ``float32 [B,S,S,N]`` raw values (whatever ``dtype`` asks),
    cached as float32; ``augment`` keeps its geometric names only (:func:`multiband_augment`).

    Parameters
    ----------
    records : the images and their labels (``ImageRecord.path``, ``.label``, ``.fmt``, ``.mode``).
    image_size : side ``S`` of the square output.
    batch_size : images per batch.
    resize : "stretch", "pad" (keep aspect, black bars) or "crop" (centre square).
    shuffle, seed : reshuffle every epoch with a fixed seed (training only).
    shuffle_buffer : images the per-epoch shuffle holds (None: all of them, a second copy of the decoded
        set in memory). A smaller buffer keeps a disk cache's memory bounded: the records are then put in
        a seeded random order once, before decoding, and each epoch shuffles within the buffer.
    augment : names from :data:`cnn_studio.data.augment.AUGMENTATIONS`, applied per batch (training only).
    cache : "memory", "disk" (a file in ``cache_dir``) or "none" ("auto" is resolved before, by
        :func:`cnn_studio.training.cache_choice.choose_image_cache`). The cache holds decoded, resized uint8
        and is filled during the first complete pass; a pass that stops early (cancel) keeps no cache
        and the next pass decodes again. Disk cache names carry a fingerprint of the records.
    skips : a :class:`SkipLog` that collects dropped files (a new one if None).
    dtype : "float32" (default), or "uint8" to hand a Keras model the cached bytes as they are: the
        model casts its input itself (on the GPU, when there is one), so a quarter of the bytes leave
        the pipeline. Augmentation works on floats, so with ``augment`` the batches are float32 anyway.

    Returns
    -------
    tf.data.Dataset

    Examples
    --------
    >>> ds = make_dataset(split.train, 224, 32, shuffle=True, augment=("flip",))  # doctest: +SKIP
    """
    import tensorflow as tf

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
    skips = skips if skips is not None else SkipLog()
    records = list(records)
    buffer = len(records) if shuffle_buffer is None else max(1, min(int(shuffle_buffer), len(records)))
    if shuffle and buffer < len(records):  # a folder's class order must not survive a small buffer
        records = [records[i] for i in np.random.default_rng(seed).permutation(len(records))]
    n_bands, _ = band_io.dataset_band_layout(records)
    if n_bands:
        ds = _decoded_bands(records, n_bands, image_size, resize, skips)
        augment, _dropped = multiband_augment(augment)
    else:
        ds = _decoded(records, image_size, resize, skips)
    if ds is None or not records:
        ds = tf.data.Dataset.from_tensor_slices(
            (np.zeros((0, image_size, image_size, n_bands or 3), np.float32 if n_bands else np.uint8),
             np.zeros((0,), np.int32), np.zeros((0,), np.bytes_))).batch(CACHE_BATCH)
    # The cache holds the blocks of up to CACHE_BATCH images (with their labels and keys) that _decoded yields.
    if cache == "memory":
        ds = ds.cache()
    elif cache == "disk":
        ds = ds.cache(_disk_cache_prefix(records, image_size, resize, cache_dir, cache_name, n_bands))
    if shuffle or drop_remainder or batch_size != CACHE_BATCH:  # else the blocks are the batches
        ds = ds.unbatch()
        if shuffle:
            ds = ds.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if not with_keys:
        ds = ds.map(lambda x, y, k: (x, y))
    return _pixels_for_model(ds, augment, seed, dtype, multiband=bool(n_bands)).prefetch(tf.data.AUTOTUNE)


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


def make_datasets(split: Split, image_size: int, batch_size: int, *, resize: str = "stretch",
                  augment: Sequence[str] = (), cache: str = "memory", cache_dir: str | Path | None = None,
                  seed: int = 0, dtype: str = "float32", shuffle_buffer: int | None = None) -> Datasets:
    """Train (shuffled, augmented), val and test datasets of a :class:`Split` sharing one :class:`SkipLog`."""
    skips = SkipLog()
    common = dict(resize=resize, cache=cache, cache_dir=cache_dir, skips=skips, dtype=dtype)
    train = make_dataset(split.train, image_size, batch_size, shuffle=True, seed=seed, augment=augment,
                         cache_name="train", shuffle_buffer=shuffle_buffer, **common)
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
