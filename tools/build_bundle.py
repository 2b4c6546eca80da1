"""Build the CNN Studio desktop bundle: one folder and one archive that run without Python.

    python tools/build_bundle.py                 # stage, PyInstaller, trim, archive (10-20 min)
    python tools/build_bundle.py --reuse         # trim and archive the last build again (no PyInstaller)
    python tools/build_bundle.py --no-onnx       # leave the ONNX exporter out (about 110 MB less)

Needs the build extra: ``pip install -e ".[bundle]"`` (PyInstaller and its community hooks).
Steps:

1. **stage** — a normal (non-editable) install of this repository into ``build/bundle/stage``, so
   the bundle holds ``cnn_studio``, ``cnn_studio.ui`` and ``cnn_studio.resources`` exactly as pip
   installs them (a development checkout maps ``ui/`` and ``resources/`` by an import hook that
   PyInstaller does not follow).
2. **PyInstaller** with ``packaging/cnn_studio.spec`` → ``dist/cnn-studio/`` (one folder).
3. **trim** — what the app never uses: TensorFlow's C++ headers, test folders, Qt translations and
   plugins the app does not load, debug symbols (``strip --strip-unneeded`` on Linux).
4. **archive** — ``dist/cnn-studio-VERSION-PLATFORM.tar.xz`` (``.zip`` on Windows; ``--gzip``: ``.tar.gz``).

It prints the sizes (unpacked, compressed) and what it left out, and writes them to
``dist/bundle-report.json``. docs/packaging.md explains the choices.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "cnn_studio.spec"
BUILD = ROOT / "build" / "bundle"
DIST = ROOT / "dist"
NAME = "cnn-studio"

# Paths under the bundle's _internal folder that the app never uses (glob patterns, relative).
TRIM_PATTERNS = (
    "tensorflow/include",  # C++ headers for writing TensorFlow ops (430 MB in the wheel)
    "tensorflow/xla_aot_runtime_src",
    "**/tests", "**/test", "**/testing/data",  # libraries' own test suites and test data
    "PySide6/Qt/translations",  # Qt's own dialogs in other languages; the app is English only
    "PySide6/Qt/plugins/qmltooling", "PySide6/Qt/plugins/sqldrivers", "PySide6/Qt/plugins/multimedia",
    "PySide6/Qt/plugins/position", "PySide6/Qt/plugins/networkinformation", "PySide6/Qt/plugins/tls",
    "PySide6/Qt/plugins/designer", "PySide6/Qt/plugins/canbus", "PySide6/Qt/plugins/sensors",
    "PySide6/Qt/plugins/webview", "PySide6/Qt/plugins/scenegraph", "PySide6/Qt/plugins/renderers",
    "PySide6/Qt/plugins/generic",
    "PySide6/Qt/lib/libQt6WebEngine*", "PySide6/Qt/lib/libQt6Quick*", "PySide6/Qt/lib/libQt6Qml*",
    "PySide6/Qt/lib/libQt63D*", "PySide6/Qt/lib/libQt6Pdf*", "PySide6/Qt/lib/libQt6Designer*",
    "PySide6/Qt/resources/qtwebengine*",
    "**/*.pyi", "**/*.a", "**/*.lib", "**/*.pdb",
)

STRIP_PACKAGES = ("tensorflow", "PySide6", "libpython")  # most of the bytes, and libraries no patchelf touched
STRIP_MIN_BYTES = 1 << 20  # strip shared libraries of 1 MB and more (the rest gains nothing)


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def version() -> str:
    text = (ROOT / "cnn_studio" / "__init__.py").read_text(encoding="utf-8")
    return text.split('__version__ = "', 1)[1].split('"', 1)[0]


def platform_tag() -> str:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"{system}-{machine}"


def folder_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


# ---------------------------------------------------------------------------- 1. stage
def stage() -> Path:
    target = BUILD / "stage"
    shutil.rmtree(target, ignore_errors=True)
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-compile",
         "--quiet", "--target", str(target), str(ROOT)])
    shutil.rmtree(ROOT / "build" / "lib", ignore_errors=True)  # setuptools' own build folder
    return target


# ---------------------------------------------------------------------------- 2. PyInstaller
def pyinstaller(staged: Path, onnx: bool, clean: bool = False) -> Path:
    env = dict(os.environ, CNN_STUDIO_STAGE=str(staged), CNN_STUDIO_BUNDLE_ONNX="1" if onnx else "0")
    env.pop("PYTHONPATH", None)
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", *(["--clean"] if clean else []), "--log-level", "WARN",
         "--distpath", str(DIST), "--workpath", str(BUILD / "work"), str(SPEC)], env=env)
    return DIST / NAME


# ---------------------------------------------------------------------------- 3. trim
def internal_dir(bundle: Path) -> Path:
    for candidate in (bundle / "_internal", bundle / "Contents" / "Frameworks", bundle):
        if candidate.is_dir():
            return candidate
    return bundle


def remove_unused(internal: Path) -> list[dict[str, object]]:
    """Delete what :data:`TRIM_PATTERNS` names; returns what went and how big it was."""
    removed: list[dict[str, object]] = []
    for pattern in TRIM_PATTERNS:
        for path in sorted(internal.glob(pattern)):
            if not path.exists() or path.is_symlink() and not path.exists():
                continue
            rel = path.relative_to(internal).as_posix()
            if pattern.startswith("**/test") and rel.startswith("cnn_studio"):
                continue
            size = folder_bytes(path) if path.is_dir() else path.lstat().st_size
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append({"path": rel, "bytes": size, "why": pattern})
    return removed


def strippable(path: Path, internal: Path) -> bool:
    """False for the libraries auditwheel vendored into a wheel (``numpy.libs/libscipy_openblas64_-32a4b2a6.so``):
    patchelf rewrote their headers, and strip then leaves a file the loader refuses ("ELF load command
    address/offset not page-aligned"); the same goes for the extension modules whose RPATH it set. So
    only :data:`STRIP_PACKAGES` are stripped: TensorFlow and Qt ship their own, unpatched libraries."""
    parts = path.relative_to(internal).parts
    if not parts[0].startswith(STRIP_PACKAGES) or any(part.endswith(".libs") for part in parts):
        return False
    return re.search(r"-[0-9a-f]{8}\.so", path.name) is None


def strip_binaries(internal: Path) -> int:
    """``strip --strip-unneeded`` on the large shared libraries (Linux); returns the bytes saved."""
    strip = shutil.which("strip")
    if not sys.platform.startswith("linux") or not strip:
        return 0
    saved = 0
    for path in internal.rglob("*"):
        if path.is_symlink() or not path.is_file() or not fnmatch.fnmatch(path.name, "*.so*"):
            continue
        if not strippable(path, internal):
            continue
        before = path.stat().st_size
        if before < STRIP_MIN_BYTES:
            continue
        if subprocess.run(["nice", strip, "--strip-unneeded", str(path)], capture_output=True).returncode == 0:
            saved += before - path.stat().st_size
    return saved


# ---------------------------------------------------------------------------- 4. archive
def archive(bundle: Path, gzip: bool = False) -> Path:
    """The download: a .zip on Windows, else a .tar.xz (``gzip``: .tar.gz, larger but quicker to make).

    xz because the download must stay small: on Linux the same folder is 632 MB as .tar.gz (gzip -6).
    Level 3: on 64 MB of libtensorflow_cc, gzip -6 gave 10.4 MB in 4 s, xz -3 8.2 MB in 22 s, xz -6
    7.7 MB in 51 s (zstd -12 9.0 MB in 5 s, but not every desktop unpacks .tar.zst). Every desktop
    Linux and macOS unpacks .tar.xz.
    """
    stem = f"{NAME}-{version()}-{platform_tag()}"
    if sys.platform == "win32":
        out = DIST / f"{stem}.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for path in sorted(bundle.rglob("*")):
                zf.write(path, Path(stem) / path.relative_to(bundle))
        return out
    suffix, compressor = (".tar.gz", "gzip -6") if gzip else (".tar.xz", "xz -T0 -3")
    out = DIST / f"{stem}{suffix}"
    tar = shutil.which("tar")
    if sys.platform.startswith("linux") and tar and shutil.which(compressor.split()[0]):
        # GNU tar: keeps symlinks, and xz uses every core
        run(["nice", tar, "-I", compressor, "-cf", str(out), "-C", str(bundle.parent),
             "--transform", f"s,^{bundle.name},{stem},", bundle.name])
    else:
        # a macOS .app keeps its name inside the version's folder (Finder needs the .app suffix)
        arcname = f"{stem}/{bundle.name}" if bundle.suffix == ".app" else stem
        with tarfile.open(out, "w:gz" if gzip else "w:xz") as tf:
            tf.add(bundle, arcname=arcname)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reuse", action="store_true", help="skip staging and PyInstaller: trim and archive dist/")
    parser.add_argument("--no-onnx", action="store_true", help="leave the ONNX exporter (tf2onnx, onnx, onnxruntime) out")
    parser.add_argument("--no-archive", action="store_true", help="stop after trimming")
    parser.add_argument("--gzip", action="store_true", help="write a .tar.gz instead of a .tar.xz (Linux, macOS)")
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first (a full analysis)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    bundle = DIST / NAME
    if not args.reuse:
        bundle = pyinstaller(stage(), onnx=not args.no_onnx, clean=args.clean)
    if not bundle.is_dir():
        print(f"No bundle at {bundle}: run without --reuse first.", file=sys.stderr)
        return 2
    app = DIST / "CNN Studio.app"
    if sys.platform == "darwin" and app.is_dir():
        bundle = app  # what a Mac user drags to Applications; left as PyInstaller signed it (no trimming)
    internal = internal_dir(bundle)
    built = folder_bytes(bundle)
    removed = remove_unused(internal) if bundle != app else []
    stripped = strip_binaries(internal)
    earlier = DIST / "bundle-report.json"
    if args.reuse and earlier.is_file():  # what the earlier trim of this same build did stays in the report
        before = json.loads(earlier.read_text(encoding="utf-8"))
        built = max(built, int(before.get("bytes_as_built", 0)))
        stripped += int(before.get("stripped_bytes", 0))
        removed = before.get("removed", []) + removed
    report = {"version": version(), "platform": platform_tag(), "bundle": str(bundle),
              "bytes_as_built": built, "bytes_unpacked": folder_bytes(bundle), "stripped_bytes": stripped,
              "removed": removed, "onnx": not args.no_onnx}
    if not args.no_archive:
        out = archive(bundle, gzip=args.gzip)
        report.update(archive=str(out), bytes_compressed=out.stat().st_size)
    report["build_seconds"] = round(time.monotonic() - started)
    (DIST / "bundle-report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nBundle: {bundle}\n  as PyInstaller left it: {mb(built)}\n  unpacked: {mb(report['bytes_unpacked'])}"
          f" (strip --strip-unneeded saved {mb(stripped)})")
    if "archive" in report:
        print(f"  download: {report['archive']} {mb(report['bytes_compressed'])}")
    print("Left out:")
    for item in removed:
        print(f"  {item['path']} ({mb(int(item['bytes']))})")
    print(f"Took {report['build_seconds']} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
