"""User-facing errors. Each says what happened and what to do next.

Every error the engine raises on purpose is a :class:`StudioError`: ``message`` (what happened,
naming the file/folder/setting involved) and ``hint`` (what the user can do next). The CLI prints
both and exits non-zero; the GUI shows both in a dialog. Anything else is a bug and is shown with
its traceback.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base class: ``message`` says what happened, ``hint`` what to do next."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class DatasetError(StudioError):
    """The dataset cannot be used as it is (no classes, one class, too few images, bad manifest)."""


class ImageReadError(StudioError):
    """One image file could not be decoded (corrupt, truncated, unsupported, too large)."""


class ConfigError(StudioError):
    """A setting is out of range or inconsistent ("Expected ... received ...")."""


class WeightsUnavailable(StudioError):
    """Pretrained weights are not cached and cannot be downloaded (offline), or a file does not fit."""


class RunError(StudioError):
    """A run folder is missing, incomplete or from an incompatible version."""


class ExportError(StudioError):
    """An export could not be written or did not verify."""


class ProjectError(StudioError):
    """A project file is corrupt, unreadable or from a newer version of CNN Studio."""
