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

Modules: this one starts, resumes and ends a run (checks, the folder, the out-of-memory retry, the
review); ``run_state`` keeps state.json; ``run_data`` prepares the data; ``phases`` runs the phases'
``fit`` calls, ``cached_fit`` those on cached features/activations; ``fit_context`` names what they share.

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

import time
from pathlib import Path

from cnn_studio import __version__
from cnn_studio.backbones import registry
from cnn_studio.backbones.weights_store import resolve_weights
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import ConfigError, DatasetError, RunError, StudioError
from cnn_studio.core.fsutil import write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.bands import BandInfo, dataset_band_layout, make_band_info, write_band_info
from cnn_studio.data.records import Split
from cnn_studio.evaluation.review import review_model
from cnn_studio.runs.checks import WHAT_STILL_WORKS
from cnn_studio.runs.listing import NO_MODEL_YET, reproducibility_record
from cnn_studio.runs.registry import remember as remember_run
from cnn_studio.runs.run_folder import (
    RunLock,
    check_resumable,
    clean_temporaries,
    looks_like_run,
    read_config,
    read_split,
    read_state,
    recorded_config,
    resume_point,
    write_labels,
)
from cnn_studio.training.cache_choice import choose_image_cache
from cnn_studio.training.config import TrainConfig
from cnn_studio.training.devices import strategy_kind
from cnn_studio.training.fit_context import RunContext
from cnn_studio.training.result import TrainResult
from cnn_studio.training.run_data import fit_run
from cnn_studio.training.run_state import claim_folder, clear_failed_start, extend_completed, now, set_state
from cnn_studio.training.schedule import format_duration
from cnn_studio.training.time_budget import Budget

__all__ = ["OOM_MIN_BATCH_SIZE", "TrainResult", "band_info_for", "resume", "train"]


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
        claim_folder(layout, sink)
        _write_start(layout, config, split, bands, sink)
        run = RunContext(layout, sink, cancel, Budget(config.time_budget_s, started))
        return _run(run, config, split, start_epoch=0)


def _write_start(layout: RunLayout, config: TrainConfig, split: Split, bands: BandInfo | None,
                 sink: ev.EventSink) -> None:
    """config.json, split.json, labels.txt, bands.json, the fingerprint and a "running" state.json."""
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
                                  "started": now(), "app_version": __version__})
        remember_run(layout.root)  # the runs list finds it wherever it is
    except BaseException:
        clear_failed_start(layout)  # nothing half-made may block a retry with the same folder
        raise


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
            config = extend_completed(layout, config, more_epochs, sink)
            point = resume_point(layout.root)
        if point is None:
            raise RunError(f"The run in {layout.root} already completed all {config.total_epochs} epochs.",
                           "Evaluate or export it, continue it with `cnn-studio resume RUN --more-epochs N`, "
                           "or start a new run.")
        checkpointed, _ = point  # 0 when there is no last.keras: start again in the same folder
        for note in check_resumable(layout, checkpointed):  # labels.txt, history.csv: refused or said
            sink(ev.LogMessage("warning", note))
        set_state(layout, status="running", resumed=now(), epochs_done=checkpointed)
        run = RunContext(layout, sink, cancel, Budget(config.time_budget_s, started))
        return _run(run, config, split, start_epoch=checkpointed)


def _run(run: RunContext, config: TrainConfig, split: Split, *, start_epoch: int) -> TrainResult:
    """Train from ``start_epoch``, then end the run: completed and reviewed, cancelled or failed."""
    layout, sink, budget = run.layout, run.sink, run.budget
    total = config.total_epochs
    try:
        config = _resolve_cache(layout, config, split, sink)
        result = _fit_with_smaller_batches(run, config, split, start_epoch)
    except Cancelled:
        done = int(read_state(layout).get("epochs_done", 0))
        set_state(layout, status="cancelled", finished=now())
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
        set_state(layout, status="failed", finished=now(), message=getattr(err, "message", str(err)))
        sink(ev.TrainFinished(run_dir=str(layout.root), status="failed", message=str(err)))
        if err is exc:
            raise
        raise err from exc
    set_state(layout, status="completed", finished=now())
    result.review = _review(run, config)
    result.warnings = list(result.review.get("warnings", []))
    set_state(layout, elapsed_s=round(budget.elapsed(), 1), time_budget_s=config.time_budget_s or None)
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


def _fit_with_smaller_batches(run: RunContext, config: TrainConfig, split: Split, start_epoch: int) -> TrainResult:
    """``run_data.fit_run``, retried with half the batch size after running out of memory, down to ``OOM_MIN_BATCH_SIZE``.

    A retry continues from what last.keras holds (``resume_point``: the epochs trained so far are
    kept), records the smaller batch size in config.json (``extra["batch_size_asked"]`` keeps the
    first one) and says so with a LogMessage("warning"). Not retried on several workers (the others
    would wait for ever): there the error ends the run as before.
    """
    import keras

    layout, sink = run.layout, run.sink
    while True:
        try:
            return fit_run(run, config, split, start_epoch)
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
            set_state(layout, status="running", epochs_done=start_epoch)
            keras.backend.clear_session(free_memory=True)  # the failed attempt's model and its GPU memory


def _review(run: RunContext, config: TrainConfig) -> dict:
    """Review the finished model (chance level, calibration, shortcuts); a failure here never fails the run.

    ``config.extra["review"] = False`` skips it; ``config.extra["shortcut_check"] = False`` skips Grad-CAM.
    The validation activations training kept (``run.kept_validation``) are used, then let go.
    """
    layout, sink, cancel = run.layout, run.sink, run.cancel
    kept, run.kept_validation = run.kept_validation, None
    if not config.extra.get("review", True):
        return {}

    try:
        return review_model(layout.root, shortcut_check=bool(config.extra.get("shortcut_check", True)),
                            sink=sink, cancel=cancel, activations=kept)
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
