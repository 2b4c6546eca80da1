"""What :func:`cnn_studio.training.trainer.train` and ``resume`` return."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainResult:
    """How a run ended and where its files are."""

    run_dir: Path
    status: str  # "completed" (a cancelled run raises Cancelled instead of returning)
    best_model: Path
    last_model: Path
    epochs_done: int
    class_names: tuple[str, ...]
    history: list[dict[str, float]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # files dropped while decoding → reason (skipped.csv)
    review: dict = field(default_factory=dict)  # review.json: chance, calibration, shortcuts (cnn_studio.evaluation.review)
    warnings: list[str] = field(default_factory=list)  # why not to trust the model yet; empty when none

    @property
    def better_than_chance(self) -> bool | None:
        """False when the review found the model no better than guessing (or could not tell); None when not reviewed."""
        verdict = (self.review.get("chance") or {}).get("verdict")
        return None if verdict is None else verdict == "better"
