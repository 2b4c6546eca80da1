"""Where a backbone's weights come from: the app's weights store, Keras' cache, the download, a user's file, or none.

:func:`parse_weights` reads a weights setting. :func:`weights_status` says whether a file of the right
name is in Keras' own cache (``$KERAS_HOME/models``, default ``~/.keras/models``) without importing
TensorFlow; whether weights actually *load* offline is
:func:`cnn_studio.backbones.weights_store.offline_status` (what the app shows as "available offline"), and
what to load (store, Keras' cache, download) is :func:`cnn_studio.backbones.weights_store.resolve_weights`.
Offline, :func:`offline_error` names the file, its address and the import command.
:func:`load_weights_file` loads a file and explains one that does not fit.
Imports go one way: registry → weights_files → weights → weights_store → classifier.
"""

from __future__ import annotations

import logging
import math
import socket
import tempfile
import urllib.error
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_studio.backbones.registry import WEIGHTS_KINDS as WEIGHTS_KINDS
from cnn_studio.backbones.registry import Backbone
from cnn_studio.backbones.weights_files import array_shapes, h5_layout
from cnn_studio.core.errors import WeightsUnavailable
from cnn_studio.core.keras_archive import check_keras_archive
from cnn_studio.core.paths import keras_cache_dir

WEIGHTS_SUFFIXES = (".h5", ".weights.h5", ".keras")
NONE_WORDS = ("none", "scratch", "random")  # all mean: no pretrained weights, train from scratch
WEIGHTS_HELP = "imagenet, none (from scratch; also 'scratch' or 'random') or the path of a weights file"


@dataclass(frozen=True)
class WeightsChoice:
    """A ``weights`` setting read once: ``kind`` is "imagenet", "none" or "file" (then ``path`` is set)."""

    kind: str
    path: str | None = None

    @property
    def pretrained(self) -> bool:
        """True when training starts from learned weights (so a frozen-backbone head phase makes sense)."""
        return self.kind != "none"

    @property
    def value(self) -> str:
        """The canonical setting: "imagenet", "none" or the file path (what a run folder records)."""
        return self.path if self.kind == "file" and self.path else self.kind

    def describe(self) -> str:
        """Plain words for people: "ImageNet weights", "from scratch" or "a weights file"."""
        return {"imagenet": "ImageNet weights", "none": "from scratch"}.get(self.kind, "a weights file")


def parse_weights(weights: str | None) -> WeightsChoice:
    """The one reading of a ``weights`` setting (config, CLI, pages, trainer, model card).

    Case and surrounding spaces are ignored; ``None``, "", "none", "scratch" and "random" all mean
    no pretrained weights; "imagenet" means Keras' ImageNet weights; anything else is a file path
    (``~`` expanded). No file system access: :func:`resolve_weights` checks that the file exists.
    """
    w = (weights or "none").strip()
    if w.lower() in NONE_WORDS or not w:
        return WeightsChoice("none")
    if w.lower() == "imagenet":
        return WeightsChoice("imagenet")
    return WeightsChoice("file", str(Path(w).expanduser()))


@dataclass(frozen=True)
class WeightsStatus:
    """Whether ImageNet weights are usable without a download, and what to tell the user."""

    available: bool
    source: str  # "cache" | "none" | "not_applicable"
    path: str | None
    message: str


def weights_status(spec: Backbone, image_size: int | None = None) -> WeightsStatus:
    """Look for the backbone's no-top ImageNet weights in the Keras cache (no download, no TF).

    Parameters
    ----------
    spec : the :class:`~cnn_studio.backbones.registry.Backbone`.
    image_size : the training image size (MobileNetV2's file depends on it; others ignore it).

    Returns
    -------
    WeightsStatus
        ``source`` is "cache" (file present), "none" (not downloaded yet) or "not_applicable"
        (a backbone without pretrained weights, e.g. ``small_cnn``).
    """
    name = spec.weights_file_for(image_size)
    if name is None:
        return WeightsStatus(False, "not_applicable", None,
                             f"{spec.label} has no pretrained weights: it always trains from scratch.")
    path = keras_cache_dir() / name
    if path.is_file() and path.stat().st_size > 0:
        return WeightsStatus(True, "cache", str(path), f"ImageNet weights are available offline ({path}).")
    return WeightsStatus(False, "none", str(path),
                         f"ImageNet weights not downloaded yet: Keras will fetch {name} on first use "
                         f"(needs internet), or put the file at {path}.")


def weights_origin(spec: Backbone, image_size: int | None = None) -> str | None:
    """The URL Keras downloads the no-top ImageNet weights from (None without pretrained weights)."""
    name = spec.weights_file_for(image_size)
    if name is None:
        return None
    return _ORIGIN_BASE.get(spec.key, _KERAS_APPS + spec.key.replace("_", "") + "/") + name


_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_ORIGIN_BASE = {  # as in keras/src/applications/*.py (BASE_WEIGHTS_PATH / WEIGHTS_PATH_NO_TOP)
    "mobilenet_v2": _KERAS_APPS + "mobilenet_v2/",
    "mobilenet_v3_small": _KERAS_APPS + "mobilenet_v3/",
    "mobilenet_v3_large": _KERAS_APPS + "mobilenet_v3/",
    "efficientnet_b0": "https://storage.googleapis.com/keras-applications/",
    "efficientnet_b1": "https://storage.googleapis.com/keras-applications/",
    "efficientnet_b2": "https://storage.googleapis.com/keras-applications/",
    "efficientnet_b3": "https://storage.googleapis.com/keras-applications/",
    "efficientnet_v2_b0": _KERAS_APPS + "efficientnet_v2/",
    "resnet50": _KERAS_APPS + "resnet/",
    "resnet50_v2": _KERAS_APPS + "resnet/",
    "vgg16": _KERAS_APPS + "vgg16/",
    "vgg19": _KERAS_APPS + "vgg19/",
    "inception_v3": _KERAS_APPS + "inception_v3/",
    "xception": _KERAS_APPS + "xception/",
    "densenet121": _KERAS_APPS + "densenet/",
    "convnext_tiny": _KERAS_APPS + "convnext/",
}


def offline_error(spec: Backbone, image_size: int | None = None, cause: str = "") -> WeightsUnavailable:
    """The short error for ImageNet weights that are not here and could not be downloaded.

    It names the file, the address to fetch it from on another computer and how to bring it in
    (``cnn-studio weights import FILE`` / "Import weights file…"). A technical ``cause`` goes to the
    log, never into the message.
    """
    name = spec.weights_file_for(image_size)
    folder = keras_cache_dir()
    if cause:
        logging.getLogger(__name__).warning("ImageNet weights for %s: %s", spec.key, cause)
    return WeightsUnavailable(
        f"The ImageNet weights for {spec.label} ({name}) are not on this computer (not in CNN Studio's "
        f"weights or in {folder}) and could not be downloaded.",
        f"On a computer with internet, download {weights_origin(spec, image_size)}, then bring the file "
        f"here and run `cnn-studio weights import FILE` (in the app: Model step, \"Import weights file…\"), "
        f"or copy it unchanged into {folder}. Or choose a local weights file, or train from scratch "
        "(weights: none).",
    )


def load_weights_file(base_model, path: str | Path, spec: Backbone | None = None) -> None:
    """Load a user's weights file into a headless backbone, or say clearly why it does not fit.

    Keras 3 skips parts of a file that match no layer with only a warning ("will retain their
    freshly-initialized weights"); such a partial load is treated as a mismatch too, so a model
    never trains silently from half-random weights.

    Raises
    ------
    WeightsUnavailable
        "This file does not fit VGG16: expected 26 weight arrays (14.7 M parameters), received ...";
        also a file whose values are not all finite numbers (NaN, inf), and a ``.keras`` archive
        that would unpack to far more than its size (:mod:`cnn_studio.core.keras_archive`).
    """

    label = spec.label if spec is not None else base_model.name
    if zipfile.is_zipfile(path):
        check_keras_archive(path, WeightsUnavailable)
    error: Exception | None = None
    with warnings.catch_warnings(record=True) as caught, _named_for_its_layout(Path(path)) as readable:
        warnings.simplefilter("always")
        try:
            base_model.load_weights(str(readable))
        except Exception as exc:  # noqa: BLE001 - h5py/Keras raise ValueError, KeyError, OSError ...
            error = exc
    partial = [w for w in caught if "freshly-initialized" in str(w.message) or "could not be loaded" in str(w.message)]
    if error is None and not partial:
        _check_finite(base_model, Path(path), label)
        return
    expected = _describe_arrays([tuple(v.shape) for v in base_model.weights])
    received = _describe_arrays(array_shapes(path))
    detail = ""
    if expected == received:  # same counts, still refused: pass on Keras' own first line
        first = str(error or partial[0].message).strip().splitlines()
        detail = f" ({first[0][:200]})" if first else ""
    raise WeightsUnavailable(
        f"The weights file {Path(path).name} does not fit {label}: expected {expected}, received {received}{detail}.",
        "Choose the no-top weights file made for this backbone"
        + (f" (e.g. {spec.weights_file_notop})" if spec is not None and spec.weights_file_notop else "")
        + ", or start from ImageNet weights or from none (train from scratch) instead.",
    ) from error


def _check_finite(base_model, path: Path, label: str) -> None:
    """Refuse weights that are not numbers (NaN) or infinite: a model built on them only ever says NaN."""
    bad = 0
    for variable in base_model.weights:
        values = np.asarray(variable)
        if values.dtype.kind == "f":
            bad += int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise WeightsUnavailable(
            f"The weights file {path.name} has the right arrays for {label}, but {bad:,} of its values are not "
            "numbers (NaN) or are infinite: a model started from it could only answer NaN.",
            "The file is damaged or was not made by training: use Keras' original download, or start from "
            "ImageNet weights or from none (train from scratch) instead.")


@contextmanager
def _named_for_its_layout(path: Path):
    """``path``, or a link to it whose name makes Keras pick the loader its content needs.

    Keras picks the loader by suffix: a ``.weights.h5`` file renamed to ``….h5`` (or the reverse)
    would be refused as "expected 26 weight arrays, received 26 weight arrays".
    """

    name = path.name
    layout = h5_layout(path) if name.endswith(".h5") else None
    suffix = {"legacy": ".h5", "keras3": ".weights.h5"}.get(layout or "")
    if suffix is None or name.endswith(".weights.h5") == (suffix == ".weights.h5"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="cnn-studio-weights-") as tmp:
        link = Path(tmp) / ("weights" + suffix)
        link.symlink_to(path.resolve())
        yield link


def _describe_arrays(shapes: list[tuple[int, ...]] | None) -> str:
    if shapes is None:
        return "a file Keras cannot read"
    params = sum(math.prod(s) for s in shapes)
    return f"{len(shapes)} weight arrays ({params / 1e6:.2f} M parameters)"


@contextmanager
def imagenet_download(spec: Backbone, image_size: int | None = None, timeout_s: float = 30.0):
    """Around a constructor called with ``weights="imagenet"``: Keras' own cache or download.

    Keras' ``get_file`` finds the cached file or downloads it. Offline, the download fails (a bare
    ``Exception("URL fetch failure ...")`` wrapping a ``URLError``); that becomes
    :class:`WeightsUnavailable` naming the file and the folder to copy it into. A socket timeout
    (only if none is set) keeps a network that drops packets from hanging the build forever.
    """
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(timeout_s)
    try:
        yield
    except Exception as exc:
        if _is_download_failure(exc):
            raise offline_error(spec, image_size, str(exc).strip().splitlines()[0][:200]) from exc
        if "corrupted file" in str(exc) or "Incomplete" in str(exc):
            raise WeightsUnavailable(
                f"The downloaded ImageNet weights for {spec.label} are damaged ({spec.weights_file_for(image_size)}).",
                f"Delete {keras_cache_dir() / (spec.weights_file_for(image_size) or '')} and try again, "
                "or train from scratch (weights: none).") from exc
        raise
    finally:
        if previous is None:
            socket.setdefaulttimeout(None)


def _is_download_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # the exception and what it was raised from / during
        if seen is None:
            return False
        if isinstance(seen, urllib.error.URLError | TimeoutError | ConnectionError) or "URL fetch failure" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
