"""What this computer can do for CNN Studio, in one report: ``cnn-studio doctor`` and Help → About this computer.

Each :class:`Check` says what was looked at, what was found, whether it is fine, and — when it is
not — what to do. The report holds the versions a bug report needs (Python, TensorFlow, Keras,
PySide6, pyqtgraph…), warns about a dependency version known to crash the app, lists the GPUs
TensorFlow sees and whether training will use one, checks that Qt can open a window (naming the
system packages to install when it cannot), which ImageNet weights are available offline, and the
runs folder with its free disk space.

The engine never imports Qt: the Qt check runs in a child process (``cnn-studio --cnn-studio-qt-probe``,
which works frozen too), and versions are read from the installed packages' metadata.

Here: the versions, the cheap check before the app opens its window (:func:`window_problem`) and the
whole report (:func:`run_doctor`). Each other kind of check has its module: :mod:`~cnn_studio.computer.gpu_check`,
:mod:`~cnn_studio.computer.qt_check`, :mod:`~cnn_studio.computer.storage_check` (weights and the runs folder); the
report's form is :mod:`~cnn_studio.computer.doctor_report`.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import re
import sys
from importlib import metadata

from cnn_studio import __version__
from cnn_studio.computer.doctor_report import INFO, OK, PROBLEM, WARNING, Check, DoctorReport, install_fix
from cnn_studio.computer.gpu_check import GPU_SUPPORT, gpu_checks, gpu_support_check, platform_key
from cnn_studio.computer.qt_check import (
    DEBIAN_PACKAGES,
    debian_package,
    missing_libraries,
    pyside_dir,
    qt_checks,
    qt_platform,
)
from cnn_studio.computer.storage_check import (
    DISK_PROBLEM_BYTES,
    DISK_WARNING_BYTES,
    disk_checks,
    weights_checks,
)
from cnn_studio.core import tf_runtime  # the GPU check's TensorFlow (a test makes it fail)

__all__ = ["DEBIAN_PACKAGES", "DISK_PROBLEM_BYTES", "DISK_WARNING_BYTES", "GPU_SUPPORT", "INFO", "OK", "PACKAGES",
           "PROBLEM", "TESTED_RANGES", "WARNING", "XCB_LIBRARIES", "Check", "DoctorReport", "debian_package",
           "disk_checks", "gpu_checks", "gpu_support_check", "install_fix", "missing_libraries", "package_versions",
           "platform_key", "pyside_dir", "python_version", "qt_checks", "qt_platform", "report_json", "run_doctor",
           "tf_runtime", "version_problems", "weights_checks", "window_problem"]

PACKAGES = ("tensorflow", "keras", "PySide6-Essentials", "shiboken6", "pyqtgraph", "superqt", "numpy", "pillow",
            "pydicom", "nibabel", "tifffile", "onnxruntime", "tf2onnx")

TESTED_RANGES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # package: (lowest tested, first untested) — the same bounds as pyproject.toml
    "PySide6-Essentials": ((6, 9), (6, 12)),
    "pyqtgraph": ((0, 13, 7), (0, 15)),
}


# ---------------------------------------------------------------------------- versions
def package_versions() -> dict[str, str | None]:
    """Installed version of each package that matters to CNN Studio (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def python_version() -> tuple[int, int]:
    """This interpreter's (major, minor)."""
    return sys.version_info[0], sys.version_info[1]


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def version_problems(versions: dict[str, str | None] | None = None,
                     python: tuple[int, int] | None = None) -> list[Check]:
    """Installed versions known to crash the app, or outside the tested range (cheap: metadata only).

    PySide6/shiboken6 6.12.x on Python < 3.12 release None and True/False once too often while
    pyqtgraph repaints its plots, which aborts the process ("Fatal Python error: none_dealloc");
    Python 3.12 made those objects immortal, so the same defect does no harm there.
    """
    versions = package_versions() if versions is None else versions
    python = python_version() if python is None else python
    found = []
    pyside = versions.get("PySide6-Essentials") or versions.get("PySide6")
    if pyside and _parse_version(pyside)[:2] == (6, 12) and python < (3, 12):
        found.append(Check(
            "PySide6 version", PROBLEM,
            f"PySide6 {pyside} with Python {python[0]}.{python[1]} is known to crash CNN Studio while its plots "
            "redraw (\"Fatal Python error: none_dealloc\"): training curves can take the window down.",
            'pip install "PySide6-Essentials>=6.9,<6.12" (the versions CNN Studio is tested with)'))
    for name, (low, high) in TESTED_RANGES.items():
        have = versions.get(name)
        if not have or (name == "PySide6-Essentials" and found):
            continue  # already named as known to crash
        v = _parse_version(have)
        if not (low <= v < high):
            found.append(Check(
                f"{name} version", WARNING,
                f"{name} {have} is outside the versions CNN Studio is tested with "
                f"({'.'.join(map(str, low))} up to, not including, {'.'.join(map(str, high))}).",
                f'pip install "{name}>={".".join(map(str, low))},<{".".join(map(str, high))}"'))
    return found


# the system libraries Qt's xcb window plugin loads (libqxcb.so, libQt6XcbQpa.so.6; xcb-cursor at run time)
XCB_LIBRARIES = (
    "libxcb.so.1", "libX11.so.6", "libX11-xcb.so.1", "libxkbcommon.so.0", "libxkbcommon-x11.so.0",
    "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-image.so.0", "libxcb-keysyms.so.1", "libxcb-randr.so.0",
    "libxcb-render-util.so.0", "libxcb-render.so.0", "libxcb-shape.so.0", "libxcb-shm.so.0", "libxcb-sync.so.1",
    "libxcb-util.so.1", "libxcb-xfixes.so.0", "libxcb-xkb.so.1",
)


def _loadable(library: str) -> bool:
    """True when the dynamic loader finds ``library`` (microseconds: no process, no ``ldconfig``)."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def window_problem(env: dict[str, str] | None = None) -> str | None:
    """Why Qt would abort instead of opening the app's window here, with the command that fixes it; else None.

    Qt aborts the whole process (SIGABRT) when its xcb plugin cannot load, with a message that names
    libxcb-cursor0 whatever is missing. So before the app makes its QApplication: with the xcb
    plugin, when a library it needs does not load (:data:`XCB_LIBRARIES`, a cheap check), the
    doctor's Qt check runs (:func:`qt_checks`: ``ldd`` and a child process that tries to start Qt,
    which may abort without harm) and its problem is returned, naming the packages to install.
    A normal start costs the cheap check only.
    """
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux") or qt_platform(env) != "xcb":
        return None
    if all(_loadable(lib) for lib in XCB_LIBRARIES):
        return None
    problems = [c for c in qt_checks({}, timeout_s=30.0) if c.status == PROBLEM]
    if not problems:
        return None
    lines = ["CNN Studio cannot open its window."] + [f"{c.detail}\nWhat to do: {c.fix}" for c in problems]
    return "\n".join(lines + ["(`cnn-studio doctor` shows every check; everything the app does also works "
                               "without a window: see `cnn-studio --help`.)"])


# ---------------------------------------------------------------------------- the report
def run_doctor(*, gpu: bool = True, qt: bool = True) -> DoctorReport:
    """Every check. ``gpu=False`` skips importing TensorFlow; ``qt=False`` skips starting Qt."""
    report = DoctorReport()
    versions = package_versions()
    report.facts.update(cnn_studio=__version__, python=platform.python_version(),
                        python_executable=sys.executable, platform=platform.platform(), versions=versions)
    report.checks.append(Check("Python", OK, f"Python {platform.python_version()} ({sys.executable})."))
    for name in ("tensorflow", "keras"):
        if versions.get(name) is None:
            report.checks.append(Check(name, PROBLEM, f"{name} is not installed.",
                                       install_fix("pip install cnn-studio")))
    report.checks.append(Check(
        "Versions", INFO, ", ".join(f"{k} {v}" for k, v in versions.items() if v)))
    report.checks.extend(version_problems(versions))
    if gpu:
        report.checks.extend(gpu_checks(report.facts))
    report.checks.append(gpu_support_check())
    if qt:
        report.checks.extend(qt_checks(report.facts))
    report.checks.extend(weights_checks(report.facts))
    report.checks.extend(disk_checks(report.facts))
    return report


def report_json(report: DoctorReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)
