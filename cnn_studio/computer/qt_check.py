"""The doctor's Qt check: can Qt open a window here? Missing system libraries are named with the packages that ship them.

The engine never imports Qt: the check starts Qt in a child process (``cnn-studio --cnn-studio-qt-probe``,
which works frozen too) and reads missing libraries with ``ldd``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

from cnn_studio.computer.doctor_report import OK, PROBLEM, WARNING, Check, install_fix
from cnn_studio.core.child_start import QT_PROBE_FLAG, program_command

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
