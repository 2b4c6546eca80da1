"""Layering rules checked in fresh interpreters (docs/architecture.md, "Two layers, one direction").

* importing any engine module never loads PySide6 (the engine is headless);
* importing any engine module never loads TensorFlow (listing, checking and --help stay fast);
* importing the Qt app never loads TensorFlow (the window shows before TF is imported).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import cnn_studio

ROOT = Path(cnn_studio.__file__).parent


# Modules that exist to subclass Keras classes import Keras at module level; everything else
# imports TensorFlow/Keras inside functions, and these modules are themselves imported lazily.
KERAS_BOUND = {"cnn_studio.training.callbacks"}


def engine_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(ROOT)], prefix="cnn_studio."):
        if info.name.startswith(("cnn_studio.ui", "cnn_studio.resources")):
            continue
        names.append(info.name)
    return sorted(names)


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k.split('.')[0] for k in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_engine_modules_are_found():
    mods = engine_modules()
    assert "cnn_studio.events" in mods and "cnn_studio.cli" in mods
    assert len(mods) > 20


def test_keras_bound_modules_import_no_qt():
    loaded = _loaded_after_import(sorted(KERAS_BOUND))
    assert "PySide6" not in loaded


def test_engine_imports_neither_qt_nor_tensorflow():
    loaded = _loaded_after_import([m for m in engine_modules() if m not in KERAS_BOUND])
    assert "PySide6" not in loaded, "an engine module imports Qt"
    assert "pyqtgraph" not in loaded
    assert "tensorflow" not in loaded, "an engine module imports TensorFlow at module level"
    assert "keras" not in loaded, "an engine module imports Keras at module level"


def test_ui_app_does_not_import_tensorflow():
    ui_modules = [
        info.name
        for info in pkgutil.walk_packages([str(ROOT.parent / "ui")], prefix="cnn_studio.ui.")
    ]
    loaded = _loaded_after_import(["cnn_studio.ui.app", *ui_modules])
    assert "PySide6" in loaded
    assert "tensorflow" not in loaded, "a ui module imports TensorFlow at module level"
    assert "keras" not in loaded
