"""Where things live: the app's data folder, the Keras weights cache, the layout of a run folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def app_data_dir() -> Path:
    """Per-user folder for CNN Studio's own files (recent runs, logs). ``CNN_STUDIO_HOME`` overrides."""
    env = os.environ.get("CNN_STUDIO_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or (Path.home() / ".local" / "share")
    return Path(base) / "cnn-studio"


def runs_dir() -> Path:
    """Where the app puts the run folders of a project that is not saved yet: ``<app data>/runs``."""
    return app_data_dir() / "runs"


def job_log(job: str, run_dir: str | os.PathLike[str]) -> Path:
    """Where a child process doing ``job`` ("train", "evaluate", "model"...) for ``run_dir`` writes its log."""
    return app_data_dir() / "logs" / f"{job}-{Path(run_dir).name}.log"


def keras_cache_dir() -> Path:
    """Keras' own download cache for pretrained weights: ``$KERAS_HOME/models`` or ``~/.keras/models``.

    Mirrors ``keras.utils.get_file``'s choice (``KERAS_HOME`` if set, else ``~/.keras``) without
    importing Keras.
    """
    home = os.environ.get("KERAS_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".keras"
    return base / "models"


@dataclass(frozen=True)
class RunLayout:
    """The files of one training run folder: the one place their names are written.

    Every file is written atomically (see ``fsutil``). ``labels`` is also the name of the class
    list beside an exported or bare ``.keras`` model, so ``RunLayout(model_path.parent).labels``
    finds it there too.
    """

    root: Path

    @property
    def config(self) -> Path:  # TrainConfig as JSON, with the resolved values (run_folder.recorded_config)
        return self.root / "config.json"

    @property
    def split(self) -> Path:  # the exact train/val/test file lists used
        return self.root / "split.json"

    @property
    def labels(self) -> Path:  # class names, one per line, in output order
        return self.root / "labels.txt"

    @property
    def best_model(self) -> Path:
        return self.root / "best.keras"

    @property
    def last_model(self) -> Path:  # the latest checkpoint, for `resume`
        return self.root / "last.keras"

    @property
    def models(self) -> tuple[Path, Path]:
        """The model files a run can hold, the preferred one first."""
        return self.best_model, self.last_model

    @property
    def history(self) -> Path:  # per-epoch metrics (training.callbacks.AtomicCheckpoints)
        return self.root / "history.csv"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def backup(self) -> Path:  # reserved for Keras BackupAndRestore state (not written: see last.keras)
        return self.root / "backup"

    @property
    def state(self) -> Path:  # run status: running/completed/cancelled/failed, epochs done, checkpoint_epoch
        return self.root / "state.json"

    @property
    def metrics(self) -> Path:  # evaluation results
        return self.root / "metrics.json"

    @property
    def robustness(self) -> Path:  # the robustness report
        return self.root / "robustness.json"

    @property
    def robustness_dir(self) -> Path:  # the robustness report's pictures (plot, FGSM examples)
        return self.root / "robustness"

    @property
    def robustness_plot(self) -> Path:  # accuracy against perturbation level
        return self.robustness_dir / "accuracy.png"

    @property
    def feature_cache(self) -> Path:
        return self.root / "cache"

    @property
    def exports(self) -> Path:  # where the Export step writes by default
        return self.root / "export"

    @property
    def review(self) -> Path:  # the review of the finished model (cnn_studio.evaluation.review): chance, calibration, shortcuts
        return self.root / "review.json"

    @property
    def lock(self) -> Path:  # held while a process writes the folder: holder's PID, host, start (run_folder.RunLock)
        return self.root / "run.lock"

    @property
    def skipped(self) -> Path:  # files training dropped while decoding, with the reason (path,reason)
        return self.root / "skipped.csv"

    @property
    def reproducibility(self) -> Path:  # app/library versions, seed, dataset fingerprint (runs.reproducibility_record)
        return self.root / "reproducibility.json"

    @property
    def bands(self) -> Path:  # a multi-band run: band count, names, selection, RGB bands, training-set band statistics
        return self.root / "bands.json"

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file a run folder can hold at its top level (folders excluded)."""
        return (self.config, self.split, self.labels, self.best_model, self.last_model, self.history,
                self.state, self.metrics, self.robustness, self.review, self.lock, self.skipped,
                self.reproducibility, self.bands)

    def is_run(self) -> bool:
        """True when the folder holds a run's settings (config.json)."""
        return self.config.exists()
