"""The files a checkpoint writes: a ``.keras`` model saved atomically (with or without its optimizer)
and history.csv (one row per finished epoch). :class:`~cnn_studio.training.callbacks.AtomicCheckpoints`
writes them; ``cnn_studio.runs`` reads them back for everything else."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from cnn_studio.core.fsutil import atomic_path, write_text


def save_model(model, path: Path, *, include_optimizer: bool) -> None:
    """Save ``model`` atomically as a ``.keras`` file, with or without its optimizer state.

    Keras 3 ignores ``include_optimizer`` for ``.keras`` files, so without it the model is saved
    uncompiled (no optimizer, no compile settings) and compiled again as it was. best.keras is
    for evaluating, classifying and exporting, which never need the optimizer: without its
    Adam moments it is about a third of last.keras (which ``resume`` needs whole).
    """
    with atomic_path(path) as tmp:
        if include_optimizer or not getattr(model, "compiled", False):
            model.save(tmp)
            return
        optimizer = model.optimizer
        model.optimizer, model.compiled = None, False
        try:
            model.save(tmp)
        finally:
            model.optimizer, model.compiled = optimizer, True


def read_history(path: Path) -> list[dict[str, str]]:
    """Rows of a history.csv (empty when there is none yet)."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write per-epoch rows: ``epoch`` first, then every metric seen, sorted."""
    keys = sorted({k for r in rows for k in r} - {"epoch"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["epoch", *keys], restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())
