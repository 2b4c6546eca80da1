"""The closed catalogue of engine events.

Long engine functions take ``sink: EventSink`` and call it with instances of the frozen
dataclasses below, and only those. This module is the one place a reader learns everything the
UI or the CLI can ever receive. Names are past tense: each event reports something that happened.

Conventions
-----------
* ``epoch`` is 0-based and global across training phases (as Keras' ``initial_epoch`` counts);
  displays add 1. ``epochs`` is the total planned for the phase or the run, as named.
* ``logs`` are plain ``dict[str, float]`` copies of Keras logs (``loss``, ``accuracy``,
  ``val_loss``, ``val_accuracy`` ...).
* Paths are ``str`` so events stay trivially picklable and printable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# ---------------------------------------------------------------- general


@dataclass(frozen=True)
class StageChanged:
    """A long task moved to a new named stage (e.g. "Loading TensorFlow", "Building model")."""

    task: str
    stage: str
    detail: str = ""


@dataclass(frozen=True)
class TaskProgress:
    """Generic determinate progress of ``task`` (feature caching, evaluation, prediction ...)."""

    task: str
    done: int
    total: int
    detail: str = ""
    seconds_left: float | None = None  # estimated from the rate so far (None: not known yet)


@dataclass(frozen=True)
class LogMessage:
    """A line for the user's log: level is "info", "warning" or "error"."""

    level: str
    text: str


# ---------------------------------------------------------------- dataset scan


@dataclass(frozen=True)
class ScanStarted:
    """Scanning of ``root`` began."""

    root: str


@dataclass(frozen=True)
class ScanProgress:
    """``files_seen`` files looked at so far, ``images_found`` of them usable images."""

    files_seen: int
    images_found: int
    current: str = ""


@dataclass(frozen=True)
class ScanFinished:
    """Scan finished: usable images, classes, and files skipped (with reasons in the report)."""

    n_images: int
    n_classes: int
    n_skipped: int


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainStarted:
    """A training run began in ``run_dir``; ``epochs`` over all phases, ``steps`` per epoch."""

    run_dir: str
    backbone: str
    epochs: int
    steps: int
    train_images: int
    val_images: int
    device: str = ""  # tf_runtime.device_line(): which device trains, and why not a GPU when none
    batch_size: int = 0  # the batch size this attempt trains with (lower than asked after an out-of-memory retry)
    precision: str = ""  # training.devices.precision_line(): float32 or mixed precision, and why


@dataclass(frozen=True)
class PhaseStarted:
    """A training phase began: "head" (backbone frozen), "fine_tune" (top unfrozen) or "scratch" (all, no pretrained weights)."""

    name: str
    epochs: int
    first_epoch: int
    learning_rate: float
    trainable_layers: int
    uses_feature_cache: bool = False


@dataclass(frozen=True)
class EpochStarted:
    """Epoch ``epoch`` (0-based, global) of phase ``phase`` began."""

    phase: str
    epoch: int
    epochs: int


@dataclass(frozen=True)
class BatchEnded:
    """A training batch ended (throttled: at most ~10 per second reach the sink).

    ``step`` counts the batches finished in this epoch (1..``steps``), so ``step / steps`` is the
    epoch's progress. ``logs["loss"]``, when present, is Keras' running mean of the loss over
    those ``step`` batches (the epoch's ``loss`` when ``step == steps``).
    """

    phase: str
    epoch: int
    step: int
    steps: int
    logs: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0
    gpu_memory_mib: float | None = None  # GPU:0 memory in use (sampled at most once a second); None on a CPU


@dataclass(frozen=True)
class EpochEnded:
    """An epoch ended; ``logs`` hold train and ``val_*`` metrics; ``seconds`` its wall time."""

    phase: str
    epoch: int
    epochs: int
    logs: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    images_per_s: float = 0.0


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint was written: ``kind`` is "best" or "last"."""

    path: str
    kind: str
    epoch: int
    monitor: str = ""
    value: float = float("nan")


@dataclass(frozen=True)
class TrainFinished:
    """The run ended: ``status`` is "completed", "cancelled" or "failed"; best model path if any."""

    run_dir: str
    status: str
    best_model: str = ""
    epochs_done: int = 0
    message: str = ""


@dataclass(frozen=True)
class ChanceLevel:
    """After training, the best model was not shown to beat guessing or always answering the largest class.

    ``verdict`` is "not_better" (its validation accuracy is not above the baseline) or "unproven"
    (above it, but the 95% interval reaches down to it); ``message`` says so, ``hint`` what to try.
    """

    accuracy: float
    baseline: float
    n_images: int
    verdict: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class Calibrated:
    """Temperature scaling was fitted on the validation images (``applied``: stored in best.keras)."""

    temperature: float
    applied: bool
    ece_before: float
    ece_after: float
    n_images: int
    reason: str = ""


@dataclass(frozen=True)
class ShortcutSuspected:
    """The model's answers hang on a small place at the picture's edge: it may use a shortcut (a side marker,
    a label, a ruler).

    ``kind`` "occlusion": masking or swapping ``box`` (left, top, right, bottom as fractions of the
    model's square input, which the ``resize`` policy made from each picture) changed the answers of
    ``examples`` (the first of ``n_affected``); "border" / "same_region": Grad-CAM's attention sits
    there (no box).
    """

    kind: str  # "occlusion" | "border" | "same_region"
    region: str
    message: str
    hint: str = ""
    examples: tuple[str, ...] = ()
    box: tuple[float, float, float, float] | None = None
    resize: str = "stretch"
    n_affected: int = 0


@dataclass(frozen=True)
class LearningRateFound:
    """The learning-rate finder's sweep (``training/lr_finder.py``): smoothed loss against rate, and its pick."""

    rates: tuple[float, ...]
    losses: tuple[float, ...]
    suggestion: float
    reason: str = ""


@dataclass(frozen=True)
class StillImproving:
    """A phase ended while its validation loss was still falling: more epochs would likely help."""

    phase: str
    epochs: int
    val_loss_before: float
    val_loss_after: float
    message: str = ""


# ---------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportProgress:
    """Export of format ``fmt`` reached ``stage`` ("writing", "verifying", "done", "failed")."""

    fmt: str
    stage: str
    detail: str = ""


Event = (
    StageChanged
    | TaskProgress
    | LogMessage
    | ScanStarted
    | ScanProgress
    | ScanFinished
    | TrainStarted
    | PhaseStarted
    | EpochStarted
    | BatchEnded
    | EpochEnded
    | CheckpointSaved
    | TrainFinished
    | ChanceLevel
    | Calibrated
    | ShortcutSuspected
    | LearningRateFound
    | StillImproving
    | ExportProgress
)

EventSink = Callable[[object], None]
"""What engine functions call with each event. It must be cheap and must not raise."""


def null_sink(event: object) -> None:
    """The default sink: drops every event."""


ALL_EVENTS: tuple[type, ...] = (
    StageChanged,
    TaskProgress,
    LogMessage,
    ScanStarted,
    ScanProgress,
    ScanFinished,
    TrainStarted,
    PhaseStarted,
    EpochStarted,
    BatchEnded,
    EpochEnded,
    CheckpointSaved,
    TrainFinished,
    ChanceLevel,
    Calibrated,
    ShortcutSuspected,
    LearningRateFound,
    StillImproving,
    ExportProgress,
)
