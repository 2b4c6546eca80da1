"""The one writer of a run folder: ``run.lock`` with the holder's PID, host, start time and purpose.

``with RunLock(run_dir, "train"): ...`` is taken by train/resume and by everything else that writes
a run folder (evaluate, export, the review). On POSIX the file is also ``flock``-ed while held, so
the kernel releases it however the holder dies; a lock left by a killed process is taken over.
:func:`lock_holder` says who holds a folder now (None when it is free). No TensorFlow, no Qt.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
from pathlib import Path
from typing import Any

from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import disk_error
from cnn_studio.core.paths import RunLayout

__all__ = ["RunBusy", "RunLock", "describe_holder", "lock_holder"]



def _host() -> str:
    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``"train" by process 4242 on host-a since 2025-01-01T10:00:00+00:00`` (words for a lock's holder)."""
    if not holder:
        return "another process"
    return (f"`{holder.get('purpose', 'a writer')}` by process {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')} since {holder.get('started', '?')}")


try:
    import fcntl as _fcntl
except ImportError:  # Windows: the PID check alone decides
    _fcntl = None


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """Who holds the run folder's lock now (``{"pid", "host", "started", "purpose"}``), or None when it is free.

    A lock file left by a process that is gone (killed, crashed) counts as free.
    """
    path = RunLayout(Path(run_dir)).lock
    if not path.exists():
        return None
    holder = _read_holder(path)
    if _fcntl is not None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            _fcntl.flock(fd, _fcntl.LOCK_SH | _fcntl.LOCK_NB)
        except OSError:
            return holder or {"purpose": "a writer"}
        else:
            _fcntl.flock(fd, _fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
    if holder.get("host") == _host() and not _pid_alive(int(holder.get("pid", 0) or 0)):
        return None
    return holder or None


class RunBusy(RunError):
    """Another process is writing the run folder."""


class RunLock:
    """The one writer of a run folder: ``with RunLock(run_dir, "train"): ...``.

    The lock file (``RunLayout.lock``) holds the holder's PID, host, start time and purpose. On
    POSIX it is also ``flock``-ed while held, so the kernel releases it when the holder dies
    however it dies; elsewhere a lock whose PID is gone on this host is stale. A stale lock is
    taken over (``took_over`` is the previous holder). Re-entrant within one process for the same
    folder (a nested writer, e.g. the review inside training, shares the outer lock).

    Raises
    ------
    RunBusy
        When a live process holds it: the message names that process.
    """

    _held: dict[Path, RunLock] = {}

    def __init__(self, run_dir: str | Path, purpose: str) -> None:
        self.layout = RunLayout(Path(run_dir).expanduser())
        self.purpose = purpose
        self.took_over: dict[str, Any] | None = None
        self._fd: int | None = None
        self._outer: RunLock | None = None

    @property
    def path(self) -> Path:
        return self.layout.lock

    def acquire(self) -> RunLock:
        """Take the lock. RunBusy when a live process holds it; a StudioError naming the lock file when
        it cannot be written (a full disk, no permission), with nothing left behind."""
        key = self.layout.root.absolute()
        outer = RunLock._held.get(key)
        if outer is not None:
            self._outer = outer
            return self
        try:
            return self._acquire(key)
        except OSError as exc:
            self._abandon()
            raise disk_error(self.path, exc) from exc

    def _abandon(self) -> None:
        """Undo a half-taken lock: close our descriptor and remove the lock file we opened."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def _acquire(self, key: Path) -> RunLock:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            previous = _read_holder(self.path) if self.path.exists() else None
            if _fcntl is None:
                self._acquire_by_pid(previous)
                break
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._busy(_read_holder(self.path)) from None
            try:  # the file may have been removed (released) between open and flock: try again
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self._fd = fd
            self.took_over = previous or None
            break
        else:
            raise RunBusy(f"Could not lock {self.layout.root}: its lock file keeps changing.",
                          "Another program is writing this folder; wait for it to finish.")
        self._write_holder()
        RunLock._held[key] = self
        return self

    def _acquire_by_pid(self, previous: dict[str, Any] | None) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if lock_holder(self.layout.root) is not None:
                raise self._busy(previous) from None
            stale = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, stale)  # one taker wins the rename of the stale file
            stale.unlink()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self.took_over = previous
        self._fd = fd

    def _write_holder(self) -> None:
        holder = {"pid": os.getpid(), "host": _host(), "purpose": self.purpose,
                  "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        data = json.dumps(holder).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def _busy(self, holder: dict[str, Any] | None) -> RunBusy:
        return RunBusy(f"The run folder {self.layout.root} is in use: {describe_holder(holder)}.",
                       "Only one program may write a run folder at a time. Wait until it finishes, stop it "
                       "(Stop in the app, Ctrl+C in its terminal), or choose another folder.")

    def release(self) -> None:
        if self._outer is not None:
            self._outer = None
            return
        if self._fd is None:
            return
        RunLock._held.pop(self.layout.root.absolute(), None)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still holding it: a waiting taker sees a new file
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
