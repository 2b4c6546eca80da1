"""What this computer can do for CNN Studio, in one report: ``cnn-studio doctor`` and Help → About this computer.

Each :class:`Check` says what was looked at, what was found, whether it is fine, and — when it is
not — what to do. The report holds the versions a bug report needs (Python, TensorFlow, Keras,
PySide6, pyqtgraph…), warns about a dependency version known to crash the app, lists the GPUs
TensorFlow sees and whether training will use one, checks that Qt can open a window (naming the
system packages to install when it cannot), which ImageNet weights are available offline, and the
runs folder with its free disk space.

The engine never imports Qt: the Qt check runs in a child process (``cnn-studio --cnn-studio-qt-probe``,
which works frozen too), and versions are read
from the installed packages' metadata.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from cnn_studio import __version__
from cnn_studio.backbones.registry import all_specs
from cnn_studio.backbones.weights_store import offline_status, store_dir
from cnn_studio.core import tf_runtime
from cnn_studio.core.child_start import QT_PROBE_FLAG, program_command
from cnn_studio.core.paths import app_data_dir, keras_cache_dir, runs_dir

OK, WARNING, PROBLEM, INFO = "ok", "warning", "problem", "info"

PACKAGES = ("tensorflow", "keras", "PySide6-Essentials", "shiboken6", "pyqtgraph", "superqt", "numpy", "pillow",
            "pydicom", "nibabel", "tifffile", "onnxruntime", "tf2onnx")

TESTED_RANGES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # package: (lowest tested, first untested) — the same bounds as pyproject.toml
    "PySide6-Essentials": ((6, 9), (6, 12)),
    "pyqtgraph": ((0, 13, 7), (0, 15)),
}

DISK_WARNING_BYTES = 2 * 1024**3
DISK_PROBLEM_BYTES = 300 * 1024**2

# the Debian/Ubuntu package that ships each system library Qt's window plugin needs
DEBIAN_PACKAGES = {
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0", "libdbus-1.so.3": "libdbus-1-3",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1", "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1", "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0", "libSM.so.6": "libsm6", "libICE.so.6": "libice6",
    "libwayland-client.so.0": "libwayland-client0", "libwayland-cursor.so.0": "libwayland-cursor0",
}


@dataclass(frozen=True)
class Check:
    """One thing looked at: ``status`` is ok / info / warning / problem; ``fix`` says what to do when not ok."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class DoctorReport:
    """Every check, plus the plain facts a bug report needs (versions, devices, folders)."""

    checks: list[Check] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing the app needs is broken (warnings allowed)."""
        return not any(c.status == PROBLEM for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "facts": self.facts, "checks": [asdict(c) for c in self.checks]}

    @classmethod
    def from_dict(cls, d: dict) -> DoctorReport:
        return cls([Check(**c) for c in d.get("checks", [])], dict(d.get("facts", {})))

    def to_text(self) -> str:
        marks = {OK: "ok  ", INFO: "info", WARNING: "WARN", PROBLEM: "FAIL"}
        lines = [f"CNN Studio {self.facts.get('cnn_studio', __version__)} on "
                 f"{self.facts.get('platform', platform.platform())}"]
        for c in self.checks:
            lines.append(f"[{marks.get(c.status, c.status)}] {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"       what to do: {c.fix}")
        lines.append("Everything CNN Studio needs works." if self.ok
                     else "Something CNN Studio needs does not work: see FAIL above.")
        return "\n".join(lines)


def install_fix(pip_command: str) -> str:
    """What to do about a missing or broken package: ``pip_command``, or in the desktop download (which
    has no pip and carries its own packages) getting the download again."""
    if getattr(sys, "frozen", False):
        return ("download CNN Studio again and unpack it into a new folder: this copy is damaged or "
                "incomplete (your runs and settings are kept: they live outside the app's folder)")
    return pip_command


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


# ---------------------------------------------------------------------------- GPUs
def gpu_checks(facts: dict[str, object]) -> list[Check]:
    """The GPUs TensorFlow sees and whether training uses one (imports TensorFlow, quietly)."""

    try:
        tf_runtime.import_tensorflow()
    except Exception as exc:  # noqa: BLE001 - a broken TensorFlow is exactly what doctor reports
        return [Check("TensorFlow", PROBLEM, f"TensorFlow cannot be imported: {type(exc).__name__}: {exc}",
                      install_fix('pip install --force-reinstall "tensorflow>=2.16"'))]
    gpus = tf_runtime.gpu_devices()
    facts["gpus"] = [g.to_dict() for g in gpus]
    facts["device"] = tf_runtime.device_line(gpus)
    if gpus:
        return [Check("GPU", OK, facts["device"])]
    status = INFO if tf_runtime.no_gpu_reason() == "no GPU found" else WARNING
    fix = "" if status == INFO else tf_runtime.no_gpu_reason()
    return [Check("GPU", status, str(facts["device"]), fix)]


GPU_SUPPORT = {
    "linux": "Linux: NVIDIA GPUs through CUDA — install with pip and `pip install \"tensorflow[and-cuda]\"` "
             "(the downloadable app trains on the CPU).",
    "windows": "Windows: TensorFlow's native GPU support ended with version 2.10 — for a GPU, run CNN Studio "
               "in WSL2 (Ubuntu) with the Linux pip install and tensorflow[and-cuda]; here it trains on the CPU.",
    "macos": "macOS: on Apple silicon, `pip install tensorflow-metal` in the pip install trains on the Mac's GPU; "
             "Intel Macs and the downloadable app train on the CPU.",
}
"""How CNN Studio can use a GPU on each desktop system, one line each (doctor shows this computer's)."""


def platform_key(system: str | None = None) -> str:
    """``"linux"``, ``"windows"`` or ``"macos"`` for ``sys.platform`` (or the given one)."""
    system = sys.platform if system is None else system
    if system.startswith("win") or system == "cygwin":
        return "windows"
    return "macos" if system == "darwin" else "linux"


def gpu_support_check(system: str | None = None) -> Check:
    """The one line on how this computer's system can train on a GPU (:data:`GPU_SUPPORT`)."""
    return Check("GPU support", INFO, GPU_SUPPORT[platform_key(system)])


# ---------------------------------------------------------------------------- Qt
def pyside_dir() -> Path | None:
    """The installed PySide6 package folder, found without importing it."""
    spec = find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def missing_libraries(binaries: list[Path]) -> list[str]:
    """System libraries the given shared objects need but the loader cannot find (Linux, via ``ldd``)."""
    ldd = shutil.which("ldd")
    if not ldd:
        return []
    missing: list[str] = []
    for binary in binaries:
        if not binary.is_file():
            continue
        try:
            out = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=20, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in out.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+not found", line)
            if m and m.group(1) not in missing:
                missing.append(m.group(1))
    return missing


def debian_package(library: str) -> str:
    """The Debian/Ubuntu package that ships ``library`` (a good guess when it is not in the table)."""
    if library in DEBIAN_PACKAGES:
        return DEBIAN_PACKAGES[library]
    m = re.match(r"(lib[\w+.-]+?)\.so\.(\d+)", library)
    if not m:
        return library
    stem, major = m.group(1).lower(), m.group(2)
    return f"{stem}-{major}" if stem[-1].isdigit() else f"{stem}{major}"


def qt_platform(env: dict[str, str] | None = None) -> str:
    """The Qt platform plugin the app would use here (what QT_QPA_PLATFORM or the session asks for)."""
    env = os.environ if env is None else env
    if env.get("QT_QPA_PLATFORM"):
        return env["QT_QPA_PLATFORM"].split(":")[0]
    if sys.platform.startswith("linux"):
        if env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"):
            return "wayland"
        return "xcb"
    return {"darwin": "cocoa", "win32": "windows"}.get(sys.platform, "default")




def qt_checks(facts: dict[str, object], timeout_s: float = 60.0) -> list[Check]:
    """Can Qt start here? Tries in a child process, and names missing system libraries with their packages."""
    base = pyside_dir()
    if base is None:
        return [Check("Qt (PySide6)", PROBLEM, "PySide6 is not installed: the app window cannot open.",
                      install_fix('pip install "PySide6-Essentials>=6.9,<6.12"'))]
    wanted = qt_platform()
    facts["qt_platform"] = wanted
    checks: list[Check] = []
    missing = missing_libraries(sorted(base.glob("QtWidgets*.so")) + sorted(base.glob("QtGui*.so"))
                                + ([base / "Qt" / "plugins" / "platforms" / f"libq{wanted}.so"] if wanted in (
                                    "xcb", "wayland") else []))
    if missing:
        packages = sorted(dict.fromkeys(debian_package(lib) for lib in missing))
        checks.append(Check("System libraries for Qt", PROBLEM,
                            f"Qt's '{wanted}' window plugin needs libraries this system lacks: {', '.join(missing)}.",
                            "sudo apt-get install " + " ".join(packages)))
    screenless = sys.platform.startswith("linux") and wanted in ("xcb", "wayland") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    env = dict(os.environ)
    if screenless:
        env["QT_QPA_PLATFORM"] = "offscreen"  # still check that Qt itself loads
    try:
        proc = subprocess.run(program_command(QT_PROBE_FLAG), capture_output=True, text=True,
                              timeout=timeout_s, env=env, check=False)
        started = proc.returncode == 0 and "PLATFORM=" in proc.stdout
        output = (proc.stderr or "").strip().splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        started, output = False, [str(exc)]
    if started:
        platform_name = proc.stdout.split("PLATFORM=", 1)[1].strip()
        facts["qt_platform"] = platform_name
        if screenless:
            checks.append(Check("Screen", WARNING,
                                "No screen in this session (no DISPLAY or WAYLAND_DISPLAY): Qt loads, but the window "
                                "can only open on a desktop.",
                                "start it from a desktop session, with `ssh -X`, or as `xvfb-run cnn-studio`; every "
                                "command of `cnn-studio --help` works without a window"))
        else:
            checks.append(Check("Qt window", OK, f"Qt starts with the '{platform_name}' platform plugin."))
    elif not missing:
        tail = " ".join(output[-3:])[:400]
        checks.append(Check("Qt window", PROBLEM, f"Qt cannot start with the '{wanted}' platform plugin: {tail}",
                            "install your desktop's Qt system libraries (README: 'a minimal Linux install may lack "
                            "some'), or set QT_QPA_PLATFORM to a plugin that works here"))
    return checks


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


# ---------------------------------------------------------------------------- weights and folders
def weights_checks(facts: dict[str, object]) -> list[Check]:
    """Which backbones' ImageNet weights load without the internet (the app's store, then Keras' cache)."""

    cached = [spec.key for spec in all_specs() if offline_status(spec).available]
    facts["imagenet_weights_offline"] = cached
    facts["keras_cache"] = str(keras_cache_dir())
    facts["weights_store"] = str(store_dir())
    if cached:
        return [Check("ImageNet weights offline", OK, f"{len(cached)} backbone(s): {', '.join(cached)}.")]
    return [Check("ImageNet weights offline", INFO,
                  f"none that load, in the app's weights store ({store_dir()}) or Keras' cache "
                  f"({keras_cache_dir()}): they are downloaded on first use (needs the internet).",
                  "on a computer without internet: `cnn-studio weights import FILE` (or Model step → Import weights "
                  "file…) with the file fetched elsewhere")]


def disk_checks(facts: dict[str, object]) -> list[Check]:
    """The runs folder, whether it can be written, and the free disk space under it."""
    folder = runs_dir()
    facts["runs_folder"] = str(folder)
    facts["app_data"] = str(app_data_dir())
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    facts["free_disk_bytes"] = free
    writable = os.access(probe, os.W_OK)
    gib = free / 1024**3
    if not writable:
        return [Check("Runs folder", PROBLEM, f"{folder} cannot be written (no permission on {probe}).",
                      "set CNN_STUDIO_HOME to a folder you can write, or save the project in one")]
    if free < DISK_PROBLEM_BYTES:
        return [Check("Runs folder", PROBLEM, f"{folder}: only {free / 1024**2:.0f} MB free — a run cannot save.",
                      "free disk space or set CNN_STUDIO_HOME to another disk")]
    if free < DISK_WARNING_BYTES:
        return [Check("Runs folder", WARNING, f"{folder}: {gib:.1f} GiB free — large backbones need more.",
                      "free disk space or set CNN_STUDIO_HOME to another disk")]
    return [Check("Runs folder", OK, f"{folder} ({gib:.0f} GiB free).")]


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
