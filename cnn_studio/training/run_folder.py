"""A training run folder on disk: open it, read what it holds, load its model.

Layout: ``paths.RunLayout`` names every file (config.json, split.json, labels.txt, best.keras,
last.keras, history.csv, state.json, metrics.json, robustness.json, tb/, ...). Evaluation,
prediction, export and explanations all start from :func:`open_run` / :func:`load_model`.

The run folder owns the facts a run was made with. :func:`recorded_config` resolves them once,
when training starts (the image size, the weights source, the split's own fractions, grouping and
seed), and config.json stores that; :class:`RunInfo` hands them out (``image_size``,
``weights``, ``split_seed``, ``total_epochs``), so no consumer loads the model or asks the
registry again. Runs written before these values were recorded still open: their missing values
fall back to the backbone's default size and to split.json.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_studio.backbones import registry
from cnn_studio.backbones.weights import WeightsChoice
from cnn_studio.data.records import Split
from cnn_studio.errors import RunError
from cnn_studio.fsutil import read_json
from cnn_studio.paths import RunLayout
from cnn_studio.training.config import TrainConfig


@dataclass(frozen=True)
class RunInfo:
    """What a run folder holds. ``model_path`` is best.keras, else last.keras."""

    layout: RunLayout
    config: TrainConfig
    class_names: tuple[str, ...]
    model_path: Path
    split: Split | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def image_size(self) -> int:
        """The side images are resized to: recorded in config.json (older runs: the backbone's default)."""
        return registry.get(self.config.backbone).image_size(self.config.image_size)

    @property
    def weights(self) -> WeightsChoice:
        """Where the backbone's starting weights came from ("imagenet", "none" or "file" with its path)."""
        return self.config.weights_choice

    @property
    def split_seed(self) -> int:
        """The seed the split was made with (split.json; else the recorded settings)."""
        return self.split.seed if self.split is not None else self.config.effective_split_seed

    @property
    def total_epochs(self) -> int:
        return self.config.total_epochs

    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics from history.csv (empty if none yet)."""
        return read_history(self.layout.history)


def recorded_config(config: TrainConfig, split: Split) -> TrainConfig:
    """``config`` as a run folder records it: every value a consumer needs, resolved.

    The backbone key in its canonical spelling, ``image_size`` as a number (the backbone's default
    when it was left empty), ``weights`` as the one parser reads it ("none" for "scratch"), and the
    split's own ``val_fraction``/``test_fraction``/``group_by``/``split_seed`` (the GUI's Data page
    makes the split with its own settings; the config's defaults must not be recorded instead).

    Raises :class:`~cnn_studio.errors.ConfigError` for an unknown backbone or too small an image.
    """
    spec = registry.get(config.backbone)
    return config.replace(backbone=spec.key, image_size=spec.image_size(config.image_size),
                          weights=config.weights_choice.value, val_fraction=split.val_fraction,
                          test_fraction=split.test_fraction, group_by=split.group_by or "none",
                          split_seed=split.seed)


def read_history(path: str | Path) -> list[dict[str, float]]:
    """A history.csv as numbers, one dict per finished epoch (empty if there is none; an unreadable row is left out)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    out = []
    for row in rows:
        try:
            out.append({k: float(v) for k, v in row.items() if v not in ("", None)})
        except ValueError:
            continue
    return out


def resume_point(run_dir: str | Path) -> tuple[int, int] | None:
    """``(finished epochs to continue from, epochs planned)`` for a run that stopped early, else None.

    None when the folder is not a run (no config.json/split.json) or the run finished all its
    epochs. Continuing starts from the epochs last.keras holds (``state.json["checkpoint_epoch"]``),
    from 0 when there is no last.keras.
    """
    layout = RunLayout(Path(run_dir))
    if not layout.is_run() or not layout.split.exists():
        return None
    config = TrainConfig.from_dict(read_json(layout.config))
    state = read_json(layout.state) if layout.state.exists() else {}
    total = config.total_epochs
    done = int(state.get("epochs_done", 0))
    if state.get("status") == "completed" or done >= total:
        return None
    checkpointed = int(state.get("checkpoint_epoch", done))  # finished epochs that last.keras holds
    return (checkpointed if layout.last_model.exists() else 0), total


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Class names, one per line, in model output order."""
    return tuple(line for line in Path(path).read_text(encoding="utf-8").splitlines() if line)


def open_run(path: str | Path) -> RunInfo:
    """Open a run folder (or a .keras file inside one) without importing TensorFlow.

    Raises
    ------
    RunError
        If the folder does not exist or holds no model and no config.
    """
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".keras":
        p = p.parent
    layout = RunLayout(p)
    if not p.is_dir():
        raise RunError(f"No run folder at {p}.", "Give the folder that `cnn-studio train --out` created.")
    if not layout.is_run():
        raise RunError(
            f"{p} is not a CNN Studio run folder (no config.json).",
            "Give the folder that `cnn-studio train --out` created, or a .keras model file.",
        )
    try:
        config = TrainConfig.from_dict(read_json(layout.config))
    except (ValueError, TypeError, KeyError) as exc:
        raise RunError(f"The run settings in {layout.config} are unreadable: {exc}.",
                       "The run folder may be damaged; train again.") from exc
    model_path = next((m for m in layout.models if m.exists()), layout.last_model)
    if not model_path.exists():
        raise RunError(
            f"The run in {p} has no saved model yet (no best.keras or last.keras).",
            f"If training was interrupted, continue it with `cnn-studio resume {p}`.",
        )
    class_names = read_labels(layout.labels) if layout.labels.exists() else ()
    split = Split.from_dict(read_json(layout.split)) if layout.split.exists() else None
    if not class_names and split is not None:
        class_names = split.class_names
    state = read_json(layout.state) if layout.state.exists() else {}
    return RunInfo(layout=layout, config=config, class_names=class_names, model_path=model_path,
                   split=split, state=state)


def load_model(path: str | Path):
    """Load a Keras model from a run folder or a ``.keras`` file (``safe_mode=True``).

    Imports Keras on first call. Raises :class:`RunError` with a hint if the file is damaged.
    """
    import keras

    p = Path(path).expanduser()
    if p.is_dir():
        p = open_run(p).model_path
    if not p.exists():
        raise RunError(f"No model file at {p}.", "Give a run folder or a .keras file.")
    try:
        return keras.saving.load_model(p, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged file
        raise RunError(f"Could not load the model {p}: {exc}",
                       "The file may be incomplete or from another program; use best.keras from a run folder.") from exc
