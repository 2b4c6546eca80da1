"""The pipeline's readers: records → decoded, resized blocks of ``(images, labels, keys)`` for ``tf.data``.

Which reader a file takes (:func:`needs_python_reader`: TensorFlow's own decoder, or the Python readers
through ``tf.numpy_function``), the resize policies (:func:`resize_image`), the multi-band branch, and
the :class:`SkipLog` of files dropped while decoding. :mod:`cnn_studio.data.pipeline` (whose docstring
explains the design) caches, shuffles, batches and augments what :func:`decoded_blocks` yields.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from cnn_studio.core.errors import ConfigError, ImageReadError
from cnn_studio.data import bands as band_io
from cnn_studio.data.decode import decode_key
from cnn_studio.data.records import RESIZE_POLICIES, ImageRecord

_END_MARK = "\x00end-of-pass:"
_END_MARK_RE = "\x00end-of-pass:.*"
_TF_NATIVE_FORMATS = {"JPEG", "PNG", "BMP", "GIF"}
_TF_NATIVE_MODES = {"RGB", "L"}


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


def decoded_blocks(records: list[ImageRecord], image_size: int, resize: str, skips: SkipLog):
    """The decoded blocks ``(x, y, keys)`` and the band count (0 for pictures); an empty dataset of the
    right shape when there is nothing to decode."""
    import tensorflow as tf

    n_bands, _ = band_io.dataset_band_layout(records)
    if n_bands:
        ds = _decoded_bands(records, n_bands, image_size, resize, skips)
    else:
        ds = _decoded(records, image_size, resize, skips)
    if ds is None or not records:
        ds = tf.data.Dataset.from_tensor_slices(
            (np.zeros((0, image_size, image_size, n_bands or 3), np.float32 if n_bands else np.uint8),
             np.zeros((0,), np.int32), np.zeros((0,), np.bytes_))).batch(CACHE_BATCH)
    return ds, n_bands
