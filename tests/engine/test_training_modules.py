"""The training package's shape (issue 20): small modules split along the trainer's phases.

Each module under 400 lines, each function under 60, the run's shared values passed as named
dataclasses (``fit_context``) rather than long parameter lists, and the trainer's modules (start/
resume, state, data, phases, cached inputs) importing one way, without each other's private names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cnn_studio

TRAINING = Path(cnn_studio.__file__).parent / "training"
# the modules the trainer was split into, in the one direction they import each other
RUN_MODULES = ("trainer", "run_data", "phases", "cached_fit", "fit_context", "run_state", "result")


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_training_modules_and_functions_stay_small():
    long_modules = [p.name for p in TRAINING.glob("*.py") if len(p.read_text().splitlines()) > 400]
    long_functions = [f"{p.name}:{f.name} ({f.end_lineno - f.lineno + 1} lines)" for p in TRAINING.glob("*.py")
                      for f in _functions(p) if f.end_lineno - f.lineno + 1 > 60]
    assert not long_modules and not long_functions, (long_modules, long_functions)


def test_the_trainer_modules_take_few_parameters():
    """A run's values travel as RunContext / PreparedRun / Fit, not as a dozen arguments."""
    many = []
    for name in RUN_MODULES:
        for f in _functions(TRAINING / f"{name}.py"):
            args = f.args
            count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
            count -= bool(args.args and args.args[0].arg in ("self", "cls"))
            if count > 6:
                many.append(f"{name}.{f.name}: {count}")
    assert not many, many


def test_the_trainer_modules_import_one_way_without_private_names():
    from test_architecture import _package_imports  # tests/ is on the path (pyproject: pythonpath)

    imports = _package_imports(TRAINING, "cnn_studio.training")
    ours = {f"cnn_studio.training.{m}" for m in RUN_MODULES}
    private = sorted(f"{m} takes {t}.{n}" for m in ours for t, n in imports[m] if n.startswith("_") and t in ours)
    assert not private, private
    order = [f"cnn_studio.training.{m}" for m in RUN_MODULES]
    backwards = sorted(f"{m} imports {t}" for m in order for t, _ in imports[m]
                       if t in ours and order.index(t) <= order.index(m) and t != m)
    assert not backwards, backwards
