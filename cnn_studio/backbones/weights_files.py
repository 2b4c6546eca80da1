"""What a weights file is, read without TensorFlow: Keras' published hashes, the HDF5 layout, the arrays.

:func:`keras_original_of` recognises Keras' own downloads by hash, :func:`recognise_backbone` any file by its
arrays (count and parameters, :data:`ARRAY_SIGNATURES`), :func:`h5_layout` the loader a file needs and
:func:`structure_problem` why it would not load into a backbone. The weights modules build on this one
(registry → weights_files → weights → weights_store); it imports none of them but the registry.
"""

from __future__ import annotations

import math
import os
import zipfile

from cnn_studio.backbones.registry import Backbone
from cnn_studio.core.file_hashes import file_hash

# The no-top files' hashes as keras/src/applications/*.py pass them to get_file (md5: 32 hex digits,
# sha256: 64). MobileNetV2's files are published without a hash. tests/engine/test_weights_store.py
# compares this table with the Keras sources.
KERAS_NOTOP_HASHES: dict[str, str] = {
    "mobilenet_v3_small": "d3e8ec802a04aa4fc771ee12a9a9b836",
    "mobilenet_v3_large": "07fb09a5933dd0c8eaafa16978110389",
    "efficientnet_b0": "50bc09e76180e00e4465e1a485ddc09d",
    "efficientnet_b1": "74c4e6b3e1f6a1eea24c589628592432",
    "efficientnet_b2": "111f8e2ac8aa800a7a99e3239f7bfb39",
    "efficientnet_b3": "af6d107764bb5b1abb91932881670226",
    "efficientnet_v2_b0": "893217f2bb855e2983157299931e43ff",
    "resnet50": "4d473c1dd8becc155b73f8504c6f6626",
    "resnet50_v2": "fac2f116257151a9d068a22e544a4917",
    "vgg16": "6d6bbae143d832006294945121d1f1fc",
    "vgg19": "253f8cb515780f3b799900260a226db6",
    "inception_v3": "bcbd6486424b2319ff4ef7d526e38f63",
    "xception": "b0042744bf5b25fce3cb969f33bebb97",
    "densenet121": "30ee3e1110167f948a6b9946edeeb738",
    "convnext_tiny": "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
}

# (weight arrays, parameters) of each headless backbone, scalars left out (measured with Keras 3.15,
# weights=None; a test rebuilds some): how a file's backbone is recognised from its arrays.
ARRAY_SIGNATURES: dict[str, tuple[int, int]] = {
    "mobilenet_v2": (260, 2257984),
    "mobilenet_v3_small": (206, 939120),
    "mobilenet_v3_large": (262, 2996352),
    "efficientnet_b0": (311, 4049570),
    "efficientnet_b1": (439, 6575238),
    "efficientnet_b2": (439, 7768568),
    "efficientnet_b3": (496, 10783534),
    "efficientnet_v2_b0": (359, 5919312),
    "resnet50": (318, 23587712),
    "resnet50_v2": (270, 23564800),
    "vgg16": (26, 14714688),
    "vgg19": (32, 20024384),
    "inception_v3": (376, 21802784),
    "xception": (234, 20861480),
    "densenet121": (604, 7037504),
    "convnext_tiny": (180, 27820128),
}


def is_keras_original(spec: Backbone, path: str | os.PathLike[str]) -> bool:
    """True when the file's hash is the one Keras publishes for this backbone's no-top file."""
    expected = KERAS_NOTOP_HASHES.get(spec.key)
    if not expected:
        return False
    return file_hash(path, "sha256" if len(expected) == 64 else "md5") == expected


def keras_original_of(path: str | os.PathLike[str]) -> str | None:
    """The backbone whose published no-top file this is (by hash), or None."""
    md5 = sha = None
    for key, expected in KERAS_NOTOP_HASHES.items():
        if len(expected) == 64:
            sha = sha or file_hash(path, "sha256")
            if sha == expected:
                return key
        else:
            md5 = md5 or file_hash(path, "md5")
            if md5 == expected:
                return key
    return None


def array_shapes(path: str | os.PathLike[str]) -> list[tuple[int, ...]] | None:
    """Shapes of every non-scalar array in an .h5/.weights.h5 file or .keras archive (None: unreadable)."""
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


def h5_layout(path: str | os.PathLike[str]) -> str | None:
    """"legacy" (Keras' downloads, ``save_weights`` to .h5), "keras3" (.weights.h5), "archive" (.keras) or None."""
    import h5py

    if zipfile.is_zipfile(path):
        return "archive"
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs):
                return "legacy"
            if "layers" in f or "vars" in f:
                return "keras3"
    except (OSError, ValueError):
        return None
    return None


def recognise_backbone(path: str | os.PathLike[str]) -> str | None:
    """The backbone whose headless arrays this file holds (count and parameters), or None."""
    shapes = array_shapes(path)
    if not shapes:
        return None
    sig = (len(shapes), sum(math.prod(s) for s in shapes))
    found = [k for k, v in ARRAY_SIGNATURES.items() if v == sig]
    return found[0] if len(found) == 1 else None


def structure_problem(spec: Backbone, path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` would not load into the backbone by its name's loader (None: it would). No TF."""
    layout = h5_layout(path)
    if layout is None:
        return "not a Keras weights file"
    name = str(path)
    wanted = "archive" if name.endswith(".keras") else "keras3" if name.endswith(".weights.h5") else "legacy"
    if layout != wanted:
        return (f"a {_LAYOUT_WORDS[layout]} under a name Keras reads as a {_LAYOUT_WORDS[wanted]}")
    shapes = array_shapes(path) or []
    sig = (len(shapes), sum(math.prod(s) for s in shapes))
    expected = ARRAY_SIGNATURES.get(spec.key)
    if expected is not None and sig != expected:
        return f"its {sig[0]} arrays ({sig[1] / 1e6:.2f} M parameters) are not {spec.label}'s"
    return None


_LAYOUT_WORDS = {"legacy": "Keras .h5 download", "keras3": ".weights.h5 file", "archive": ".keras model"}


def stored_name(spec: Backbone, layout: str | None, source_name: str) -> str:
    """The name a copy of a file gets: its suffix must make Keras pick the right loader for its layout."""
    if layout == "legacy":
        return spec.weights_file_notop or source_name
    if layout == "archive":
        return f"{spec.key}_notop.keras"
    return f"{spec.key}_notop.weights.h5"
