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
except :func:`import_weights`, which loads the file to check it. :func:`resolve_weights` says what a
model loads: the store first, then Keras' cache, then the download. What a file is (hashes, layout,
arrays) is :mod:`cnn_studio.backbones.weights_files`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cnn_studio.backbones.registry import DEFAULT_BACKBONE, FALLBACK_BACKBONE, Backbone, all_specs, get
from cnn_studio.backbones.weights import (
    WEIGHTS_SUFFIXES,
    load_weights_file,
    offline_error,
    parse_weights,
    weights_origin,
    weights_status,
)
from cnn_studio.backbones.weights_files import (
    KERAS_NOTOP_HASHES,
    h5_layout,
    is_keras_original,
    keras_original_of,
    recognise_backbone,
    stored_name,
    structure_problem,
)
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import WeightsUnavailable
from cnn_studio.core.fsutil import atomic_path, write_json
from cnn_studio.core.keras_archive import check_keras_archive
from cnn_studio.core.paths import app_data_dir, keras_cache_dir

log = logging.getLogger(__name__)

ORIGIN_KERAS = "keras-original"  # the exact file Keras publishes (hash checked)
ORIGIN_CHECKED = "checked"  # another file, checked by loading it into the backbone

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
        e = stored(spec)
        if e is not None:
            out.append(e)
    return out


def stored(spec: Backbone) -> StoredWeights | None:
    """The store's file for this backbone, or None (also when the file was removed by hand)."""
    meta = store_dir() / spec.key / "entry.json"
    try:
        data = json.loads(meta.read_text())
        entry = StoredWeights(**{k: data[k] for k in StoredWeights.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry if Path(entry.path).is_file() else None


def offline_status(spec: Backbone, image_size: int | None = None) -> OfflineStatus:
    """Do this backbone's ImageNet weights *load* without the internet? The store first, then Keras' cache.

    No TensorFlow: the store's files were loaded when imported; Keras' cache file is checked by
    hash or by its HDF5 layout and arrays (remembered by size and mtime).
    """
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
            return spec.key, spec.default_weights
    raise AssertionError("the fallback backbone needs no weights")  # pragma: no cover


def cache_file_verdict(spec: Backbone, path: Path) -> str | None:
    """None when the file in Keras' cache loads; else why not. Remembered by (size, mtime)."""
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


# ------------------------------------------------------------------ adding files

def import_weights(path: str | os.PathLike[str], backbone: Backbone | None = None, *,
                   sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> StoredWeights:
    """Copy a weights file into the store after recognising and checking it. The user's file is untouched.

    A file that *is* the store's record already (the same file, e.g. chosen from the store's own
    folder) is recognised and left as it is: nothing is copied, nothing removed. The copy replaces
    only the file the store itself recorded for that backbone; any other file in the folder (say a
    user's own copy put there by hand) is never touched.

    Parameters
    ----------
    path : a Keras original download (.h5), a ``.weights.h5`` or a ``.keras`` file.
    backbone : the backbone; recognised from the file's arrays (or its hash) when None.

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
        key = original or recognise_backbone(src)
        if key is None:
            raise WeightsUnavailable(
                f"{src.name} is not the weights of a backbone CNN Studio knows.",
                "Name the backbone (`cnn-studio weights import FILE --backbone KEY`), or choose the "
                "no-top weights file of one of the backbones in `cnn-studio backbones`.")
        backbone = get(key)
    spec = backbone
    if not spec.has_pretrained_weights:
        raise WeightsUnavailable(f"{spec.label} takes no pretrained weights.", "Choose another backbone.")
    raise_if_cancelled(cancel)
    keras_original = original == spec.key
    layout = h5_layout(src)
    if layout is None:
        raise WeightsUnavailable(f"{src.name} is not a Keras weights file.",
                                 "Use the .h5 file Keras downloads, a .weights.h5 or a .keras file.")
    dest = _destination(spec, stored_name(spec, layout, src.name))
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


def _recorded_path(spec: Backbone) -> Path | None:
    """The file the store itself wrote for this backbone (its entry.json's ``path``), present or not."""
    try:
        return Path(json.loads((store_dir() / spec.key / "entry.json").read_text())["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _destination(spec: Backbone, name: str) -> Path:
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


def _check_loads(spec: Backbone, path: Path) -> None:
    """Load ``path`` into the headless backbone (TensorFlow), raising the clear mismatch error."""
    load_weights_file(spec.build_base(), path, spec)  # at its default size: the weights do not depend on it


def _record(spec: Backbone, dest: Path, origin: str, source: str) -> StoredWeights:
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

def download_weights(spec: Backbone, image_size: int | None = None, *, sink: ev.EventSink = ev.null_sink,
                     cancel: CancelToken | None = None, timeout_s: float = 30.0) -> StoredWeights:
    """Download Keras' published no-top file into the store, with progress and cancel; hash checked.

    Emits ``TaskProgress("download", bytes_done, bytes_total, detail)``. Offline, raises
    :func:`cnn_studio.backbones.weights.offline_error` (file, address, how to import it); the
    technical cause goes to the log. A cancelled or failed download leaves nothing behind.
    """
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


# ------------------------------------------------------------------ what to load

def resolve_weights(spec: Backbone, weights: str, image_size: int | None = None) -> str | None:
    """What to load for ``weights`` ("none", "imagenet" or a file path) at ``image_size`` (MobileNetV2's file
    depends on it): ``None`` for "none"; for ImageNet the store's file path, else ``"imagenet"`` when a file
    of that name is in Keras' cache (:func:`~cnn_studio.backbones.classifier.build_backbone` loads it
    itself), else the path of the file just downloaded into the store; the file path for a local file.

    Raises
    ------
    WeightsUnavailable
        ImageNet weights neither cached nor downloadable (offline), a backbone without ImageNet
        weights, a missing file or a file that is not a Keras weights file.
    """
    choice = parse_weights(weights)
    if choice.kind == "none":
        return None
    if choice.kind == "imagenet":
        if not spec.has_pretrained_weights:
            raise WeightsUnavailable(f"{spec.label} has no ImageNet weights.",
                                     "Use weights: none (it is designed to train from scratch).")
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



def describe_entries(items: list[StoredWeights] | None = None) -> list[dict]:
    """Plain dicts for ``cnn-studio weights list --json`` and the GUI."""
    return [asdict(e) | {"label": e.label} for e in (entries() if items is None else items)]
