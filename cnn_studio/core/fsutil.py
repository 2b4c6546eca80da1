"""Atomic file writes: write to a temporary sibling, fsync, then rename over the target.

A reader (or a crash) never sees a half-written file: either the old content or the new.
A full disk raises :class:`~cnn_studio.core.errors.StudioError` naming the file and leaves the old one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnn_studio.core.errors import StudioError


def disk_error(path: Path, exc: OSError) -> StudioError:
    """The StudioError for an OSError while writing ``path``: a full disk, no permission, or the OS's words."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StudioError(
            f"The disk is full: could not write {path}.",
            "Free some space (or choose a folder on another drive) and try again; the previous "
            "version of the file was kept.",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StudioError(
            f"Permission denied: could not write {path}.",
            "Choose a folder you can write to, or change the folder's permissions.",
        )
    return StudioError(f"Could not write {path}: {exc.strerror or exc}.", "Check the folder and try again.")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    Use for writers that want a filename (``model.save(tmp)``). The temporary name keeps the
    target's suffix (Keras checks ``.keras``). On any exception the temporary file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    try:  # a full disk can refuse the folder or the temporary's name too
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix or path.suffix, dir=path.parent)
    except OSError as exc:
        raise disk_error(path, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers create it themselves (some refuse to overwrite)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise disk_error(path, exc) from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path`` (fsynced before the rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``.

    A file name that is not valid UTF-8 reaches Python as lone surrogates (``os.fsdecode``'s
    surrogateescape); those are written back as the original bytes, so the text names the very
    file (read it with ``errors="surrogateescape"``).
    """
    return write_bytes(path, text.encode("utf-8", "surrogateescape"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as pretty, UTF-8 JSON (non-ASCII kept readable).

    Lone surrogates (file names that are not valid UTF-8) are written as JSON ``\\udcXX`` escapes:
    the file stays valid UTF-8 JSON and :func:`read_json` gives back the same string, which
    ``open``/``Path`` turn into the original bytes.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n"
    return write_bytes(path, text.encode("utf-8", "backslashreplace"))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a UTF-8 JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?:[a-z0-9_]{8}(?:\.[^.]+)?|old-\d+)$")


def leftover_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """The hidden temporaries :func:`atomic_path`/:func:`atomic_dir` leave when the process is killed.

    ``.last.k3j_x9ab.keras``, ``.state.q1w2e3r4.json``, ``.saved_model.ab12cd34`` (a folder),
    ``.model.old-4242``: a dot, the target's name, a dot, mkstemp's 8 random characters (and the
    target's suffix), or ``old-PID``. Only entries directly in ``folder``; nothing else matches.
    """
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / n for n in names if _TEMPORARY.match(n))


def remove_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove :func:`leftover_temporaries` of ``folder``; returns what was removed.

    Call it only when no process is writing the folder (a run folder: when its lock is free).
    """
    removed = []
    for p in leftover_temporaries(folder):
        _remove(p)
        if not p.exists():
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` as a whole.

    Used for SavedModel exports and other folder artifacts. An existing ``path`` is moved aside
    and removed only after the new folder is in place.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise disk_error(path, exc) from exc
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the result should look like any new folder
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            _remove(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            _remove(old)
    except OSError as exc:
        _remove(tmp)
        raise disk_error(path, exc) from exc
    except BaseException:
        _remove(tmp)
        raise
