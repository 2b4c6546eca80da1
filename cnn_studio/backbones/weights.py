"""Where a backbone's weights come from: Keras' ImageNet cache/download, a user's file, or none.

:func:`weights_status` answers "are the ImageNet weights available offline?" by looking for the
file in Keras' own cache (``$KERAS_HOME/models``, default ``~/.keras/models``) without importing
TensorFlow or touching the network. :func:`resolve_weights` decides what to hand to the
constructor and turns an offline download failure into :class:`WeightsUnavailable` that names the
file and the folder to put it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnn_studio.backbones.registry import BackboneSpec, get
from cnn_studio.errors import WeightsUnavailable
from cnn_studio.paths import keras_cache_dir

WEIGHTS_SUFFIXES = (".h5", ".weights.h5", ".keras")


@dataclass(frozen=True)
class WeightsStatus:
    """Whether ImageNet weights are usable without a download, and what to tell the user."""

    available: bool
    source: str  # "cache" | "none" | "not_applicable"
    path: str | None
    message: str


def weights_status(spec: BackboneSpec | str, image_size: int | None = None) -> WeightsStatus:
    """Look for the backbone's no-top ImageNet weights in the Keras cache (no download, no TF)."""
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


def offline_error(spec: BackboneSpec, image_size: int | None = None, cause: str = "") -> WeightsUnavailable:
    name = spec.weights_file_for(image_size)
    folder = keras_cache_dir()
    return WeightsUnavailable(
        f"The ImageNet weights for {spec.label} ({name}) are not on this computer and could not be "
        f"downloaded{': ' + cause if cause else ''}.",
        f"Copy {name} into {folder} (from a computer with internet, where Keras keeps it in "
        f"~/.keras/models), or choose a local weights file, or train from scratch (weights: none).",
    )


def resolve_weights(spec: BackboneSpec | str, weights: str, image_size: int | None = None) -> str | None:
    """What to pass as the constructor's ``weights``: ``None``, ``"imagenet"`` or a file path.

    ``"imagenet"`` is returned as is — Keras' own ``get_file`` then finds the cached file or
    downloads it; :func:`build_backbone` turns a failed download into :class:`WeightsUnavailable`.

    Raises
    ------
    WeightsUnavailable
        For a missing file, a wrong suffix, or ImageNet weights a backbone does not have.
    """
    spec = get(spec)
    w = (weights or "none").strip()
    if w.lower() in ("none", "scratch", "random"):
        return None
    if w.lower() == "imagenet":
        if not spec.has_pretrained_weights:
            raise WeightsUnavailable(f"{spec.label} has no ImageNet weights.",
                                     "Use weights: none (it is designed to train from scratch).")
        return "imagenet"
    path = Path(w).expanduser()
    if not path.is_file():
        raise WeightsUnavailable(f"The weights file {path} does not exist.",
                                 "Choose the file again, or use weights: imagenet or none.")
    if not path.name.endswith(WEIGHTS_SUFFIXES):
        raise WeightsUnavailable(
            f"{path.name} is not a Keras weights file: expected a name ending in {', '.join(WEIGHTS_SUFFIXES)}.",
            "Use the .h5 file Keras downloads (e.g. from ~/.keras/models) or a .weights.h5 saved by Keras.")
    return str(path)


def load_weights_file(model, path: str | Path, spec: BackboneSpec) -> None:
    """Load a user's weights file into a backbone, with a clear error when it does not fit."""
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - h5py/Keras raise ValueError, KeyError, OSError ...
        raise WeightsUnavailable(
            f"The weights file {Path(path).name} does not fit {spec.label}: {str(exc).splitlines()[0][:300]}",
            f"Choose the no-top weights file made for {spec.label} (e.g. {spec.weights_file_notop}), "
            "or use weights: imagenet or none.",
        ) from exc
