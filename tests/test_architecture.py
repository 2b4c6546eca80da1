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
    assert "cnn_studio.core.events" in mods and "cnn_studio.cli" in mods
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


def _package_imports(package: Path, prefix: str) -> dict[str, set[tuple[str, str]]]:
    """Each module of ``package`` → the (module, name) pairs it imports from its own package, at any depth
    (imports inside functions count: a lazy import is still a dependency)."""
    import ast

    modules = {f"{prefix}.{p.stem}": p for p in package.glob("*.py") if p.stem != "__init__"}
    found: dict[str, set[tuple[str, str]]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if target in modules:  # from cnn_studio.backbones import registry
                        found[name].add((target, ""))
                    elif node.module in modules:
                        found[name].add((node.module, alias.name))
            elif isinstance(node, ast.Import):
                found[name].update((a.name, "") for a in node.names if a.name in modules)
    return found


def test_backbones_modules_import_one_way_without_private_names():
    """registry → weights_files → weights → weights_store → classifier: no module imports one that (even
    lazily, inside a function) imports it back, and none takes another's private (underscored) names."""
    imports = _package_imports(ROOT / "backbones", "cnn_studio.backbones")
    private = sorted(f"{m} takes {t}.{n}" for m, pairs in imports.items() for t, n in pairs if n.startswith("_"))
    assert not private, private
    graph = {m: {t for t, _ in pairs if t != m} for m, pairs in imports.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, "import cycle: " + " → ".join((*path[path.index(module):], module))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


# ---------------------------------------------------------------- room sizes (issue 20: no room too big to change)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 6  # besides self/cls; more values get a name (a small dataclass)


def _sources() -> list[Path]:
    ui = ROOT / "ui"  # installed as cnn_studio.ui; in a checkout it is ../ui
    roots = [ROOT, ui if ui.is_dir() else ROOT.parent / "ui"]
    return sorted(p for r in roots for p in r.rglob("*.py"))


def _rooms_over_the_limits() -> list[str]:
    import ast

    over = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            over.append(f"{path}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            a = node.args
            params = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs) if x.arg not in ("self", "cls")]
            if length > MAX_FUNCTION_LINES:
                over.append(f"{path}:{node.lineno} {node.name}: {length} lines")
            if len(params) > MAX_PARAMETERS:
                over.append(f"{path}:{node.lineno} {node.name}: {len(params)} parameters")
    return over


def test_no_module_over_400_lines_no_function_over_60_or_with_more_than_6_parameters():
    assert len(_sources()) > 100, "the engine's and the app's modules are found"
    assert _rooms_over_the_limits() == []


def test_every_package_is_installed():
    """pyproject.toml lists the packages by name: one left out installs an app that fails at start
    (cnn_studio.computer was, when the doctor moved out of core/: the installed app stopped with
    ModuleNotFoundError before its window)."""
    import tomllib

    root = ROOT.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in ((root / "cnn_studio", "cnn_studio"), (root / "ui", "cnn_studio.ui"),
                      (root / "resources", "cnn_studio.resources")):
        for init in top.rglob("__init__.py"):
            rel = init.parent.relative_to(top).parts
            if "__pycache__" not in rel:
                found.add(".".join((name, *rel)))
    assert found - listed == set(), "packages that pip install . would leave out"
    assert listed - found == set(), "listed packages that do not exist"
