"""What both ends of the process boundary share: functions by import name, exceptions as plain data.

A function is named ``"package.module:qualname"`` (:func:`import_name`, :func:`resolve`). The child
sends an exception as :func:`error_to_dict`; the parent raises :func:`error_from_dict` (the same
StudioError, or a RunError naming the job and the log) or, for a child that died without a word,
:func:`crash_error`.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from cnn_studio.core import errors


def import_name(target: str | Callable[..., Any]) -> str:
    """``"package.module:qualname"`` of ``target`` (a name is checked for its shape and returned as is).

    Raises ValueError for a name without ``:`` and for a function a child cannot import (a lambda,
    a nested function, one defined in ``__main__``).
    """
    if callable(target) and not isinstance(target, str):
        module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
        if not module or module == "__main__" or "<" in qualname:
            raise ValueError(f"Expected a module-level function a child can import, received {target!r}")
        return f"{module}:{qualname}"
    module, sep, qualname = str(target).partition(":")
    if not (sep and module and qualname):
        raise ValueError(f"Expected an import name like 'package.module:function', received {target!r}")
    return str(target)


def resolve(name: str) -> Callable[..., Any]:
    """The object an :func:`import_name` names (``"cnn_studio.predict.predictor:Classifier.load"`` → the bound classmethod)."""
    module, _, qualname = import_name(name).partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def default_label(target: str | Callable[..., Any]) -> str:
    """A job's name for messages when the caller gives none: the function's name in words."""
    return import_name(target).rpartition(":")[2].rpartition(".")[2].replace("_", " ")


def error_to_dict(exc: BaseException) -> dict[str, str]:
    """An exception as plain data: class, module, message, hint and traceback."""
    if isinstance(exc, errors.StudioError):
        message, hint = exc.message, exc.hint
    else:
        message, hint = str(exc), ""
    return {"type": type(exc).__name__, "module": type(exc).__module__, "message": message, "hint": hint,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def error_from_dict(err: dict[str, Any], label: str, log_path: str | os.PathLike[str] | None) -> BaseException:
    """:func:`error_to_dict` back: the same StudioError, or a RunError naming the job, the exception and the log."""
    module = str(err.get("module") or "cnn_studio.core.errors")
    try:  # only our own modules are imported here: the app's process must not load TensorFlow for an error
        where_defined = importlib.import_module(module) if module.split(".")[0] == "cnn_studio" else sys.modules.get(module)
        cls = getattr(where_defined, str(err.get("type")), None)
    except ImportError:
        cls = None
    if isinstance(cls, type) and issubclass(cls, errors.StudioError):
        try:
            return cls(err.get("message", ""), err.get("hint", ""))
        except TypeError:  # a subclass with its own constructor: keep the words
            return errors.StudioError(err.get("message", ""), err.get("hint", ""))
    where = f" The details are in {log_path}." if log_path else ""
    return errors.RunError(f"The {label} process failed: {err.get('type')}: {err.get('message')}",
                           "This looks like a bug in CNN Studio or TensorFlow rather than a problem with "
                           f"your images; please report it with the log.{where}\n{err.get('traceback', '')}")


def crash_error(label: str, code: int | None, log_path: str | os.PathLike[str] | None) -> errors.RunError:
    """The RunError for a child that died without a word: which job, why (from its exit code), the log."""
    tail = ""
    if log_path:
        try:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = "".join(deque(f, maxlen=8)).strip()
        except OSError:
            pass
    why = {-9: "it was killed, most likely because the computer ran out of memory",
           137: "it was killed, most likely because the computer ran out of memory",
           -11: "it crashed inside TensorFlow (segmentation fault)",
           139: "it crashed inside TensorFlow (segmentation fault)",
           None: "it no longer answers"}.get(code, f"it exited with code {code}")
    return errors.RunError(
        f"The {label} process stopped unexpectedly: {why}.",
        "Whatever it had saved is kept: after training, the best model so far stays in the run folder, and "
        "\"Continue training\" on the Train step (or `cnn-studio resume RUN_DIR`) goes on from the last "
        "saved epoch. Try again; if it happens again, try a smaller batch size or image size, or close other "
        f"programs. Its messages (TensorFlow's included) are in {log_path}." + (f"\nLast lines:\n{tail}" if tail else ""))

