"""The app's own store of pretrained backbone weights: ``<app data>/weights/<backbone key>/``.

Files land here only by :func:`import_weights` (a copy of the user's file: the original is never
moved, changed or deleted) or :func:`download_weights` (Keras' published file, hash checked). Only
the user removes them, except that a new file for a backbone replaces the one the store recorded
for it before (only that one: other files in the folder are never touched). Each entry has a sidecar ``entry.json`` saying which backbone it is for,
whether it is Keras' original download (recognised by the hash Keras publishes) or a file that was
checked by loading it into the backbone, and where it came from.

:func:`offline_status` is what every "available offline" in the app means: the weights *load*,
not merely "a file with that name exists". The store's files were loaded when they came in; a file
in Keras' cache counts when its hash is Keras' published one, or (no hash, or another file) when its
HDF5 layout and arrays are the ones the backbone's loader needs. Checks are remembered by file size
and modification time (``checks.json``), so listing stays fast. Nothing here imports TensorFlow
except :func:`import_weights`, which loads the file to check it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cnn_studio import events as ev
from cnn_studio.backbones.registry import DEFAULT_BACKBONE, FALLBACK_BACKBONE, BackboneSpec, all_specs, get
from cnn_studio.backbones.weights import default_weights
from cnn_studio.cancel import CancelToken, raise_if_cancelled
from cnn_studio.errors import WeightsUnavailable
from cnn_studio.file_hashes import file_hash
from cnn_studio.fsutil import atomic_path, write_json
from cnn_studio.keras_archive import check_keras_archive
from cnn_studio.paths import app_data_dir, keras_cache_dir

log = logging.getLogger(__name__)

ORIGIN_KERAS = "keras-original"  # the exact file Keras publishes (hash checked)
ORIGIN_CHECKED = "checked"  # another file, checked by loading it into the backbone

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


def store_dir() -> Path:
    """``<app data>/weights`` (``CNN_STUDIO_HOME`` is honoured through :func:`paths.app_data_dir`)."""
    return app_data_dir() / "weights"


@dataclass(frozen=True)
class StoredWeights:
    """One file in the store: for which backbone, how it was vouched for, where it came from."""

    backbone: str
    path: str
    origin: str  # ORIGIN_KERAS | ORIGIN_CHECKED
    source: str  # the file it was copied from, or the URL it was downloaded from
    size: int
    added: str

    @property
    def label(self) -> str:
        return "Keras' original ImageNet file" if self.origin == ORIGIN_KERAS else "checked: loads into the backbone"


@dataclass(frozen=True)
class OfflineStatus:
    """Whether a backbone's ImageNet weights load without a download, from where, and what to say."""

    available: bool
    source: str  # "store" | "keras_cache" | "none" | "not_applicable"
    path: str | None
    message: str


# ------------------------------------------------------------------ reading the store

def entries() -> list[StoredWeights]:
    """Every stored file whose entry and file are both present, in registry order."""
    out = []
    for spec in all_specs():
        e = stored(spec.key)
        if e is not None:
            out.append(e)
    return out


def stored(key: BackboneSpec | str) -> StoredWeights | None:
    """The store's file for this backbone, or None (also when the file was removed by hand)."""
    spec = get(key)
    meta = store_dir() / spec.key / "entry.json"
    try:
        data = json.loads(meta.read_text())
        entry = StoredWeights(**{k: data[k] for k in StoredWeights.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry if Path(entry.path).is_file() else None


def offline_status(spec: BackboneSpec | str, image_size: int | None = None) -> OfflineStatus:
    """Do this backbone's ImageNet weights *load* without the internet? The store first, then Keras' cache.

    No TensorFlow: the store's files were loaded when imported; Keras' cache file is checked by
    hash or by its HDF5 layout and arrays (remembered by size and mtime).
    """
    spec = get(spec)
    name = spec.weights_file_for(image_size)
    if name is None:
        return OfflineStatus(False, "not_applicable", None,
                             f"{spec.label} has no pretrained weights: it always trains from scratch.")
    entry = stored(spec)
    if entry is not None:
        return OfflineStatus(True, "store", entry.path, f"ImageNet weights available offline ({entry.label}).")
    cached = keras_cache_dir() / name
    if cached.is_file():
        verdict = cache_file_verdict(spec, cached)
        if verdict is None:
            return OfflineStatus(True, "keras_cache", str(cached), f"ImageNet weights available offline ({cached}).")
        return OfflineStatus(False, "none", str(cached),
                             f"{cached} is there but does not load ({verdict}). Import the right file with "
                             "\"Import weights file…\" (or `cnn-studio weights import FILE`).")
    return OfflineStatus(False, "none", None,
                         f"ImageNet weights for {spec.label} are not on this computer yet: download them "
                         "(needs internet) or import a weights file.")


def offline_default() -> tuple[str, str]:
    """The default ``(backbone, weights)`` usable here without a download: the default backbone with its
    pretrained weights when they load offline, else the fallback (the Small CNN, from scratch)."""
    for key in (DEFAULT_BACKBONE, FALLBACK_BACKBONE):
        spec = get(key)
        if not spec.has_pretrained_weights or offline_status(spec).available:
            return spec.key, default_weights(spec)
    raise AssertionError("the fallback backbone needs no weights")  # pragma: no cover


def cache_file_verdict(spec: BackboneSpec | str, path: Path) -> str | None:
    """None when the file in Keras' cache loads; else why not. Remembered by (size, mtime)."""
    spec = get(spec)
    key = str(path)
    st = path.stat()
    checks = _read_checks()
    seen = checks.get(key)
    if seen and seen.get("size") == st.st_size and seen.get("mtime_ns") == st.st_mtime_ns:
        return seen.get("problem")
    if is_keras_original(spec, path):
        problem = None
    else:
        problem = structure_problem(spec, path)
    checks[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "problem": problem}
    _write_checks(checks)
    return problem


def _checks_path() -> Path:
    return store_dir() / "checks.json"


def _read_checks() -> dict:
    try:
        return json.loads(_checks_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_checks(checks: dict) -> None:
    try:
        write_json(_checks_path(), checks)
    except Exception:  # noqa: BLE001 - a read-only data folder only costs the speed-up
        log.debug("could not remember the weights check", exc_info=True)


# ------------------------------------------------------------------ recognising a file

def is_keras_original(spec: BackboneSpec | str, path: str | os.PathLike[str]) -> bool:
    """True when the file's hash is the one Keras publishes for this backbone's no-top file."""
    expected = KERAS_NOTOP_HASHES.get(get(spec).key)
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
    from cnn_studio.backbones.weights import _file_shapes  # noqa: PLC0415 - the two modules import each other

    return _file_shapes(Path(path))


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


def structure_problem(spec: BackboneSpec | str, path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` would not load into the backbone by its name's loader (None: it would). No TF."""
    spec = get(spec)
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


# ------------------------------------------------------------------ adding files

def _stored_name(spec: BackboneSpec, layout: str | None, source_name: str) -> str:
    """The name the copy gets: its suffix must make Keras pick the right loader for its layout."""
    if layout == "legacy":
        return spec.weights_file_notop or source_name
    if layout == "archive":
        return f"{spec.key}_notop.keras"
    return f"{spec.key}_notop.weights.h5"


def import_weights(path: str | os.PathLike[str], backbone: str | None = None, *,
                   sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> StoredWeights:
    """Copy a weights file into the store after recognising and checking it. The user's file is untouched.

    A file that *is* the store's record already (the same file, e.g. chosen from the store's own
    folder) is recognised and left as it is: nothing is copied, nothing removed. The copy replaces
    only the file the store itself recorded for that backbone; any other file in the folder (say a
    user's own copy put there by hand) is never touched.

    Parameters
    ----------
    path : a Keras original download (.h5), a ``.weights.h5`` or a ``.keras`` file.
    backbone : the backbone key; recognised from the file's arrays (or its hash) when None.

    Raises
    ------
    WeightsUnavailable
        Missing or unreadable file, unknown backbone, or a file that does not load into it (its
        arrays do not fit, or hold values that are not numbers).
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsUnavailable(f"The weights file {src} does not exist.", "Choose the file again.")
    already = _already_stored(src)
    if already is not None:
        sink(ev.LogMessage("info", f"{src} is already in CNN Studio's weights (for {get(already.backbone).label}); "
                                   "nothing was copied or changed."))
        return already
    if zipfile.is_zipfile(src):
        check_keras_archive(src, WeightsUnavailable)
    sink(ev.StageChanged("weights", "Recognising the file", src.name))
    original = keras_original_of(src)
    if backbone is None:
        backbone = original or recognise_backbone(src)
        if backbone is None:
            raise WeightsUnavailable(
                f"{src.name} is not the weights of a backbone CNN Studio knows.",
                "Name the backbone (`cnn-studio weights import FILE --backbone KEY`), or choose the "
                "no-top weights file of one of the backbones in `cnn-studio backbones`.")
    spec = get(backbone)
    if not spec.has_pretrained_weights:
        raise WeightsUnavailable(f"{spec.label} takes no pretrained weights.", "Choose another backbone.")
    raise_if_cancelled(cancel)
    keras_original = original == spec.key
    layout = h5_layout(src)
    if layout is None:
        raise WeightsUnavailable(f"{src.name} is not a Keras weights file.",
                                 "Use the .h5 file Keras downloads, a .weights.h5 or a .keras file.")
    dest = _destination(spec, _stored_name(spec, layout, src.name))
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)  # a copy: the user's file is never moved or deleted
        if not keras_original:
            sink(ev.StageChanged("weights", "Checking that the file loads", spec.label))
            _check_loads(spec, tmp)
        raise_if_cancelled(cancel)
    return _record(spec, dest, ORIGIN_KERAS if keras_original else ORIGIN_CHECKED, str(src.resolve()))


def _already_stored(src: Path) -> StoredWeights | None:
    """The store's entry whose recorded file *is* ``src`` (same file on disk), else None."""
    for entry in entries():
        try:
            if os.path.samefile(entry.path, src):
                return entry
        except OSError:
            continue
    return None


def _recorded_path(spec: BackboneSpec) -> Path | None:
    """The file the store itself wrote for this backbone (its entry.json's ``path``), present or not."""
    try:
        return Path(json.loads((store_dir() / spec.key / "entry.json").read_text())["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _destination(spec: BackboneSpec, name: str) -> Path:
    """Where a new file for ``spec`` goes: ``name`` in its folder, unless another file not written by the
    store lies there (a user's own file is never overwritten): then ``stem-2``, ``stem-3``... ."""
    folder = store_dir() / spec.key
    recorded = _recorded_path(spec)
    suffix = next((s for s in (".weights.h5", ".keras", ".h5") if name.endswith(s)), "")
    stem = name[: len(name) - len(suffix)]
    for n in range(1, 1000):
        candidate = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        if candidate == recorded or not os.path.lexists(candidate):
            return candidate
    raise WeightsUnavailable(f"{folder} is full of other files.", "Move the files you put there elsewhere.")


def _check_loads(spec: BackboneSpec, path: Path) -> None:
    """Load ``path`` into the headless backbone (TensorFlow), raising the clear mismatch error."""
    from cnn_studio.backbones.classifier import _constructor  # noqa: PLC0415 - the two modules import each other
    from cnn_studio.backbones.weights import load_weights_file  # noqa: PLC0415 - the two modules import each other

    size = spec.image_size()  # the one size rule (its default); the weights do not depend on it
    base = _constructor(spec)(**dict(spec.constructor_kwargs), include_top=False, weights=None,
                              input_shape=(size, size, 3), pooling=None)
    load_weights_file(base, path, spec)


def _record(spec: BackboneSpec, dest: Path, origin: str, source: str) -> StoredWeights:
    """Record ``dest`` (already in place) as the backbone's file, then remove the file recorded before it.

    Only that previous file goes, the one the store itself wrote (named in its entry.json, inside the
    store's folder); every other file in the folder stays. ``dest`` replaced an earlier file of the
    same name atomically (a rename); a crash between the two steps leaves at most the store's old
    file behind, never a missing one.
    """
    previous = _recorded_path(spec)
    entry = StoredWeights(spec.key, str(dest), origin, source, dest.stat().st_size,
                          time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json(dest.parent / "entry.json", asdict(entry))
    if previous is not None and previous != dest and previous.parent == dest.parent:
        with contextlib.suppress(FileNotFoundError):
            previous.unlink()
    return entry


# ------------------------------------------------------------------ download

def download_weights(key: BackboneSpec | str, image_size: int | None = None, *, sink: ev.EventSink = ev.null_sink,
                     cancel: CancelToken | None = None, timeout_s: float = 30.0) -> StoredWeights:
    """Download Keras' published no-top file into the store, with progress and cancel; hash checked.

    Emits ``TaskProgress("download", bytes_done, bytes_total, detail)``. Offline, raises
    :func:`cnn_studio.backbones.weights.offline_error` (file, address, how to import it); the
    technical cause goes to the log. A cancelled or failed download leaves nothing behind.
    """

    from cnn_studio.backbones.weights import offline_error, weights_origin  # noqa: PLC0415 - the two modules import each other

    spec = get(key)
    name = spec.weights_file_for(image_size)
    if name is None:
        raise WeightsUnavailable(f"{spec.label} has no ImageNet weights.", "It trains from scratch.")
    url = weights_origin(spec, image_size)
    dest = _destination(spec, name)
    sink(ev.TaskProgress("download", 0, 0, name))
    with atomic_path(dest) as tmp:
        try:
            response = urllib.request.urlopen(url, timeout=timeout_s)  # noqa: S310 - a fixed https URL
        except Exception as exc:  # noqa: BLE001 - URLError, timeouts, DNS, proxies ...
            log.warning("download of %s failed: %r", url, exc)
            raise offline_error(spec, image_size) from exc
        with response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            last = 0.0
            while True:
                raise_if_cancelled(cancel)
                try:
                    block = response.read(1 << 18)
                except Exception as exc:  # noqa: BLE001 - the connection dropped mid-way
                    log.warning("download of %s broke off after %d bytes: %r", url, done, exc)
                    raise offline_error(spec, image_size) from exc
                if not block:
                    break
                out.write(block)
                done += len(block)
                now = time.monotonic()
                if now - last > 0.1:
                    last = now
                    sink(ev.TaskProgress("download", done, total, f"{done / 1e6:.1f} of {total / 1e6:.1f} MB"))
        expected = KERAS_NOTOP_HASHES.get(spec.key)
        if expected and not is_keras_original(spec, tmp):
            raise WeightsUnavailable(f"The downloaded {name} is damaged (its checksum is not Keras' published one).",
                                     "Try the download again.")
    sink(ev.TaskProgress("download", done, max(total, done), f"{done / 1e6:.1f} MB"))
    return _record(spec, dest, ORIGIN_KERAS, url)


def describe_entries(items: list[StoredWeights] | None = None) -> list[dict]:
    """Plain dicts for ``cnn-studio weights list --json`` and the GUI."""
    return [asdict(e) | {"label": e.label} for e in (entries() if items is None else items)]
