"""Two or more runs side by side (no TensorFlow, no Qt): settings with the differing ones marked,
metrics in one table, their curves from history.csv (``cnn-studio runs --compare``, the Compare view).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_studio.core.errors import RunError
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.listing import RunSummary, format_size, summarize
from cnn_studio.runs.reproducibility import read_reproducibility, reproducibility_summary
from cnn_studio.runs.run_folder import read_config, read_history, read_metrics


@dataclass(frozen=True)
class RunComparison:
    """Two or more runs side by side.

    ``settings`` and ``metrics`` are ``(name, [value per run])`` rows; ``differing`` names the
    settings whose values are not all equal; ``histories`` holds each run's history.csv rows;
    ``notes`` says what could not be read (a damaged file) per run.
    """

    runs: tuple[RunSummary, ...]
    settings: tuple[tuple[str, tuple[Any, ...]], ...]
    differing: frozenset[str]
    metrics: tuple[tuple[str, tuple[Any, ...]], ...]
    histories: tuple[tuple[dict[str, float], ...], ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.runs],
                "settings": [{"name": k, "values": list(v), "differs": k in self.differing} for k, v in self.settings],
                "metrics": [{"name": k, "values": list(v)} for k, v in self.metrics],
                "histories": [list(h) for h in self.histories], "notes": list(self.notes)}


def _run_settings(layout: RunLayout, notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        out.update({k: v for k, v in read_config(layout).to_dict().items() if k != "extra"})
    except RunError as exc:
        notes.append(f"{layout.root.name}: {exc.message}")
    try:
        rec = reproducibility_summary(read_reproducibility(layout.root))
    except RunError as exc:
        rec = {}
        notes.append(f"{layout.root.name}: {exc.message}")
    if rec:
        out["dataset fingerprint"] = (rec["dataset_sha256"] or "")[:12] + f" ({rec['dataset_files']} files)"
        out["app version"] = rec["app_version"]
        out["python"] = rec["python"]
        out.update({f"{name} version": v for name, v in rec["libraries"].items()})
    return out


def _run_metrics(summary: RunSummary, history: list[dict[str, float]], notes: list[str]) -> dict[str, Any]:
    layout = RunLayout(Path(summary.path))
    losses = [row["val_loss"] for row in history if "val_loss" in row]
    out: dict[str, Any] = {"status": summary.status, "epochs": f"{summary.epochs_done}/{summary.total_epochs}",
                           "best val accuracy": summary.best_val_accuracy,
                           "lowest val loss": min(losses) if losses else None}
    try:
        m = read_metrics(layout) or {}
    except RunError as exc:
        m = {}
        notes.append(f"{layout.root.name}: {exc.message}")
    per_class = m.get("per_class") or []
    f1 = [r.get("f1", 0.0) for r in per_class if isinstance(r, dict)]
    out.update({"evaluated on": f"{m.get('n_images')} {m.get('subset')} images" if m else None,
                "accuracy": m.get("accuracy"), "macro F1": sum(f1) / len(f1) if f1 else None,
                "macro ROC AUC": (m.get("roc_auc") or {}).get("macro") if m else None,
                "top-2 accuracy": (m.get("top_k_accuracy") or {}).get("2") if m else None,
                "size on disk": format_size(summary.size_bytes),
                layout.best_model.name: format_size(summary.best_model_bytes) if summary.best_model_bytes else None,
                layout.last_model.name: format_size(summary.last_model_bytes) if summary.last_model_bytes else None})
    return out


def _rows(dicts: list[dict[str, Any]]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    keys: list[str] = []
    for d in dicts:
        keys += [k for k in d if k not in keys]
    return tuple((k, tuple(d.get(k) for d in dicts)) for k in keys)


def compare_runs(*run_dirs: str | os.PathLike[str]) -> RunComparison:
    """Read two or more runs side by side (no TensorFlow): settings, metrics and curves.

    A damaged file of one run leaves its values empty and adds a note; it never stops the comparison.

    Raises RunError when fewer than two runs are given or one is not a run folder.

    Examples
    --------
    >>> c = compare_runs("runs/a", "runs/b")  # doctest: +SKIP
    >>> sorted(c.differing)  # doctest: +SKIP
    ['backbone', 'head_lr']
    """
    if len(run_dirs) < 2:
        raise RunError(f"Comparing needs at least two runs; received {len(run_dirs)}.", "Give two or more run folders.")
    layouts = [RunLayout(Path(d).expanduser()) for d in run_dirs]
    for layout in layouts:
        if not layout.is_run():
            raise RunError(f"{layout.root} is not a run folder (no config.json).",
                           "Give folders that `cnn-studio train --out` created.")
    notes: list[str] = []
    summaries = [summarize(layout.root) for layout in layouts]
    histories = [read_history(layout.history) for layout in layouts]
    settings = _rows([_run_settings(layout, notes) for layout in layouts])
    differing = frozenset(k for k, values in settings if len({json.dumps(v, sort_keys=True, default=str)
                                                               for v in values}) > 1)
    metrics = _rows([_run_metrics(s, h, notes) for s, h in zip(summaries, histories, strict=True)])
    return RunComparison(runs=tuple(summaries), settings=settings, differing=differing, metrics=metrics,
                         histories=tuple(tuple(h) for h in histories), notes=tuple(notes))
