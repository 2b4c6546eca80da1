"""Driving the unpacked desktop bundle from outside, as a user's computer would: a clean folder, no Python.

Used by test_bundle.py and by tools/measure_bundle_start.py (time to the first window).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WINDOW_TITLE = "CNN Studio"


def build_archive() -> Path:
    """Run tools/build_bundle.py and return the archive it wrote."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_bundle.py")], check=True, cwd=ROOT)
    return newest_archive()


def newest_archive() -> Path:
    archives = sorted((ROOT / "dist").glob("cnn-studio-*.tar.*"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise FileNotFoundError("no dist/cnn-studio-*.tar.xz: run tools/build_bundle.py")
    return archives[-1]


def unpack(archive_or_folder: Path, where: Path) -> Path:
    """The bundle's folder (the one holding the ``cnn-studio`` program), unpacked into ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    if archive_or_folder.is_dir():
        target = where / archive_or_folder.name
        shutil.copytree(archive_or_folder, target, symlinks=True)
        return target
    with tarfile.open(archive_or_folder) as tf:
        tf.extractall(where, filter="tar") if hasattr(tarfile, "tar_filter") else tf.extractall(where)
    return next(p.parent for p in where.glob("*/cnn-studio"))


def clean_env(bundle: Path, home: Path, display: str | None = None) -> dict[str, str]:
    """An environment with nothing but the bundle on PATH (no Python), a fresh home and app data folder."""
    env = {"PATH": str(bundle), "HOME": str(home), "CNN_STUDIO_HOME": str(home / "studio"),
           "LANG": "C.UTF-8", "TMPDIR": str(home / "tmp")}
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    if display:
        env["DISPLAY"] = display
    return env


def window_ids(display: str, title: str = WINDOW_TITLE) -> list[str]:
    """Visible X windows whose title contains ``title`` (xdotool on the test machine)."""
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", title], capture_output=True, text=True,
                         env=dict(os.environ, DISPLAY=display), check=False).stdout
    return out.split()


def start_until_window(cmd: list[str], env: dict[str, str], cwd: Path, display: str, log: Path,
                       timeout_s: float = 120.0) -> tuple[subprocess.Popen, float]:
    """Start the app and wait for its first visible window: the process and the seconds it took."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    while time.monotonic() - started < timeout_s:
        if window_ids(display):
            return proc, time.monotonic() - started
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode} before a window: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    stop(proc)
    raise TimeoutError(f"no window within {timeout_s} s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class VirtualScreen:
    """An Xvfb screen for the app (the test machine's Xvfb; the bundle itself needs only a display)."""

    def __init__(self, size: str = "1280x800") -> None:
        read, write = os.pipe()  # Xvfb picks a free display number and writes it here (-displayfd)
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size}x24",
                                      "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(write,))
        os.close(write)
        with os.fdopen(read) as f:
            self.display = ":" + f.readline().strip()
        for _ in range(100):
            if subprocess.run(["xdpyinfo"], env=dict(os.environ, DISPLAY=self.display), capture_output=True,
                              check=False).returncode == 0:
                return
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"Xvfb did not start on {self.display}")

    def key(self, window: str, keys: str) -> None:
        env = dict(os.environ, DISPLAY=self.display)
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, check=False)
        subprocess.run(["xdotool", "key", keys], env=env, check=True)

    def screenshot(self, path: Path) -> None:
        subprocess.run(["import", "-window", "root", str(path)], env=dict(os.environ, DISPLAY=self.display),
                       check=False)

    def close(self) -> None:
        stop(self.proc)
