"""Export temporaries that name their writer, so a later export can remove what a killed one left.

An export writes ``.cnn-studio-export-<host>-<pid>-<random>.<file name>`` (a file, or a folder for
a SavedModel) next to its target, checks it, and renames it into place; a folder it replaces is
first moved aside as ``.cnn-studio-export-<host>-<pid>-old.<name>``. A process killed in between
leaves these in the user's ``--out`` folder. :func:`remove_stale` (at the start of every export,
and by ``open_run`` for a run's own exports folder) removes the ones written on this computer by a
process that is gone: never a file of any other name, never one a live export is still writing.
``<host>`` is 6 hex digits of a hash of the computer's name (a folder shared by two computers:
each removes only its own).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

from cnn_studio.core.fsutil import _remove, disk_error
from cnn_studio.runs.lock import _pid_alive

PREFIX = ".cnn-studio-export-"
_NAME = re.compile(r"^\.cnn-studio-export-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-(?:[0-9a-f]{8}|old)\..+$")


def host_tag() -> str:
    """This computer's part of a temporary's name."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:6]


def _temporary(target: Path, tag: str) -> Path:
    return target.with_name(f"{PREFIX}{host_tag()}-{os.getpid()}-{tag}.{target.name}")


@contextlib.contextmanager
def staged(target: str | os.PathLike[str], is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target`` (a new empty folder when ``is_dir``, else nothing there
    yet: writers create the file); on success it replaces ``target`` (a folder as a whole).

    The temporary keeps ``target``'s name as its end, so its suffix too (Keras checks ``.keras``). On
    any exception it is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target, secrets.token_hex(4))
    try:
        if is_dir:
            tmp.mkdir()
        yield tmp
        if is_dir and target.exists():
            old = _temporary(target, "old")
            _remove(old)
            os.replace(target, old)
            os.replace(tmp, target)
            _remove(old)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise disk_error(target, exc) from exc
    except BaseException:
        _remove(tmp)
        raise


def stale(folder: str | os.PathLike[str]) -> list[Path]:
    """The export temporaries directly in ``folder`` left by a process of this computer that is gone."""
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    here, me = host_tag(), os.getpid()
    out = []
    for name in names:
        m = _NAME.match(name)
        if m and m["host"] == here and int(m["pid"]) != me and not _pid_alive(int(m["pid"])):
            out.append(folder / name)
    return sorted(out)


def remove_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove :func:`stale` temporaries of ``folder``; returns what was removed."""
    removed = []
    for p in stale(folder):
        _remove(p)
        if not os.path.lexists(p):
            removed.append(p)
    return removed
