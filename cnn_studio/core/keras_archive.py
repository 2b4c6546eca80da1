"""A ``.keras`` file is a zip archive: check what it would unpack to before Keras reads it.

Keras reads the archive's ``config.json`` whole into memory and parses it; its own guard only
refuses members over 4 GiB. A 1.5 MB file whose config.json unpacks to 1.5 GB would take several GB
of memory before any error. :func:`archive_problem` reads only the archive's directory (the sizes
each member declares; Python's zip reader never returns more than the declared size) and refuses:

* a JSON member at the archive's top (``config.json``, ``metadata.json``: Keras reads those whole)
  over :data:`MAX_CONFIG_BYTES` (a real model's config is a few hundred kB: DenseNet121's, the
  largest measured, is 0.4 MB),
* more than :data:`MAX_MEMBERS` members,
* members that unpack to far more than the file itself (Keras stores its members uncompressed:
  a genuine archive unpacks to about its own size; :data:`MAX_EXPANSION` times it, plus
  :data:`SLACK_BYTES`, leaves room for one compressed by another tool).

Every place CNN Studio hands a ``.keras`` file to Keras calls :func:`check_keras_archive` first:
``run_folder.load_model`` (evaluate, predict, explain, export, the model server, resume) and
``backbones.weights`` (a weights file, imported or trained from). No TensorFlow here.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from cnn_studio.core.errors import StudioError

MAX_CONFIG_BYTES = 32 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_EXPANSION = 20
SLACK_BYTES = 64 * 1024 * 1024


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.1f} kB"


def _is_json(member: str) -> bool:
    return "/" not in member and member.lower().endswith(".json")


def archive_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` must not be opened by Keras (what it would unpack to), or None.

    A file that is not a zip archive at all is not judged here (None): Keras' own error for it is
    turned into the usual "damaged file" message by the callers.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with zipfile.ZipFile(p) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if len(members) > MAX_MEMBERS:
        return f"it holds {len(members):,} files (a model holds a handful)"
    for info in members:
        if _is_json(info.filename) and info.file_size > MAX_CONFIG_BYTES:
            return (f"its {info.filename} would unpack to {_mb(info.file_size)} from {_mb(info.compress_size)} "
                    f"(a model's is at most a few MB)")
    total = sum(info.file_size for info in members)
    if total > MAX_EXPANSION * size + SLACK_BYTES:
        return f"it would unpack to {_mb(total)} from a file of {_mb(size)}"
    return None


def check_keras_archive(path: str | os.PathLike[str], error: type[StudioError] = StudioError) -> None:
    """Raise ``error`` (a :class:`StudioError` subclass) when :func:`archive_problem` finds one."""
    problem = archive_problem(path)
    if problem is None:
        return
    name = Path(path).name
    raise error(
        f"{name} is not a model file CNN Studio can open safely: {problem}.",
        "A .keras file saved by Keras or CNN Studio unpacks to about its own size; this one is damaged or was "
        "made to exhaust the computer's memory. Use a model file you trust (best.keras or last.keras of a run "
        "folder), or train the model again.")
