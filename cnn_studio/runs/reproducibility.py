"""A run's reproducibility record: what training stores in reproducibility.json (no TensorFlow, no Qt).

:func:`reproducibility_record` holds the app and library versions, Python and the OS, the seeds and the
dataset's fingerprint (:func:`dataset_fingerprint`: every image with its SHA-256, and one SHA-256 over
them all); :func:`read_reproducibility` reads it back, checked; :func:`reproducibility_summary` is what a
model card or a comparison shows.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

from cnn_studio import __version__
from cnn_studio.core.file_hashes import hashes
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.records import Split
from cnn_studio.runs.checks import damaged, type_problem
from cnn_studio.runs.run_folder import read_optional_json
from cnn_studio.training.config import TrainConfig

LIBRARIES = ("tensorflow", "keras", "numpy", "pillow", "h5py", "pydicom")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a run depends on (from package metadata: nothing is imported)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def dataset_fingerprint(split: Split) -> dict[str, Any]:
    """The images a run was made with: every image (its key under the dataset folder — a path, or a
    volume's ``path#slice=AXIS:INDEX`` —, part, class, file size, file SHA-256) and one SHA-256 over
    them all, so two runs on the same bytes have the same ``sha256``. Each file is read once, and not
    at all when :mod:`cnn_studio.core.file_hashes` remembers it unchanged."""
    parts = [(name, r) for name in ("train", "val", "test") for r in getattr(split, name)]
    paths = [r.path for _, r in parts]
    try:
        root = os.path.commonpath([os.path.dirname(os.path.dirname(p)) for p in paths]) if paths else ""
    except ValueError:
        root = ""
    digests = hashes(paths)
    files, total = [], hashlib.sha256()
    for name, r in sorted(parts, key=lambda pr: pr[1].key):
        rel = os.path.relpath(r.key, root) if root else r.key
        digest = digests.get(r.path, "")
        try:
            size = os.path.getsize(r.path)
        except OSError:
            size = -1
        label = split.class_names[r.label]
        files.append({"path": rel, "part": name, "label": label, "bytes": size, "sha256": digest})
        total.update(f"{rel}\0{label}\0{digest}\n".encode("utf-8", "surrogateescape"))
    return {"root": root, "n_files": len(files), "unreadable": sum(not f["sha256"] for f in files),
            "sha256": total.hexdigest(), "files": files}


def reproducibility_record(config: TrainConfig, split: Split) -> dict[str, Any]:
    """What reproducibility.json holds: app and library versions, Python and OS, seeds, dataset fingerprint."""
    return {"app_version": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "libraries": library_versions(),
            "seed": config.seed, "split_seed": split.seed,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "dataset": dataset_fingerprint(split)}


_RECORD_TYPES: dict[str, Any] = {"app_version": str, "python": str, "platform": str, "libraries": dict[str, str],
                                 "seed": int | None, "split_seed": int | None, "created": str, "dataset": dict}
_DATASET_TYPES: dict[str, Any] = {"root": str, "n_files": int, "unreadable": int, "sha256": str, "files": list}


def read_reproducibility(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run's reproducibility.json; None for runs made before it was written.

    RunError naming the file when it is damaged: not JSON, or a value of the wrong type (the model
    card and the comparison then leave it out with a note).
    """
    layout = RunLayout(Path(run_dir))
    record = read_optional_json(layout, "reproducibility")
    if record is None:
        return None
    problem = type_problem(record, _RECORD_TYPES)
    if not problem and isinstance(record.get("dataset"), dict):
        problem = type_problem(record["dataset"], _DATASET_TYPES)
    if not problem and any(not isinstance(v, str) for v in (record.get("libraries") or {}).values()):
        problem = "'libraries' does not map each library to its version"
    if problem:
        raise damaged(layout.reproducibility, problem, "reproducibility")
    return record


def reproducibility_summary(record: dict[str, Any] | None) -> dict[str, Any]:
    """The record without its file list: what a model card or a comparison shows."""
    if not record:
        return {}
    data = record.get("dataset") or {}
    return {"app_version": record.get("app_version"), "python": record.get("python"),
            "platform": record.get("platform"), "libraries": record.get("libraries") or {},
            "seed": record.get("seed"), "split_seed": record.get("split_seed"),
            "dataset_sha256": data.get("sha256"), "dataset_files": data.get("n_files"),
            "dataset_root": data.get("root")}

