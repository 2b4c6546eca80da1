"""The latest entry per image, with undo, saved atomically as CSV: what corrections and added labels share.

:class:`~cnn_studio.labels.corrections.Corrections` (the review's decisions) and
:class:`~cnn_studio.labels.added_labels.AddedLabels` (classes given to images from outside the
dataset) both keep one entry per image (a newer one replaces it), take back the last change with
:meth:`LatestPerImage.undo`, and write themselves with :meth:`LatestPerImage.save` (temp + rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnn_studio.core.fsutil import write_text


class LatestPerImage:
    """Entries keyed by normalised image path; subclasses give ``to_csv`` and what they hold (``WHAT``)."""

    WHAT = "These entries"

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._by_path: dict[str, Any] = {}
        self._undo: list[tuple[str, Any]] = []

    def __len__(self) -> int:
        return len(self._by_path)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def _put(self, key: str, entry: Any, *, to_end: bool = False) -> Any:
        """Record ``entry`` for ``key`` (undoable); ``to_end`` moves the image to the end of the order."""
        self._undo.append((key, self._by_path.get(key)))
        if to_end:
            self._by_path.pop(key, None)
        self._by_path[key] = entry
        return entry

    def undo(self) -> Any | None:
        """Take back the last change; returns the entry undone (None when there is nothing to undo)."""
        if not self._undo:
            return None
        key, previous = self._undo.pop()
        undone = self._by_path.get(key)
        if previous is None:
            self._by_path.pop(key, None)
        else:
            self._by_path[key] = previous
        return undone

    def to_csv(self) -> str:  # pragma: no cover - each subclass writes its own columns
        raise NotImplementedError

    def save(self, path: str | Path | None = None) -> Path:
        """Write the CSV atomically (temp + rename) to ``path`` or the file the entries came from."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError(f"{type(self).__name__}.save needs a path: {self.WHAT.lower()} were not read from a file.")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, self.to_csv())
        self.path = target
        return target
