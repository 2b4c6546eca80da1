"""What the app shows of one loaded model: heat maps for many files, one image explained, a layer's maps.

Each function takes a :class:`~cnn_studio.predict.predictor.Classifier` and returns plain arrays and dataclasses
(small enough to send between processes: pictures are downscaled to what a screen shows), so the
same calls serve the GUI, a child process and scripts. :func:`open_model` keeps a run's Classifier in
a long-lived child (:func:`cnn_studio.core.child_process.open_server`) that answers these calls by name,
e.g. ``model.call(HEATMAPS, paths, None, sink=sink, cancel=cancel)``. :func:`architecture` is the
Architecture tab's one-shot job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import raise_if_cancelled
from cnn_studio.core.child_process import open_server
from cnn_studio.data.bands import read_run_bands
from cnn_studio.explain.architecture import architecture_table
from cnn_studio.explain.feature_maps import feature_maps, first_layer_filters, grid, list_feature_layers
from cnn_studio.explain.gradcam import explain_picture
from cnn_studio.predict.predictor import check_model_input
from cnn_studio.runs.run_folder import load_model

PREVIEW = 384
"""Longest side of the pictures :func:`explain_image` returns."""

THUMB = 192
"""Longest side of the pictures :func:`heatmaps_for_files` returns."""

# the calls a model opened by open_model answers (import names: the child resolves them)
CLASSIFY = "cnn_studio.predict.predictor:Classifier.classify"
HEATMAPS = "cnn_studio.explain.views:heatmaps_for_files"
EXPLAIN = "cnn_studio.explain.views:explain_image"
LAYER_MAPS = "cnn_studio.explain.views:layer_maps"


@dataclass(frozen=True)
class ModelInfo:
    """What the app knows of a model held by :func:`open_model` without asking it again."""

    class_names: tuple[str, ...]
    image_size: int
    resize: str


def model_info(classifier) -> ModelInfo:
    """A loaded Classifier's :class:`ModelInfo`."""
    return ModelInfo(tuple(classifier.class_names), int(classifier.image_size), str(classifier.resize))


def open_model(run_dir: str | os.PathLike[str], *, log_path: str | os.PathLike[str] | None = None):
    """``run_dir``'s :class:`~cnn_studio.predict.predictor.Classifier` loaded once in a long-lived child process.

    Returns a :class:`~cnn_studio.core.child_process.Server` (a ``LocalServer`` when
    ``CNN_STUDIO_IN_PROCESS=1``) whose ``info`` is its :class:`ModelInfo` and whose ``call`` answers
    :data:`CLASSIFY`, :data:`HEATMAPS`, :data:`EXPLAIN` and :data:`LAYER_MAPS`. Raises the
    model's StudioError (a missing or damaged model) at once.
    """

    return open_server("cnn_studio.predict.predictor:Classifier.load", str(run_dir), label="model", log_path=log_path,
                       describe=model_info)


def shrink(arr: np.ndarray, side: int = PREVIEW) -> np.ndarray:
    """``arr`` (uint8 RGB, or a [0, 1] heat map) scaled down so its longest side is at most ``side``."""

    h, w = arr.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if arr.ndim == 2:
        return np.asarray(Image.fromarray((arr * 255).astype(np.uint8)).resize(size, Image.BILINEAR)) / 255.0
    return np.asarray(Image.fromarray(arr).resize(size, Image.BILINEAR))


def heatmaps_for_files(classifier, paths, class_index: int | None = None, *, sink: ev.EventSink = ev.null_sink,
                       cancel=None, rgb=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{path: (picture, heat map)}`` (both at most :data:`THUMB` px) for the predicted or the given class.

    Multi-band files are shown as the RGB composite of ``rgb`` (three 1-based bands; default the run's).

    A file that cannot be read gets no entry (its prediction already says why).
    """

    out = {}
    for i, p in enumerate(paths):
        raise_if_cancelled(cancel)
        try:
            original, _, _, heat = explain_picture(classifier, p, class_index=class_index, rgb=rgb)
        except Exception:  # noqa: BLE001 - an unreadable file simply gets no overlay
            continue
        out[str(p)] = (shrink(original, THUMB), shrink(heat, THUMB))
        sink(ev.TaskProgress(task="Grad-CAM", done=i + 1, total=len(paths)))
    return out


def explain_image(classifier, path: str, class_index: int | None = None, *, sink: ev.EventSink = ev.null_sink,
                  cancel=None, rgb=None) -> dict:
    """Grad-CAM of ``path`` for the predicted (or chosen) class, plus the model's feature layers.

    Returns ``{path, original, heat, class_index, class_prob, layer, layers, input}``: ``original``
    and ``heat`` at most :data:`PREVIEW` px, ``layers`` a list of
    :class:`~cnn_studio.explain.feature_maps.LayerInfo`, ``input`` the model-sized picture that
    :func:`layer_maps` takes. A multi-band file's ``original`` is the RGB composite of ``rgb``
    (three 1-based bands; default the run's RGB bands).
    """

    raise_if_cancelled(cancel)
    check_model_input(path, int(classifier.model.inputs[0].shape[-1]),
                      pictures_only=getattr(classifier, "pictures_only", False))
    original, model_input, cam, heat = explain_picture(classifier, path, class_index=class_index, rgb=rgb)
    layers = list_feature_layers(classifier.model)
    return {"path": path, "original": shrink(original), "heat": shrink(heat), "class_index": cam.class_index,
            "class_prob": cam.class_prob, "layer": cam.layer_name, "layers": layers, "input": model_input}


def layer_maps(classifier, model_input: np.ndarray, layer: str, *, sink: ev.EventSink = ev.null_sink,
               cancel=None) -> tuple[np.ndarray, str]:
    """The first 16 feature maps of ``layer`` tiled into one picture, and a caption."""

    raise_if_cancelled(cancel)
    fm = feature_maps(classifier.model, model_input, layer, max_channels=16)
    h, w = fm.maps.shape[1:]
    return grid(fm.maps, cols=4, cell=96), (f"{layer}: showing {len(fm.channels)} of {fm.total_channels} "
                                             f"feature maps, each {h}x{w}. Bright = strong response.")


def architecture(run_dir: str | os.PathLike[str], *, sink: ev.EventSink = ev.null_sink, cancel=None):
    """The Architecture tab: (:class:`~cnn_studio.explain.architecture.ArchitectureTable`, first-layer
    filters as an (N, k, k, 3) array in [0, 1], or None when the first layer has no RGB filters)."""

    model = load_model(run_dir)
    raise_if_cancelled(cancel)
    table = architecture_table(model)
    bands = read_run_bands(run_dir)
    channels = None
    if bands is not None:
        mapped = bands.channel_map()  # the model's input channel standing for R, G, B (None: not among its bands)
        found = [mapped.index(c) if c in mapped else None for c in (0, 1, 2)]
        channels = tuple(found) if None not in found else None  # type: ignore[assignment]
    try:
        filters = first_layer_filters(model, channels)
    except Exception:  # noqa: BLE001 - a model without a learned RGB conv simply shows no filters
        filters = None
    return table, (np.asarray(filters) if filters is not None and len(filters) else None)
