"""Where a backbone's weights come from: the app's weights store, Keras' cache, the download, a user's file, or none.

:func:`weights_status` says whether a file of the right name is in Keras' own cache
(``$KERAS_HOME/models``, default ``~/.keras/models``) without importing TensorFlow; whether weights
actually *load* offline is :func:`cnn_studio.backbones.weights_store.offline_status` (what the app
shows as "available offline"). :func:`resolve_weights` decides what to load: for ImageNet the store
first, then Keras' cache (loaded by us: Keras' ``get_file`` is never called on it, so a user's file
is never deleted), then the download into the store; offline that is :class:`WeightsUnavailable`
naming the file, its address and the import command. :func:`load_weights_file` loads a file and
explains one that does not fit.
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

from cnn_studio.backbones.registry import BackboneSpec, get
from cnn_studio.errors import WeightsUnavailable
from cnn_studio.keras_archive import check_keras_archive
from cnn_studio.paths import keras_cache_dir

WEIGHTS_SUFFIXES = (".h5", ".weights.h5", ".keras")
WEIGHTS_KINDS = ("imagenet", "none", "file")
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


def default_weights(spec: BackboneSpec) -> str:
    """The weights a backbone gets when none were given: "imagenet" when it has pretrained weights, else "none"."""
    return "imagenet" if spec.has_pretrained_weights else "none"


@dataclass(frozen=True)
class WeightsStatus:
    """Whether ImageNet weights are usable without a download, and what to tell the user."""

    available: bool
    source: str  # "cache" | "none" | "not_applicable"
    path: str | None
    message: str


def weights_status(spec: BackboneSpec | str, image_size: int | None = None) -> WeightsStatus:
    """Look for the backbone's no-top ImageNet weights in the Keras cache (no download, no TF).

    Parameters
    ----------
    spec : a :class:`BackboneSpec` or its key.
    image_size : the training image size (MobileNetV2's file depends on it; others ignore it).

    Returns
    -------
    WeightsStatus
        ``source`` is "cache" (file present), "none" (not downloaded yet) or "not_applicable"
        (a backbone without pretrained weights, e.g. ``small_cnn``).
    """
    spec = get(spec)
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


def weights_origin(spec: BackboneSpec | str, image_size: int | None = None) -> str | None:
    """The URL Keras downloads the no-top ImageNet weights from (None without pretrained weights)."""
    spec = get(spec)
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


def offline_error(spec: BackboneSpec | str, image_size: int | None = None, cause: str = "") -> WeightsUnavailable:
    """The short error for ImageNet weights that are not here and could not be downloaded.

    It names the file, the address to fetch it from on another computer and how to bring it in
    (``cnn-studio weights import FILE`` / "Import weights file…"). A technical ``cause`` goes to the
    log, never into the message.
    """
    spec = get(spec)
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


def resolve_weights(spec: BackboneSpec | str, weights: str, image_size: int | None = None) -> str | None:
    """What to pass as the constructor's ``weights``: ``None``, ``"imagenet"`` or a file path.

    Parameters
    ----------
    spec : a :class:`BackboneSpec` or its key.
    weights : "none" (train from scratch), "imagenet", or the path of a .h5/.weights.h5/.keras file.
    image_size : the training image size (selects MobileNetV2's weights file).

    Returns
    -------
    str or None
        ``None`` for "none"; for ImageNet the store's file path, else ``"imagenet"`` when a file of
        that name is in Keras' cache (:func:`build_backbone` loads it itself), else the path of the
        file just downloaded into the store; the file path for a local file.

    Raises
    ------
    WeightsUnavailable
        ImageNet weights neither cached nor downloadable (offline), a backbone without ImageNet
        weights, a missing file or a file that is not a Keras weights file.
    """
    spec = get(spec)
    choice = parse_weights(weights)
    if choice.kind == "none":
        return None
    if choice.kind == "imagenet":
        if not spec.has_pretrained_weights:
            raise WeightsUnavailable(f"{spec.label} has no ImageNet weights.",
                                     "Use weights: none (it is designed to train from scratch).")
        from cnn_studio.backbones.weights_store import download_weights, stored  # noqa: PLC0415 - the two modules import each other

        entry = stored(spec)  # 1. the app's own store (imported or downloaded files, checked)
        if entry is not None:
            return entry.path
        if weights_status(spec, image_size).available:  # 2. Keras' cache: loaded by us, never get_file
            return "imagenet"
        return download_weights(spec, image_size).path  # 3. the download, into the store
    path = Path(choice.path)
    if not path.is_file():
        raise WeightsUnavailable(f"The weights file {path} does not exist.",
                                 "Choose the file again, or start from ImageNet weights or from none (train from scratch) instead.")
    if not path.name.endswith(WEIGHTS_SUFFIXES):
        raise WeightsUnavailable(
            f"{path.name} is not a Keras weights file: expected a name ending in {', '.join(WEIGHTS_SUFFIXES)}.",
            "Use the .h5 file Keras downloads (e.g. from ~/.keras/models) or a .weights.h5 saved by Keras.")
    return str(path)


def load_weights_file(base_model, path: str | Path, spec: BackboneSpec | str | None = None) -> None:
    """Load a user's weights file into a headless backbone, or say clearly why it does not fit.

    Keras 3 skips parts of a file that match no layer with only a warning ("will retain their
    freshly-initialized weights"); such a partial load is treated as a mismatch too, so a model
    never trains silently from half-random weights.

    Raises
    ------
    WeightsUnavailable
        "This file does not fit VGG16: expected 26 weight arrays (14.7 M parameters), received ...";
        also a file whose values are not all finite numbers (NaN, inf), and a ``.keras`` archive
        that would unpack to far more than its size (:mod:`cnn_studio.keras_archive`).
    """

    label = get(spec).label if spec is not None else base_model.name
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
    received = _describe_arrays(_file_shapes(Path(path)))
    detail = ""
    if expected == received:  # same counts, still refused: pass on Keras' own first line
        first = str(error or partial[0].message).strip().splitlines()
        detail = f" ({first[0][:200]})" if first else ""
    raise WeightsUnavailable(
        f"The weights file {Path(path).name} does not fit {label}: expected {expected}, received {received}{detail}.",
        "Choose the no-top weights file made for this backbone"
        + (f" (e.g. {get(spec).weights_file_notop})" if spec is not None and get(spec).weights_file_notop else "")
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

    from cnn_studio.backbones.weights_store import h5_layout  # noqa: PLC0415 - the two modules import each other

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


def _file_shapes(path: Path) -> list[tuple[int, ...]] | None:
    """The shapes of every array stored in an .h5/.weights.h5 file or a .keras archive (None if unreadable)."""
    import h5py

    shapes: list[tuple[int, ...]] = []

    def visit(_name, obj):
        if isinstance(obj, h5py.Dataset) and obj.shape:
            shapes.append(tuple(obj.shape))

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as member:
                with h5py.File(member, "r") as f:
                    f.visititems(visit)
        else:
            with h5py.File(path, "r") as f:
                f.visititems(visit)
    except (OSError, KeyError, ValueError):
        return None
    return shapes


@contextmanager
def imagenet_download(spec: BackboneSpec | str, image_size: int | None = None, timeout_s: float = 30.0):
    """Around a constructor called with ``weights="imagenet"``: Keras' own cache or download.

    Keras' ``get_file`` finds the cached file or downloads it. Offline, the download fails (a bare
    ``Exception("URL fetch failure ...")`` wrapping a ``URLError``); that becomes
    :class:`WeightsUnavailable` naming the file and the folder to copy it into. A socket timeout
    (only if none is set) keeps a network that drops packets from hanging the build forever.
    """
    spec = get(spec)
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
