"""Two-phase fine-tuning of a backbone + head on a :class:`~cnn_studio.data.records.Split`.

Phases (Keras' transfer-learning guide):

1. ``head`` — the backbone is frozen and only the new head learns, at ``learning_rate``. With no
   augmentation the backbone's features are computed once and the head trains on them
   (``feature_cache.py``), which makes these epochs nearly free.
2. ``fine_tune`` — ``fine_tune_depth`` of the backbone ("1 block", "6 conv" ...) is unfrozen
   (BatchNorm stays frozen and in inference mode) and training continues at the much lower
   ``fine_tune_learning_rate``, from the global epoch where phase 1 stopped.

Without pretrained weights (``weights="none"``) a frozen random backbone would learn nothing, so
the whole network trains in a single ``scratch`` phase for ``epochs + fine_tune_epochs`` epochs.

Multi-band images (``ImageRecord.bands > 0``): the training split's per-band statistics, the
chosen bands (``config.bands``) and RGB bands (``config.rgb_bands``) are measured and checked before
anything is written and stored as bands.json; the model normalises each band itself with them
(``classifier.build_classifier(bands=...)``), and ``resume`` reads them back.

Everything lands in the run folder (``paths.RunLayout``), written atomically: config.json,
split.json, labels.txt, bands.json (multi-band runs), state.json, history.csv, best.keras, last.keras and tb/ (TensorBoard logs:
``tensorboard --logdir RUN/tb``; skipped with a note if the tensorboard package is missing). A cancelled run keeps its best model and can be continued with
:func:`resume`, as can a run whose process was killed: ``state.json["checkpoint_epoch"]`` tells
how many finished epochs last.keras holds (see ``callbacks.AtomicCheckpoints``).

Design choices:

* Labels are always one-hot with ``CategoricalCrossentropy(label_smoothing)``, so label smoothing
  is one setting, not a second code path.
* The best model is the one with the lowest ``val_loss``.
* Keras' ``BackupAndRestore`` and ``CSVLogger`` are not used: last.keras + state.json already
  hold what a resume needs, written atomically, and BackupAndRestore's extra weights file every
  epoch (non-atomic) cost ~25% of an epoch of MobileNetV2 on a CPU. The models are written at
  most every 30 s (``config.extra["checkpoint_interval_s"]``) and whenever a phase ends or
  training stops.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cnn_studio import __version__
from cnn_studio.backbones import registry
from cnn_studio.backbones.classifier import (
    build_classifier,
    freeze_backbone,
    split_for_feature_cache,
    trainable_layer_count,
    unfreeze_depth,
)
from cnn_studio.backbones.weights_store import resolve_weights
from cnn_studio.core import events as ev
from cnn_studio.core import tf_runtime
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import ConfigError, DatasetError, RunError, StudioError
from cnn_studio.core.fsutil import write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.augment import multiband_augment
from cnn_studio.data.bands import (
    BandInfo,
    dataset_band_layout,
    make_band_info,
    read_band_info,
    write_band_info,
)
from cnn_studio.data.pipeline import make_datasets
from cnn_studio.data.records import Split
from cnn_studio.evaluation.review import review_model
from cnn_studio.runs.checks import WHAT_STILL_WORKS
from cnn_studio.runs.listing import NO_MODEL_YET, reproducibility_record
from cnn_studio.runs.registry import remember as remember_run
from cnn_studio.runs.run_folder import (
    RunLock,
    check_resumable,
    clean_temporaries,
    load_model,
    looks_like_run,
    open_run,
    read_config,
    read_history,
    read_labels,
    read_split,
    read_state,
    recorded_config,
    resume_point,
    write_labels,
    write_skipped,
)
from cnn_studio.training import activation_cache, schedule
from cnn_studio.training.cache_choice import (
    CacheChoice,
    choose_feature_cache,
    choose_image_cache,
    decoded_bytes,
    human_bytes,
    shuffle_buffer,
)
from cnn_studio.training.config import TrainConfig
from cnn_studio.training.devices import (
    choose_precision,
    distribution_strategy,
    precision_line,
    precision_policy,
    strategy_kind,
)
from cnn_studio.training.feature_cache import compute_features, feature_datasets, remove_feature_files
from cnn_studio.training.lr_finder import feature_batches, make_optimizer, sweep
from cnn_studio.training.schedule import format_duration
from cnn_studio.training.time_budget import Budget, budget_stop


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


@dataclass(frozen=True)
class _Phase:
    name: str
    first_epoch: int
    end_epoch: int
    learning_rate: float | None


def _phases(config: TrainConfig) -> list[_Phase]:
    """The planned phases with their global epoch ranges (an automatic phase's range is its maximum)."""
    out, cursor = [], 0
    for p in schedule.plan(config):
        out.append(_Phase(p.name, cursor, cursor + p.max_epochs, p.learning_rate))
        cursor += p.max_epochs
    return out


def _check_split(split: Split) -> None:
    n = len(split.class_names)
    if n < 2:
        raise DatasetError(f"Training needs at least 2 classes; the split has {n}.",
                           "Add a folder of images for each class you want to tell apart.")
    for name, part in (("training", split.train), ("validation", split.val)):
        counts = [0] * n
        for r in part:
            counts[r.label] += 1
        empty = [split.class_names[i] for i, c in enumerate(counts) if c == 0]
        if empty:
            raise DatasetError(f"The {name} images have no example of class {', '.join(map(repr, empty))}.",
                               "Add images to that class folder (at least 2 per class), or lower the "
                               "validation/test fraction.")


def _check_backbone(config: TrainConfig) -> None:
    """Unknown backbone, too small an image or missing weights file: fail before anything is written."""
    spec = registry.get(config.backbone)
    resolve_weights(spec, config.weights, spec.image_size(config.image_size))


def band_info_for(config: TrainConfig, split: Split) -> BandInfo | None:
    """The bands.json of a run on ``split``: None for pictures; for multi-band images the training
    set's band statistics and the checked ``config.bands``/``config.rgb_bands``.

    Raises
    ------
    ConfigError
        Band numbers outside the images' bands, or band settings for a dataset of pictures.
    DatasetError
        Pictures mixed with arrays, or arrays with different band counts.
    """
    records = [*split.train, *split.val, *split.test]
    if not any(r.bands for r in records):
        if config.bands or config.rgb_bands:
            raise ConfigError("Bands and RGB bands apply to multi-band images (TIFFs with many bands, .npy arrays); "
                              "this dataset holds pictures.", "Leave --bands and --rgb empty for pictures.")
        return None
    dataset_band_layout(records)  # a mixed dataset fails here, before the statistics are read
    return make_band_info(split.train, bands=config.bands, rgb=config.rgb_bands)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _set_state(layout: RunLayout, **changes) -> None:
    try:
        state = read_state(layout)
    except RunError:  # damaged: what we write now replaces it
        state = {}
    state.update(changes)
    write_json(layout.state, state)


def _failed_start(layout: RunLayout) -> bool:
    """True for a folder whose training never finished an epoch: no model, no history, not running.

    Such a folder (a start that failed on offline weights, a full disk, an unreadable file) is
    reused by the next ``train`` with the same folder instead of blocking it.
    """
    if any(m.exists() for m in layout.models) or layout.history.exists():
        return False
    try:
        state = read_state(layout)
    except RunError:
        return False
    if int(state.get("epochs_done", 0) or 0) or int(state.get("checkpoint_epoch", 0) or 0):
        return False
    known = {p.name for p in layout.files} | {layout.tensorboard.name, layout.feature_cache.name}
    return all(p.name in known for p in layout.root.iterdir())


def _clear_failed_start(layout: RunLayout) -> None:
    for p in layout.files:
        if p != layout.lock and p.exists():
            p.unlink()
    for d in (layout.tensorboard, layout.feature_cache):
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)


def train(config: TrainConfig, split: Split, run_dir: str | Path, *, sink: ev.EventSink = ev.null_sink,
          cancel: CancelToken | None = None) -> TrainResult:
    """Train a classifier and write a run folder.

    Parameters
    ----------
    config : the settings (validated here).
    split : the train/val(/test) records; stored as split.json for reproducibility.
    run_dir : a new or empty folder.
    sink, cancel : progress events and cooperative cancellation (checked after every batch).

    Returns
    -------
    TrainResult

    Raises
    ------
    Cancelled
        After a cancel: best.keras/last.keras and state.json ("cancelled") are kept; see :func:`resume`.
    DatasetError, ConfigError, WeightsUnavailable, RunError
        Before any training starts, with what to do.

    Events emitted
    --------------
    StageChanged, TrainStarted, PhaseStarted, TaskProgress (feature cache), EpochStarted,
    BatchEnded, EpochEnded, CheckpointSaved, then the review of the best model on the validation
    images (:mod:`cnn_studio.evaluation.review`: Calibrated, and ChanceLevel / ShortcutSuspected /
    LogMessage("warning") when there is a reason to doubt it), TrainFinished (its ``message`` holds
    the warnings; ``TrainResult.warnings`` too).
    """
    started = time.monotonic()  # the time budget counts from here
    config.validate()
    _check_split(split)
    _check_backbone(config)
    if any(r.bands for r in split.train):
        sink(ev.StageChanged(task="train", stage="Measuring the bands",
                             detail=f"per-band statistics of {len(split.train)} training images"))
    bands = band_info_for(config, split)
    config = recorded_config(config, split)  # what config.json says is what this run uses
    layout = RunLayout(Path(run_dir).expanduser())
    if layout.root.exists() and not layout.root.is_dir():
        raise RunError(f"{layout.root} is a file, not a folder.", "Choose a new folder for this run.")
    with RunLock(layout.root, "train"):
        clean_temporaries(layout)
        others = [p for p in layout.root.iterdir() if p != layout.lock]
        if others and _failed_start(layout):
            _clear_failed_start(layout)
            sink(ev.LogMessage("info", f"Reusing {layout.root}: the earlier start there failed before its "
                                       "first epoch and left no model."))
        elif others:
            hint = ("Choose a new folder for this run"
                    + (f", or continue the interrupted run with `cnn-studio resume {layout.root}`."
                       if _resumable(layout) else "."))
            raise RunError(f"The folder {layout.root} is not empty.", hint)
        try:
            write_json(layout.config, config.to_dict())
            write_json(layout.split, split.to_dict())
            write_labels(layout.labels, split.class_names)
            if bands is not None:
                write_band_info(layout.bands, bands)
            sink(ev.StageChanged(task="train", stage="Recording the dataset fingerprint",
                                 detail=f"{len(split.train) + len(split.val) + len(split.test)} files"))
            write_json(layout.reproducibility, reproducibility_record(config, split))
            write_json(layout.state, {"status": "running", "epochs_done": 0, "total_epochs": config.total_epochs,
                                      "started": _now(), "app_version": __version__})
            remember_run(layout.root)  # the runs list finds it wherever it is
        except BaseException:
            _clear_failed_start(layout)  # nothing half-made may block a retry with the same folder
            raise
        return _run(layout, config, split, sink=sink, cancel=cancel, start_epoch=0, started=started)


def _resumable(layout: RunLayout) -> bool:
    try:
        return resume_point(layout.root) is not None
    except RunError:
        return False


def resume(run_dir: str | Path, *, sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None,
           more_epochs: int = 0) -> TrainResult:
    """Continue an interrupted or cancelled run from its last completed epoch.

    ``more_epochs`` > 0 continues a run that *completed* (typically one whose validation loss was
    still falling, :class:`~cnn_studio.core.events.StillImproving`): its last phase trains that many more
    epochs (config.json then holds the fixed epochs it amounts to, ``extra["extended"]`` says so).

    Raises :class:`RunError` when the folder is not a run or the run already completed (and no
    ``more_epochs`` were asked for).
    """
    started = time.monotonic()
    layout = RunLayout(Path(run_dir).expanduser())
    if not layout.root.is_dir():
        raise RunError(f"No run folder at {layout.root}.", "Give the folder that `cnn-studio train --out` created.")
    if not looks_like_run(layout):
        raise RunError(f"{layout.root} is not a CNN Studio run folder (no config.json/split.json).",
                       "Give the folder that `cnn-studio train --out` created; a run whose start failed "
                       "before its first epoch is started again with the same `cnn-studio train ... --out`.")
    with RunLock(layout.root, "resume"):
        clean_temporaries(layout)
        remember_run(layout.root)  # a run copied or moved here is listed from now on
        config = read_config(layout)  # a run that lost it is told so, with what still works
        split = read_split(layout)
        if split is None:
            raise RunError(f"{layout.split} is missing: the images this run trains on are unknown.",
                           WHAT_STILL_WORKS["split"])
        read_state(layout, required=True)  # missing or damaged: say so (resume_point only answers None)
        point = resume_point(layout.root)
        if point is None and more_epochs > 0:
            config = _extend(layout, config, more_epochs, sink)
            point = resume_point(layout.root)
        if point is None:
            raise RunError(f"The run in {layout.root} already completed all {config.total_epochs} epochs.",
                           "Evaluate or export it, continue it with `cnn-studio resume RUN --more-epochs N`, "
                           "or start a new run.")
        checkpointed, _ = point  # 0 when there is no last.keras: start again in the same folder
        for note in check_resumable(layout, checkpointed):  # labels.txt, history.csv: refused or said
            sink(ev.LogMessage("warning", note))
        _set_state(layout, status="running", resumed=_now(), epochs_done=checkpointed)
        return _run(layout, config, split, sink=sink, cancel=cancel, start_epoch=checkpointed, started=started)


def _extend(layout: RunLayout, config: TrainConfig, more: int, sink: ev.EventSink) -> TrainConfig:
    """A completed run's config with its last phase ``more`` epochs longer, as fixed epochs (written to config.json)."""
    state = read_state(layout)
    done = int(state.get("epochs_done", 0) or 0)
    sched = dict(state.get("schedule") or {})
    names = [p.name for p in schedule.plan(config)]
    ran = [n for n in names if (sched.get(n) or {}).get("finished") or not schedule.is_automatic(config)]
    last = ran[-1] if ran else names[-1]
    if last == "fine_tune":
        head_end = int((sched.get("head") or {}).get("end", config.epochs or 0))
        epochs, fine = head_end, done - head_end + more
    else:
        epochs, fine = done + more, 0
    rate = config.learning_rate or (sched.get(last) or {}).get("learning_rate") if last != "fine_tune" else None
    extended = [*config.extra.get("extended", []), {"more_epochs": more, "after_epoch": done, "when": _now()}]
    config = config.replace(epochs=epochs, fine_tune_epochs=fine,
                            learning_rate=rate if rate else config.learning_rate,
                            extra={**config.extra, "extended": extended})
    write_json(layout.config, config.to_dict())
    if last in sched:
        sched[last] = {**sched[last], "finished": False}
    _set_state(layout, status="extending", total_epochs=config.total_epochs, schedule=sched, still_improving=False)
    sink(ev.LogMessage("info", f"Continuing the completed run: {more} more epoch(s) of phase '{last}' "
                               f"(epochs {done + 1}–{done + more})."))
    return config


_optimizer = make_optimizer  # one definition (lr_finder.make_optimizer)


def _class_weights(split: Split, mode: str) -> dict[int, float] | None:
    if mode != "balanced":
        return None
    n = len(split.class_names)
    counts = [0] * n
    for r in split.train:
        counts[r.label] += 1
    total = sum(counts)
    return {i: total / (n * c) for i, c in enumerate(counts) if c}


def _run(layout: RunLayout, config: TrainConfig, split: Split, *, sink: ev.EventSink,
         cancel: CancelToken | None, start_epoch: int, started: float | None = None) -> TrainResult:
    total = config.total_epochs
    skipped: dict[str, str] = {}
    budget = Budget(config.time_budget_s, started)
    try:
        config = _resolve_cache(layout, config, split, sink)
        result = _fit_with_smaller_batches(layout, config, split, sink=sink, cancel=cancel,
                                           start_epoch=start_epoch, skipped=skipped, budget=budget)
    except Cancelled:
        done = int(read_state(layout).get("epochs_done", 0))
        _set_state(layout, status="cancelled", finished=_now())
        best = layout.best_model if layout.best_model.exists() else layout.last_model
        sink(ev.TrainFinished(run_dir=str(layout.root), status="cancelled",
                              best_model=str(best) if best.exists() else "", epochs_done=done,
                              message=(f"Stopped after {done} of {total} epochs; the best model so far is kept."
                                       if done > 0 or layout.best_model.exists() else NO_MODEL_YET)))
        raise
    except Exception as exc:
        err = _friendly(exc, config)
        no_model = not any(m.exists() for m in layout.models)
        if no_model and not isinstance(err, StudioError):
            err = RunError(f"Training could not start: {type(exc).__name__}: {exc}",
                           f"Fix the cause and run the same command again: {layout.root} is reused, "
                           "since this start left no model.")
        elif no_model:
            err = type(err)(err.message, (err.hint + " " if err.hint else "")
                            + f"Then run the same command again: {layout.root} is reused, since this start "
                              "left no model.")
        _set_state(layout, status="failed", finished=_now(), message=getattr(err, "message", str(err)))
        sink(ev.TrainFinished(run_dir=str(layout.root), status="failed", message=str(err)))
        if err is exc:
            raise
        raise err from exc
    _set_state(layout, status="completed", finished=_now())
    result.review = _review(layout, config, sink, cancel)
    result.warnings = list(result.review.get("warnings", []))
    _set_state(layout, elapsed_s=round(budget.elapsed(), 1), time_budget_s=config.time_budget_s or None)
    left_out = (read_state(layout).get("schedule") or {}).get("left_out") or []
    if left_out:
        sink(ev.LogMessage("warning", f"To fit the time budget of {format_duration(config.time_budget_s)}, "
                                      f"the schedule left out: {'; '.join(left_out)}."))
    sink(ev.TrainFinished(run_dir=str(layout.root), status="completed", best_model=str(result.best_model),
                          epochs_done=result.epochs_done, message=" ".join(result.warnings)))
    return result


def _resolve_cache(layout: RunLayout, config: TrainConfig, split: Split, sink: ev.EventSink) -> TrainConfig:
    """``cache="auto"`` decided now (:mod:`cnn_studio.training.cache_choice`), said and recorded in config.json.

    config.json then holds the mode used (``cache``), ``extra["cache_asked"] = "auto"`` and
    ``extra["cache_reason"]`` (e.g. "disk: the decoded images (about 30 GB) would take more than half
    of the 16 GB of memory available, ..."). A resumed run decides again (``cache_asked``), on the
    memory available then. A mode chosen in the settings is used as it is, without a message.
    """
    if config.extra.get("cache_asked", config.cache) != "auto":
        return config
    size = registry.get(config.backbone).image_size(config.image_size)
    choice = choose_image_cache("auto", [*split.train, *split.val], size, layout.feature_cache / "images")
    sink(ev.LogMessage("info", f"Decoded-image cache (auto): {choice.reason}."))
    config = config.replace(cache=choice.mode, extra={**config.extra, "cache_asked": "auto",
                                                      "cache_reason": choice.reason})
    write_json(layout.config, config.to_dict())
    return config


OOM_MIN_BATCH_SIZE = 4  # out of memory at this batch size (or below) ends the run


def _out_of_memory(exc: BaseException) -> bool:
    """A GPU out-of-memory (``tf.errors.ResourceExhaustedError``) or the host's (``MemoryError``)."""
    return type(exc).__name__ == "ResourceExhaustedError" or isinstance(exc, MemoryError)


def _fit_with_smaller_batches(layout: RunLayout, config: TrainConfig, split: Split, *, sink: ev.EventSink,
                              cancel: CancelToken | None, start_epoch: int, skipped: dict[str, str],
                              budget: Budget | None = None) -> TrainResult:
    """``_fit_phases``, retried with half the batch size after running out of memory, down to ``OOM_MIN_BATCH_SIZE``.

    A retry continues from what last.keras holds (``resume_point``: the epochs trained so far are
    kept), records the smaller batch size in config.json (``extra["batch_size_asked"]`` keeps the
    first one) and says so with a LogMessage("warning"). Not retried on several workers (the others
    would wait for ever): there the error ends the run as before.
    """
    import keras

    while True:
        try:
            return _fit_phases(layout, config, split, sink=sink, cancel=cancel, start_epoch=start_epoch,
                               skipped=skipped, budget=budget)
        except Exception as exc:
            if not _out_of_memory(exc) or config.workers > 1 or strategy_kind(0) == "multi_worker":
                raise
            smaller = config.batch_size // 2
            point = resume_point(layout.root)
            if smaller < OOM_MIN_BATCH_SIZE or point is None:
                raise StudioError(
                    f"Out of memory while training with batch size {config.batch_size} at "
                    f"{config.image_size or 'default'} px{' (already halved after running out of memory)' if 'batch_size_asked' in config.extra else ''}.",
                    "Lower the image size or pick a smaller backbone; the run folder is kept.") from exc
            start_epoch = point[0]
            sink(ev.LogMessage("warning", f"Out of memory with batch size {config.batch_size} "
                                          f"({type(exc).__name__}): continuing from epoch {start_epoch + 1} with "
                                          f"batch size {smaller}."))
            config = config.replace(batch_size=smaller,
                                    extra={**config.extra,
                                           "batch_size_asked": config.extra.get("batch_size_asked", config.batch_size)})
            write_json(layout.config, config.to_dict())
            _set_state(layout, status="running", epochs_done=start_epoch)
            keras.backend.clear_session(free_memory=True)  # the failed attempt's model and its GPU memory


def _review(layout: RunLayout, config: TrainConfig, sink: ev.EventSink, cancel: CancelToken | None) -> dict:
    """Review the finished model (chance level, calibration, shortcuts); a failure here never fails the run.

    ``config.extra["review"] = False`` skips it; ``config.extra["shortcut_check"] = False`` skips Grad-CAM.
    """
    if not config.extra.get("review", True):
        return {}

    try:
        return review_model(layout.root, shortcut_check=bool(config.extra.get("shortcut_check", True)),
                            sink=sink, cancel=cancel)
    except Cancelled:
        sink(ev.LogMessage("warning", "The check of the model on the validation images was stopped; "
                                      "the model is saved uncalibrated and unreviewed."))
    except Exception as exc:  # noqa: BLE001 - the model is trained and saved; the review is extra
        sink(ev.LogMessage("warning", f"The check of the model on the validation images failed: {exc}"))
    return {}


def _friendly(exc: Exception, config: TrainConfig) -> Exception:
    if isinstance(exc, StudioError):
        return exc
    name = type(exc).__name__
    if name == "ResourceExhaustedError" or isinstance(exc, MemoryError):
        return StudioError(
            f"Out of memory while training with batch size {config.batch_size} at {config.image_size or 'default'} px.",
            "Lower the batch size (e.g. 8) or the image size, or pick a smaller backbone; the run folder is kept.")
    return exc


def _report_skipped(layout: RunLayout, skips, into: dict[str, str], sink: ev.EventSink) -> None:
    """Name every file the pipeline dropped (a LogMessage each) and keep the list in skipped.csv."""
    entries = dict(getattr(skips, "entries", {}) or {})
    new = {p: r for p, r in entries.items() if p not in into}
    into.update(entries)
    write_skipped(layout, into)
    for path, reason in sorted(new.items()):
        sink(ev.LogMessage("warning", f"Skipped {path}: {reason}"))
    if new:
        sink(ev.LogMessage("warning", f"{len(into)} file(s) could not be decoded and were left out of training; "
                                      f"the list is in {layout.skipped}."))


def _fit_phases(layout: RunLayout, config: TrainConfig, split: Split, *, sink: ev.EventSink,
                cancel: CancelToken | None, start_epoch: int, skipped: dict[str, str] | None = None,
                budget: Budget | None = None) -> TrainResult:
    sink(ev.StageChanged(task="train", stage="Loading TensorFlow"))
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    tensorboard_available = importlib.util.find_spec("tensorboard") is not None
    if not tensorboard_available and start_epoch == 0:
        sink(ev.LogMessage("info", "TensorBoard logs are off (the tensorboard package is not installed); "
                                   "history.csv has every epoch's metrics."))
    spec = registry.get(config.backbone)
    size = spec.image_size(config.image_size)  # recorded in config.json (older runs: the default)
    n_classes = len(split.class_names)
    gpus = tf_runtime.gpu_devices()
    policy = choose_precision(config.precision, gpus)
    strategy = distribution_strategy()
    device = tf_runtime.device_line(gpus)
    if strategy.num_replicas_in_sync > 1:
        device += f" {strategy.num_replicas_in_sync} replicas train together ({strategy_kind(len(gpus))})."

    sink(ev.StageChanged(task="train", stage="Preparing data",
                         detail=f"{len(split.train)} training and {len(split.val)} validation images"))
    cache_dir = layout.feature_cache / "images" if config.cache == "disk" else None
    bands = read_band_info(layout.bands)
    if bands is not None:
        sink(ev.LogMessage("info", f"Multi-band images: {bands.describe()}."))
        dropped = multiband_augment(config.augment)[1]
        if dropped and start_epoch == 0:
            sink(ev.LogMessage("info", f"Augmentation on multi-band images is geometric only: {', '.join(dropped)} "
                                       "left out (they are defined on 0-255 pictures, not on raw band values)."))
    buffer = shuffle_buffer(config.cache, split.train, size)
    if buffer is not None:
        sink(ev.LogMessage("info", f"Shuffling: the {len(split.train):,} training images are put in a random order "
                                   f"once, and each epoch reshuffles {buffer:,} at a time (about "
                                   f"{human_bytes(buffer * decoded_bytes(split.train[:1], size))} of memory; "
                                   "all of them would not fit with the images cached outside memory)."))
    data = make_datasets(split, size, config.batch_size, resize=config.resize, augment=config.augment,
                         cache=config.cache, cache_dir=cache_dir, seed=config.seed, shuffle_buffer=buffer,
                         dtype="uint8")  # the model casts its raw-pixel input itself

    def one_hot(ds):
        return ds.map(lambda x, y: (x, tf.one_hot(y, n_classes)), num_parallel_calls=tf.data.AUTOTUNE)

    train_ds, val_ds = one_hot(data.train), one_hot(data.val)
    class_weight = _class_weights(split, config.class_weight)
    phases = [p for p in _phases(config) if p.end_epoch > start_epoch]
    total = config.total_epochs
    sink(ev.LogMessage("info", schedule.describe(config)))
    sink(ev.TrainStarted(run_dir=str(layout.root), backbone=spec.key, epochs=total, steps=data.steps_per_epoch,
                         train_images=data.train_count, val_images=data.val_count, device=device,
                         batch_size=config.batch_size, precision=precision_line(policy, gpus)))

    best = math.inf
    state = read_state(layout)
    if state.get("best_value") is not None:
        best = float(state["best_value"])
    skipped = {} if skipped is None else skipped
    try:
        in_memory = decoded_bytes([*split.train, *split.val], size) if config.cache == "memory" else 0
        _fit_all(layout, config, phases, data, train_ds, val_ds, class_weight, policy, strategy, spec, size,
                 n_classes, best, tensorboard_available, sink=sink, cancel=cancel, start_epoch=start_epoch,
                 images_in_memory=in_memory, budget=budget)
    finally:
        _report_skipped(layout, data.skips, skipped, sink)

    done = int(read_state(layout).get("epochs_done", 0))

    info = open_run(layout.root)
    return TrainResult(run_dir=layout.root, status="completed", best_model=layout.best_model,
                       last_model=layout.last_model, epochs_done=done,
                       class_names=read_labels(layout.labels), history=info.history(), skipped=dict(skipped))


def _feature_cache_choice(layout: RunLayout, config: TrainConfig, model, data, sink: ev.EventSink,
                          images_in_memory: int = 0) -> CacheChoice:
    """Where the frozen-phase features go: memory, disk (batch by batch) or none, said in the log and config.json.

    ``images_in_memory``: bytes of decoded images this run keeps in memory (``cache_choice.decoded_bytes``
    when ``config.cache == "memory"``), counted as taken.
    """
    width = int(model.get_layer("pool").output.shape[-1])
    count = data.train_count + data.val_count
    choice = choose_feature_cache(count, width, layout.feature_cache / "features", reserved=images_in_memory)
    sink(ev.LogMessage("info", f"Feature cache ({count} images × {width} features): {choice.reason}."))
    write_json(layout.config, config.replace(extra={**config.extra, "feature_cache_reason": choice.reason}).to_dict())
    return choice


def _jit_compile(config: TrainConfig) -> bool | str:
    """``compile``'s ``jit_compile`` for ``config.jit``: "auto" (Keras: XLA on a GPU only), True or False."""
    return {"on": True, "off": False}.get(getattr(config, "jit", "auto"), "auto")


def _load_last(layout: RunLayout):
    return load_model(layout.last_model)  # checked: a CNN Studio model of this run's classes and size


@dataclass
class _Fit:
    """What every phase of one ``_fit_all`` shares."""

    layout: RunLayout
    config: TrainConfig
    data: object
    train_ds: object
    val_ds: object
    class_weight: dict | None
    n_classes: int
    model: object
    loss: object
    sink: ev.EventSink
    cancel: CancelToken | None
    budget: Budget
    tensorboard: bool
    images_in_memory: int
    best: float
    saved_optimizer: object = None
    forward_images_per_s: float = 0.0  # measured while computing features (0: not measured)
    left_out: list[str] = field(default_factory=list)
    activations: activation_cache.Activations | None = None  # the frozen layers' output, for fine-tuning

    def one_hot(self, ds):
        import tensorflow as tf

        n = self.n_classes
        return ds.map(lambda x, y: (x, tf.one_hot(y, n)), num_parallel_calls=tf.data.AUTOTUNE)


def _fit_all(layout, config, phases, data, train_ds, val_ds, class_weight, policy, strategy, spec, size,
             n_classes, best, tensorboard_available, *, sink, cancel, start_epoch, images_in_memory: int = 0,
             budget: Budget | None = None) -> None:
    """The phases' ``fit`` calls (``_fit_phases`` prepares the data and reports the skipped files).

    Phases follow :func:`cnn_studio.training.schedule.plan`; an automatic phase ends when the
    validation loss stops improving, so the next one starts where it ended (state.json
    ``schedule.<phase>.end``, which ``resume`` reads).
    """
    import keras

    with precision_policy(policy), strategy.scope():
        sink(ev.StageChanged(task="train", stage="Building model", detail=f"{spec.label} at {size}x{size} px"))
        saved_optimizer = None
        if start_epoch > 0 and layout.last_model.exists():
            model = _load_last(layout)
            # Adam moments, a learning rate lowered on plateau (none in a checkpoint kept from before a NaN loss)
            saved_optimizer = getattr(model, "optimizer", None)
        else:
            model = build_classifier(spec, n_classes, weights=config.weights, image_size=size, dropout=config.dropout,
                                     bands=read_band_info(layout.bands))
        fit = _Fit(layout, config, data, train_ds, val_ds, class_weight, n_classes, model,
                   keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing), sink, cancel,
                   budget or Budget(0), tensorboard_available, images_in_memory, best, saved_optimizer)
        recorded = dict(read_state(layout).get("schedule") or {})
        cursor = 0
        for plan in schedule.plan(config):
            begin, facts = cursor, recorded.get(plan.name) or {}
            end = int(facts["end"]) if facts.get("finished") else begin + plan.max_epochs
            cursor = end
            first = max(begin, start_epoch)
            if first >= end:
                continue
            if not _phase_fits(fit, plan):
                break
            try:
                cursor = _fit_phase(fit, plan, first, end, begin)
            except BaseException:
                activation_cache.release(fit.activations, layout.feature_cache)
                raise
            if fit.cancel is not None and fit.cancel.cancelled:
                raise Cancelled()
        activation_cache.release(fit.activations, layout.feature_cache)  # the check after training needs memory
        fit.activations = None
        _record_schedule(layout, left_out=fit.left_out)


def _phase_fits(fit: _Fit, plan) -> bool:
    """Whether a first epoch of ``plan`` fits the time budget (estimated from the feature computation)."""
    if not fit.budget.active or plan.name != "fine_tune" or fit.forward_images_per_s <= 0:
        return True
    if strategy_kind(0) == "multi_worker":  # each worker would decide on its own clock (see _phase_callbacks)
        return True
    n_train, n_val = fit.data.train_count, fit.data.val_count
    rate = fit.forward_images_per_s
    if fit.activations is not None and fit.activations.upper_images_per_s > 0:
        rate = fit.activations.upper_images_per_s  # epochs run the upper part on the kept activations
    estimate = (3 * n_train + n_val) / rate
    if fit.budget.fits(estimate):
        return True
    why = (f"fine-tuning left out: an epoch takes about {format_duration(estimate)} and "
           f"{format_duration(max(fit.budget.left(), 0))} of the time budget is left")
    fit.left_out.append(why)
    fit.sink(ev.LogMessage("warning", f"Time budget: {why}."))
    return False


def _phase_callbacks(fit: _Fit, plan, phase: str, first: int):
    """The callbacks of one phase's ``fit``: events, TensorBoard, stopping rules, checkpoints (in this order)."""
    import keras

    from cnn_studio.training.callbacks import AtomicCheckpoints, EventCallback

    config = fit.config
    events = EventCallback(fit.sink, fit.cancel, phase=phase, epochs_total=config.total_epochs,
                           batch_size=config.batch_size, steps=fit.data.steps_per_epoch)
    if strategy_kind(0) == "multi_worker":
        # Reading a metric mid-epoch is a cross-worker collective, which each worker would issue
        # at its own moments (the throttle is by time): the workers' collectives then mismatch.
        events._running_loss = dict
    callbacks = [events]
    if fit.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(fit.layout.tensorboard), write_graph=False, profile_batch=0))
    patience = plan.patience or config.early_stopping_patience
    stopper = None
    if patience:  # restores the phase's best weights, so the next phase starts from them
        stopper = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=bool(plan.patience))
        callbacks.append(stopper)
    plateau = config.reduce_lr_patience or (max(plan.patience // 2, 1) if plan.patience else 0)
    if plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(patience=plateau, factor=0.3))
    # several workers must stop at the same epoch: a wall-clock rule each measures itself could split them
    budget = budget_stop(fit.budget if strategy_kind(0) != "multi_worker" else Budget(0))
    callbacks.append(budget)
    checkpoints = AtomicCheckpoints(fit.model, fit.layout, fit.sink, best=fit.best, initial_epoch=first,
                                    skip_epoch=lambda cb=events: cb.interrupted,
                                    min_interval_s=float(config.extra.get("checkpoint_interval_s", 30.0)),
                                    diverged=lambda cb=events: cb.diverged is not None)
    callbacks.append(checkpoints)
    return callbacks, events, stopper, budget, checkpoints


def _fit_phase(fit: _Fit, plan, first: int, end: int, begin: int) -> int:
    """Train one phase from global epoch ``first`` to at most ``end``; returns the epoch it ended at."""
    from cnn_studio.training.callbacks import diverged_error

    config, model = fit.config, fit.model
    if plan.name == "head":
        freeze_backbone(model)
    elif plan.name == "fine_tune":
        unfreeze_depth(model, config.effective_fine_tune_depth)
    else:  # scratch: everything learns
        model.get_layer("backbone").trainable = True
    use_cache = plan.name == "head" and config.feature_cache and not config.augment
    features = None
    if use_cache:
        features = _feature_cache_choice(fit.layout, config, model, fit.data, fit.sink, fit.images_in_memory)
        use_cache = features.mode != "none"
    on_activations = plan.name == "fine_tune" and _fine_tune_activations(fit, resuming=first > begin)
    callbacks, events, stopper, budget, checkpoints = _phase_callbacks(fit, plan, plan.name, first)
    try:
        if use_cache:
            fit_model, fit_train, fit_val, rate = _head_on_features(fit, plan, features, first)
        elif on_activations:
            fit_model, fit_train, fit_val, rate = _upper_on_activations(fit, plan)
        else:
            rate = plan.learning_rate or schedule.DEFAULT_LEARNING_RATE
            if plan.learning_rate is None:
                fit.sink(ev.LogMessage("info", f"Learning rate {rate:g} for the head: the learning-rate finder runs "
                                               "on cached features only (here the backbone runs every epoch)."))
            optimizer = _optimizer(config.optimizer, rate)
            if fit.saved_optimizer is not None and first > begin:
                optimizer = fit.saved_optimizer  # resuming inside this phase: continue its optimizer state
            model.compile(optimizer=optimizer, loss=fit.loss, metrics=["accuracy"], jit_compile=_jit_compile(config))
            fit_model, fit_train, fit_val = model, fit.train_ds, fit.val_ds
        fit.sink(ev.PhaseStarted(name=plan.name, epochs=end - first, first_epoch=first, learning_rate=rate,
                                 trainable_layers=trainable_layer_count(model),
                                 uses_feature_cache=bool(use_cache or on_activations)))
        with warnings.catch_warnings():
            # Our datasets drop unreadable files, so their length is unknown until the first pass
            # ends; Keras then says "Your input ran out of data" once. That is expected, not a fault.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            fit_model.fit(fit_train, validation_data=fit_val, initial_epoch=first, epochs=end,
                          callbacks=callbacks, class_weight=fit.class_weight, shuffle=False, verbose=0)
    finally:
        if use_cache:
            remove_feature_files(fit.layout.feature_cache / "features")  # only this phase reads them
    fit.best = checkpoints.best
    if events.diverged is not None:  # the loss became NaN/inf: stopped, the last good checkpoint kept
        raise diverged_error(events.diverged, rate, int(read_state(fit.layout).get("checkpoint_epoch", 0) or 0))
    if fit.cancel is not None and fit.cancel.cancelled:
        return checkpoints.epochs_done
    return _phase_ended(fit, plan, first, end, begin, rate, stopper, budget, checkpoints)


def _phase_ended(fit: _Fit, plan, first, end, begin, rate, stopper, budget, checkpoints) -> int:
    """Record what the phase did (state.json ``schedule``) and say why it stopped."""
    done = checkpoints.epochs_done
    if stopper is not None and stopper.stopped_epoch > 0:
        how = (f"stopped after {done - begin} epoch(s): no lower validation loss for {stopper.patience} epochs; "
               f"the best (epoch {stopper.best_epoch + 1}) was kept")
    elif budget.stopped:
        how = f"stopped after {done - begin} of {end - begin} epoch(s) to stay within the time budget"
        fit.left_out.append(f"{plan.name.replace('_', '-')} epochs {done + 1}–{end}")
    else:
        how = f"ran all {end - begin} epoch(s)"
    fit.sink(ev.LogMessage("info", f"Phase '{plan.name}' {how}."))
    _record_schedule(fit.layout, phase=plan.name, start=begin, end=done, finished=True, how=how,
                     automatic=plan.automatic, max_epochs=plan.max_epochs, learning_rate=rate)
    last = plan.name == schedule.plan(fit.config)[-1].name
    if (last or budget.stopped) and not (stopper is not None and stopper.stopped_epoch > 0):
        _check_still_improving(fit, plan.name, begin, done, stopped_by_budget=budget.stopped,
                               automatic=plan.automatic)
    return done


def _head_on_features(fit: _Fit, plan, features, first: int):
    """Compute the frozen backbone's features (with progress), pick the rate (finder), compile the head."""
    config, data = fit.config, fit.data
    feature_model, head_model = split_for_feature_cache(fit.model)
    on_disk = features is not None and features.mode == "disk"
    folder = fit.layout.feature_cache / "features"
    t0 = time.monotonic()
    fit.activations = _head_activations(fit)
    if fit.activations is not None:  # one pass through the frozen layers serves both phases
        train_xy, val_xy = activation_cache.pooled_features(fit.activations, config.batch_size, sink=fit.sink,
                                                            cancel=fit.cancel, folder=folder if on_disk else None)
    else:
        train_xy = compute_features(feature_model, data.train, count=data.train_count,
                                    task="Computing features (training images)", sink=fit.sink, cancel=fit.cancel,
                                    path=folder / "train.npy" if on_disk else None)
        val_xy = compute_features(feature_model, data.val, count=data.val_count,
                                  task="Computing features (validation images)", sink=fit.sink, cancel=fit.cancel,
                                  path=folder / "val.npy" if on_disk else None)
    seconds = time.monotonic() - t0
    if seconds > 0:
        fit.forward_images_per_s = (len(train_xy[1]) + len(val_xy[1])) / seconds
        fit.budget.reserve_for_review(data.val_count, fit.forward_images_per_s)
    rate = plan.learning_rate
    if rate is None and strategy_kind(0) == "multi_worker":  # the sweep is a loop of this process alone
        rate = schedule.DEFAULT_LEARNING_RATE
        fit.sink(ev.LogMessage("info", f"Learning rate {rate:g} for the head: the learning-rate finder runs with "
                                       "one worker only."))
    elif rate is None:
        rate = _find_head_rate(fit, head_model, train_xy)
    ftrain, fval = feature_datasets(train_xy, val_xy, config.batch_size, config.seed)
    # a head step takes microseconds: run a whole epoch per graph call, same batches,
    # so Python overhead does not dominate (events and cancel checks come per epoch)
    head_model.compile(optimizer=_optimizer(config.optimizer, rate), loss=fit.loss, metrics=["accuracy"],
                       steps_per_execution=data.steps_per_epoch, jit_compile=_jit_compile(config))
    return head_model, fit.one_hot(ftrain), fit.one_hot(fval), rate


def _activations_wanted(fit: _Fit) -> bool:
    """Whether fine-tuning can train on kept activations: a fine-tune phase, the cache on, no augmentation."""
    config = fit.config
    return (config.feature_cache and not config.augment and strategy_kind(0) != "multi_worker"
            and any(p.name == "fine_tune" for p in schedule.plan(config)))


def _head_activations(fit: _Fit) -> activation_cache.Activations | None:
    """The frozen layers' activations for the head phase to pool and the fine-tune phase to reuse, or None."""
    if not _activations_wanted(fit):
        return None
    split = activation_cache.plan_split(fit.model, fit.config.effective_fine_tune_depth)
    if split is None:
        return None
    return activation_cache.compute(split, fit.data, fit.layout.feature_cache, reserved=fit.images_in_memory,
                                    sink=fit.sink, cancel=fit.cancel)


def _fine_tune_activations(fit: _Fit, *, resuming: bool) -> bool:
    """Whether this fine-tune phase trains on kept activations (computed now when the head phase did not)."""
    if not _activations_wanted(fit) or (resuming and fit.saved_optimizer is not None):
        return False  # a resumed phase continues its saved optimizer, which knows the whole model
    if fit.activations is None:
        split = activation_cache.plan_split(fit.model, fit.config.effective_fine_tune_depth)
        fit.activations = split and activation_cache.compute(
            split, fit.data, fit.layout.feature_cache, reserved=fit.images_in_memory, sink=fit.sink,
            cancel=fit.cancel)
        unfreeze_depth(fit.model, fit.config.effective_fine_tune_depth)  # plan_split froze it again
    return fit.activations is not None


def _upper_on_activations(fit: _Fit, plan):
    """Compile the upper part (fine-tuned layers and head) for epochs on the kept activations."""
    config, acts = fit.config, fit.activations
    rate = plan.learning_rate
    fit.sink(ev.LogMessage("info", f"Fine-tuning trains from {acts.split.cut_layer} up on the activations kept "
                                   "from the head phase: the frozen layers below it are not run again."))
    ftrain, fval = feature_datasets(acts.train_xy, acts.val_xy, config.batch_size, config.seed)
    upper = acts.split.upper
    upper.compile(optimizer=_optimizer(config.optimizer, rate), loss=fit.loss, metrics=["accuracy"],
                  jit_compile=_jit_compile(config))
    return upper, fit.one_hot(ftrain), fit.one_hot(fval), rate


def _find_head_rate(fit: _Fit, head_model, train_xy) -> float:
    """The learning-rate finder on the cached features: its suggestion, said, sent and recorded."""
    config = fit.config
    fit.sink(ev.StageChanged(task="train", stage="Finding a learning rate",
                             detail="a short sweep on the cached features"))
    batches = feature_batches(train_xy[0], train_xy[1], fit.n_classes, config.batch_size, config.seed)
    found = sweep(head_model, batches, fit.loss, optimizer=config.optimizer, cancel=fit.cancel)
    fit.sink(ev.LearningRateFound(rates=found.rates, losses=found.losses, suggestion=found.suggestion,
                                  reason=found.reason))
    fit.sink(ev.LogMessage("info", f"Learning-rate finder: {found.suggestion:.2g} for the head, {found.reason}."))
    _record_schedule(fit.layout, phase="head", lr_finder=found.to_dict())
    return found.suggestion


def _record_schedule(layout: RunLayout, *, phase: str | None = None, left_out: list[str] | None = None,
                     **facts) -> None:
    """Merge facts into state.json's ``schedule`` record (per phase, or the run's ``left_out``)."""
    state = read_state(layout)
    sched = dict(state.get("schedule") or {})
    if phase is not None:
        sched = schedule.record_phase(sched, phase, **facts)
    if left_out is not None:
        sched["left_out"] = list(dict.fromkeys([*sched.get("left_out", []), *left_out]))
    _set_state(layout, schedule=sched)


def _check_still_improving(fit: _Fit, phase: str, begin: int, end: int, *, stopped_by_budget: bool,
                           automatic: bool = False) -> None:
    """A phase that ended while its validation loss was still falling: say so (event, log, state.json)."""
    losses = []
    for row in read_history(fit.layout.history):
        epoch = int(float(row.get("epoch", -1)))
        if begin <= epoch < end and row.get("val_loss") not in (None, ""):
            losses.append(float(row["val_loss"]))
    if not schedule.still_improving(losses):
        return
    why = ("the time budget ended it" if stopped_by_budget else
           "it reached the schedule's maximum" if automatic else "its epochs ran out")
    text = (f"The validation loss was still falling when phase '{phase}' ended ({losses[-2]:.3f} → "
            f"{losses[-1]:.3f} in its last epoch): {why}, and more epochs would likely give a better model. "
            "Use Continue training (cnn-studio resume RUN --more-epochs N)"
            + ("." if automatic else ", or the automatic schedule (leave the epochs empty)."))
    fit.sink(ev.StillImproving(phase=phase, epochs=len(losses), val_loss_before=losses[-2],
                               val_loss_after=losses[-1], message=text))
    fit.sink(ev.LogMessage("warning", text))
    _record_schedule(fit.layout, phase=phase, still_improving=True)
    _set_state(fit.layout, still_improving=True)
