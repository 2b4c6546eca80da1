"""TrainConfig: every setting of a training run, validated, with a JSON round-trip."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from cnn_studio.backbones import registry
from cnn_studio.backbones.fine_tune import parse_depth
from cnn_studio.backbones.weights import WeightsChoice, parse_weights
from cnn_studio.core.errors import ConfigError
from cnn_studio.data.augment import AUGMENTATIONS
from cnn_studio.data.records import CACHE_MODES, RESIZE_POLICIES, SLICE_AXES, VolumeSlicing
from cnn_studio.data.split import SEED, TEST_FRACTION, VAL_FRACTION, check_settings, group_by_value
from cnn_studio.training import schedule

__all__ = ["AUGMENTATIONS", "CACHE_MODES", "CLASS_WEIGHTS", "JIT_MODES", "LR_SCHEDULES", "OPTIMIZERS",
           "PLATEAU_PATIENCE", "PRECISIONS", "RESIZE_POLICIES", "SLICE_AXES", "STUDY_AGGREGATES", "TrainConfig",
           "parse_band_list", "parse_slices"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")  # built by lr_finder.make_optimizer
PRECISIONS = ("auto", "float32", "mixed_float16")
CLASS_WEIGHTS = ("none", "balanced")
LR_SCHEDULES = ("constant", "plateau")  # the trainer's schedules (plateau = reduce_lr_patience > 0)
PLATEAU_PATIENCE = 2  # the reduce_lr_patience "plateau" means when no patience is given (the CLI, the Model step)
JIT_MODES = ("auto", "on", "off")  # TrainConfig.jit → compile(jit_compile="auto" (Keras: XLA on GPUs only), True, False)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one run. ``weights`` is "imagenet", "none" or a path to a weights file
    (read by :func:`cnn_studio.backbones.weights.parse_weights`, see :attr:`weights_choice`).

    ``epochs`` trains the new head with the backbone frozen; ``fine_tune_epochs`` then unfreezes
    ``fine_tune_depth`` of the backbone ("1 block", "2 blocks", "block5", "6 conv", "all": see
    :mod:`cnn_studio.backbones.fine_tune`; BatchNorm stays frozen and in inference mode) at
    ``fine_tune_learning_rate``. A config without ``fine_tune_depth`` (``None``, e.g. a config.json
    written before depths existed) keeps the old meaning of ``fine_tune_layers``: the top N layers
    with weights, BatchNorm counted (:attr:`effective_fine_tune_depth`). The learning-rate
    schedule is constant, or (``reduce_lr_patience`` > 0) ×0.3 after that many epochs without a
    lower validation loss ("plateau", see :attr:`lr_schedule`). ``image_size`` ``None`` means the backbone's default size.

    ``seed`` seeds training (weights, shuffling, augmentation). ``val_fraction``,
    ``test_fraction``, ``group_by`` and ``split_seed`` (``None``: the same as ``seed``) are the
    split settings the CLI prepares its split with; the GUI's Data page makes the split itself.
    A run folder's config.json holds the *resolved* values either way (the split's own fractions and
    seed, the image size, the weights source: :func:`cnn_studio.training.trainer.train` writes them).
    """

    backbone: str = registry.DEFAULT_BACKBONE
    weights: str = registry.get(registry.DEFAULT_BACKBONE).default_weights
    image_size: int | None = None
    batch_size: int = 32
    epochs: int | None = None  # None (and fine_tune_epochs None): the automatic schedule (training/schedule.py)
    fine_tune_epochs: int | None = None  # None with epochs set: 0
    learning_rate: float | None = None  # None: the learning-rate finder's (auto head), else schedule.DEFAULT_LEARNING_RATE
    fine_tune_learning_rate: float = 3e-4  # bench/default_vs_guide.py: 1e-5 left 12 points on the table
    fine_tune_layers: int = 20
    fine_tune_depth: str | None = None
    optimizer: str = "adam"
    label_smoothing: float = 0.0
    class_weight: str = "none"
    dropout: float = 0.2
    early_stopping_patience: int = 0  # 0 = off
    reduce_lr_patience: int = 0  # 0 = off
    seed: int = SEED
    val_fraction: float = VAL_FRACTION
    test_fraction: float = TEST_FRACTION
    group_by: str | None = None
    split_seed: int | None = None
    resize: str = "stretch"
    augment: tuple[str, ...] = ()
    cache: str = "auto"  # CACHE_MODES; "auto" is decided when training starts (training/cache_choice.py)
    feature_cache: bool = True
    precision: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)
    jit: str = "auto"  # XLA (JIT_MODES): "auto" = Keras' choice (on a GPU when every layer supports it), "on", "off"
    workers: int = 1  # local worker processes (MultiWorkerMirroredStrategy on 127.0.0.1; cnn-studio train --workers)
    # Multi-band arrays (cnn_studio.data.bands): 1-based band numbers of the files.
    bands: tuple[int, ...] = ()  # the bands the model uses (empty: all)
    rgb_bands: tuple[int, ...] = ()  # three bands shown as R, G, B and given the pretrained RGB kernels (empty: automatic)
    # Volumes and studies (cnn_studio.data.volumes): how a volume becomes 2-D slices, and a study's answer.
    slice_axis: int = VolumeSlicing.axis  # 0, 1 or 2: the volume axis slices are cut across (2: axial for RAS-oriented NIfTI)
    slices: str = VolumeSlicing.slices  # "content" (every slice with content), "all", or "middle:K" (the middle K)
    study_aggregate: str = "mean"  # how slice probabilities make a study's: "mean" or "max"
    time_budget_s: float = 0.0  # 0 = none; the schedule fits itself into it (training/time_budget.py)

    # ------------------------------------------------------------------ validation
    def validate(self) -> TrainConfig:
        """Return ``self`` or raise :class:`ConfigError` ("Expected ... received ...")."""
        self._validate_learning()
        self._validate_data()
        self._validate_images()
        return self

    def _validate_learning(self) -> None:
        """Batch size, epochs, time budget, rates, fine-tuning depth, optimizer and regularisation."""
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 4096:
            raise _bad("batch_size", "a whole number from 1 to 4096", self.batch_size,
                      "32 is a good start; use 8-16 if you run out of memory.")
        for name in ("epochs", "fine_tune_epochs"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise _bad(name, "a whole number >= 0 (or empty for the automatic schedule)", v)
        if self.total_epochs == 0:
            raise _bad("epochs", "at least one epoch in total", 0,
                      "Leave the epochs empty for the automatic schedule, or set epochs to 5.")
        if not isinstance(self.time_budget_s, (int, float)) or not 0 <= self.time_budget_s < 1e7:
            raise _bad("time_budget_s", "a number of seconds >= 0 (0 = no budget)", self.time_budget_s)
        for name in ("learning_rate", "fine_tune_learning_rate"):
            v = getattr(self, name)
            if v is None and name == "learning_rate":
                continue
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 10:
                raise _bad(name, "a number in (0, 10]", v, "Typical values: 1e-3 for the head, 1e-5 to 3e-4 to fine-tune.")
        if not isinstance(self.fine_tune_layers, int) or self.fine_tune_layers < 0:
            raise _bad("fine_tune_layers", "a whole number >= 0", self.fine_tune_layers)
        if self.fine_tune_depth is not None:
            if not isinstance(self.fine_tune_depth, str):
                raise _bad("fine_tune_depth", '"all", "N blocks", "N conv" or a block name', self.fine_tune_depth)
            parse_depth(self.fine_tune_depth)
        if self.optimizer not in OPTIMIZERS:
            raise _bad("optimizer", f"one of {', '.join(OPTIMIZERS)}", self.optimizer)
        if not 0 <= self.label_smoothing < 1:
            raise _bad("label_smoothing", "a number in [0, 1)", self.label_smoothing)
        if self.class_weight not in CLASS_WEIGHTS:
            raise _bad("class_weight", f"one of {', '.join(CLASS_WEIGHTS)}", self.class_weight)
        if not 0 <= self.dropout < 1:
            raise _bad("dropout", "a number in [0, 1)", self.dropout)
        if self.early_stopping_patience < 0 or self.reduce_lr_patience < 0:
            raise _bad("patience", "a whole number >= 0 (0 = off)",
                      (self.early_stopping_patience, self.reduce_lr_patience))

    def _validate_data(self) -> None:
        """The split, the pipeline (size, resize, augmentation, cache) and the devices (precision, XLA, workers)."""
        check_settings(self.val_fraction, self.test_fraction, group_by_value(self.group_by))
        if self.image_size is not None and (not isinstance(self.image_size, int) or not 16 <= self.image_size <= 2048):
            raise _bad("image_size", "a whole number from 16 to 2048 (or empty for the backbone's default)",
                      self.image_size)
        if self.resize not in RESIZE_POLICIES:
            raise _bad("resize", f"one of {', '.join(RESIZE_POLICIES)}", self.resize)
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise _bad("augment", f"any of {', '.join(AUGMENTATIONS)}", unknown)
        if self.cache not in CACHE_MODES:
            raise _bad("cache", f"one of {', '.join(CACHE_MODES)}", self.cache)
        if self.precision not in PRECISIONS:
            raise _bad("precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        if self.jit not in JIT_MODES:
            raise _bad("jit", f"one of {', '.join(JIT_MODES)}", self.jit)
        if not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise _bad("workers", "a whole number from 1 to 64", self.workers)

    def _validate_images(self) -> None:
        """Multi-band, volume and study settings, and the weights source."""
        for name in ("bands", "rgb_bands"):
            v = getattr(self, name)
            if not all(isinstance(b, int) and b >= 1 for b in v) or len(set(v)) != len(v):
                raise _bad(name, "distinct band numbers counted from 1 (e.g. 4,3,2)", list(v))
        if self.rgb_bands and len(self.rgb_bands) != 3:
            raise _bad("rgb_bands", "three band numbers (red, green, blue), e.g. 4,3,2", list(self.rgb_bands))
        if self.slice_axis not in SLICE_AXES:
            raise _bad("slice_axis", "0, 1 or 2", self.slice_axis)
        parse_slices(self.slices)
        if self.study_aggregate not in STUDY_AGGREGATES:
            raise _bad("study_aggregate", f"one of {', '.join(STUDY_AGGREGATES)}", self.study_aggregate)
        if not isinstance(self.weights, str) or not self.weights.strip():
            raise _bad("weights", "'imagenet', 'none' or the path of a weights file", self.weights)

    # ------------------------------------------------------------------ derived facts (one place each)
    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run: head (or scratch) epochs plus fine-tune epochs; the most it can train
        on the automatic schedule (early stopping usually ends it sooner: state.json "schedule" says)."""
        return schedule.max_epochs(self)

    @property
    def schedule(self) -> str:
        """"auto" (neither ``epochs`` nor ``fine_tune_epochs`` set: :mod:`cnn_studio.training.schedule`) or "fixed"."""
        return "auto" if schedule.is_automatic(self) else "fixed"

    @property
    def effective_fine_tune_depth(self) -> str:
        """The depth fine-tuning uses: ``fine_tune_depth``, or "N layers" (the old meaning) when unset."""
        return self.fine_tune_depth or f"{self.fine_tune_layers} layers"

    @property
    def lr_schedule(self) -> str:
        """"plateau" when the learning rate is lowered on a plateau (``reduce_lr_patience`` > 0), else "constant"."""
        return "plateau" if self.reduce_lr_patience else "constant"

    @property
    def weights_choice(self) -> WeightsChoice:
        """``weights`` read by the one parser: kind "none" (scratch/random too), "imagenet" or "file"."""
        return parse_weights(self.weights)

    @property
    def slicing(self) -> VolumeSlicing:
        """How volumes become slices for this run (``slice_axis``, ``slices``): what the scan is given."""
        return VolumeSlicing(self.slice_axis, self.slices)

    @property
    def effective_split_seed(self) -> int:
        """The seed a split made from these settings uses: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for name in ("augment", "bands", "rgb_bands"):
            d[name] = list(getattr(self, name))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from JSON; unknown keys (from a newer version) go to ``extra`` and are kept."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        extra = dict(known.pop("extra", {}) or {})
        extra.update({k: v for k, v in d.items() if k not in names})
        for name in ("augment", "bands", "rgb_bands"):
            if name in known:
                known[name] = tuple(known[name] or ())
        return cls(**known, extra=extra)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _bad(name: str, expected: str, got: Any, hint: str = "") -> ConfigError:
    """The error of a setting outside what it accepts: "Setting 'name': expected ..., received ..."."""
    return ConfigError(f"Setting '{name}': expected {expected}, received {got!r}.", hint)


STUDY_AGGREGATES = ("mean", "max")  # a study's probabilities: the mean of its slices', or their maximum


def parse_slices(text: str) -> tuple[str, int]:
    """``"content"``, ``"all"`` or ``"middle:K"`` → ``(kind, K)`` (K is 0 unless kind is "middle").

    Examples
    --------
    >>> parse_slices("middle:8")
    ('middle', 8)
    >>> parse_slices("content")
    ('content', 0)
    """
    kind, _, count = str(text).strip().lower().partition(":")
    if kind in ("content", "all") and not count:
        return kind, 0
    if kind == "middle" and count.isdigit() and int(count) >= 1:
        return kind, int(count)
    raise ConfigError(f"Setting 'slices': expected \"content\", \"all\" or \"middle:K\" (K >= 1), received {text!r}.",
                      "\"content\" keeps every slice with tissue in it; \"middle:16\" keeps the 16 middle slices.")


def parse_band_list(text: str | None) -> tuple[int, ...]:
    """``"4,3,2"`` (1-based band numbers, ranges allowed: ``"1-4,8"``) → ``(4, 3, 2)``; empty → ``()``.

    Examples
    --------
    >>> parse_band_list("4,3,2")
    (4, 3, 2)
    >>> parse_band_list("1-3, 8")
    (1, 2, 3, 8)
    """
    out: list[int] = []
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            numbers = range(int(lo), int(hi) + 1) if dash else [int(lo)]
        except ValueError:
            raise ConfigError(f"Bands: expected band numbers such as 4,3,2 or 1-4, received {text!r}.",
                              "Bands are counted from 1, as in the scan report.") from None
        out.extend(numbers)
    if any(b < 1 for b in out):
        raise ConfigError(f"Bands: expected band numbers counted from 1, received {text!r}.")
    return tuple(out)

