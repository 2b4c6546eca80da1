"""``cnn-studio train`` and ``cnn-studio resume``: scan → check → split → two-phase training."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from cnn_studio.backbones.fine_tune import DEFAULT_DEPTH, DEPTH_HELP, table_plan
from cnn_studio.backbones.registry import DEFAULT_BACKBONE, FALLBACK_BACKBONE, get
from cnn_studio.backbones.weights import WEIGHTS_HELP
from cnn_studio.backbones.weights_store import download_weights, offline_status
from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled
from cnn_studio.core.errors import ConfigError, WeightsUnavailable
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.augment import AUGMENTATIONS
from cnn_studio.data.index import require_source
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.data.records import CACHE_MODES, RESIZE_POLICIES
from cnn_studio.data.split import GROUP_CHOICES, group_by_value
from cnn_studio.labels.corrections import AUTO
from cnn_studio.runs.listing import NO_MODEL_YET
from cnn_studio.training import distributed, schedule
from cnn_studio.training.config import (
    CLASS_WEIGHTS,
    JIT_MODES,
    LR_SCHEDULES,
    OPTIMIZERS,
    PLATEAU_PATIENCE,
    PRECISIONS,
    SLICE_AXES,
    STUDY_AGGREGATES,
    TrainConfig,
    parse_band_list,
)
from cnn_studio.training.schedule import parse_duration
from cnn_studio.training.trainer import resume, train


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``resume`` subcommands (no TensorFlow import)."""

    d = TrainConfig()
    p = sub.add_parser("train", help="fine-tune a backbone on a folder of labeled images",
                       description="Scan DATA_DIR (one sub-folder per class, train/val/test folders, or a CSV "
                       "manifest), check it, split it and train. Ctrl+C stops after the current batch and "
                       "keeps the best model; `cnn-studio resume RUN_DIR` continues.")
    _add_model_options(p, d)
    _add_schedule_options(p)
    _add_optimiser_options(p, d)
    _add_data_options(p, d)
    _add_band_and_volume_options(p, d)
    _add_output_and_compute_options(p, d)
    p.set_defaults(run=run_train, check=check_train)
    _register_resume(sub)


def _add_model_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """The dataset, the backbone, its weights and the image size."""
    p.add_argument("data_dir", metavar="DATA_DIR", help="image folder or CSV manifest (path,label[,group])")
    p.add_argument("--backbone", default=None,
                   help=f"backbone key (default {d.backbone}, or {FALLBACK_BACKBONE} when its ImageNet weights cannot be had; "
                   "see `cnn-studio backbones`)")
    p.add_argument("--weights", default=None,
                   help=f"{WEIGHTS_HELP} (default: imagenet for a pretrained backbone, none for small_cnn)")
    p.add_argument("--image-size", type=int, default=None, help="image side in pixels (default: the backbone's)")


def _add_schedule_options(p: argparse.ArgumentParser) -> None:
    """Epochs of each phase, the time budget and how deep fine-tuning reaches."""
    p.add_argument("--epochs", type=int, default=None,
                   help="fixed epochs with the backbone frozen (head only). Default: the automatic schedule — the "
                   f"head trains until the validation loss stops improving (at most {schedule.HEAD_MAX_EPOCHS} "
                   f"epochs), then the fine-tune depth until it stops improving (at most "
                   f"{schedule.FINE_TUNE_MAX_EPOCHS}), each phase's best weights kept; from scratch: at most "
                   f"{schedule.SCRATCH_MAX_EPOCHS} epochs with early stopping")
    p.add_argument("--fine-tune-epochs", type=int, default=None,
                   help="fixed epochs with the top layers unfrozen (with --epochs: a fixed schedule; default 0 then)")
    p.add_argument("--time-budget", default="", metavar="DURATION",
                   help="fit training into this time (e.g. 10m, 1h30m, 90s): phases stop before an epoch that "
                   "would end past it, and the run says what it left out")
    p.add_argument("--fine-tune-depth", default=None, metavar="DEPTH",
                   help=f"{DEPTH_HELP}; default \"{DEFAULT_DEPTH}\". `cnn-studio train --fine-tune-depth "
                   "DEPTH --show-fine-tune` lists the layers and weights it retrains")
    p.add_argument("--fine-tune-layers", type=int, default=None, metavar="N",
                   help="the same as --fine-tune-depth \"N conv\": the top N convolution layers (BatchNorm "
                   "is not counted and stays frozen)")
    p.add_argument("--show-fine-tune", action="store_true",
                   help="print which backbone layers fine-tuning retrains and how many weights, then exit")


def _add_optimiser_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """Dropout, learning rates and their schedule, optimizer, loss and early stopping, the seed."""
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout before the last layer (default %(default)s)")
    p.add_argument("--lr-schedule", default=None, choices=LR_SCHEDULES,
                   help="constant (the default), or plateau: the learning rate ×0.3 after --reduce-lr-patience epochs without a "
                   "lower validation loss")
    p.add_argument("--reduce-lr-patience", type=int, default=None, metavar="EPOCHS",
                   help=f"epochs without improvement before the learning rate drops (default {PLATEAU_PATIENCE}; "
                   "implies --lr-schedule plateau)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--learning-rate", type=float, default=None,
                   help="the head's learning rate (default: picked by the learning-rate finder on the automatic "
                   f"schedule, else {schedule.DEFAULT_LEARNING_RATE:g}; see `cnn-studio lr-find`)")
    p.add_argument("--fine-tune-learning-rate", type=float, default=d.fine_tune_learning_rate)
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--class-weight", default=d.class_weight, choices=CLASS_WEIGHTS)
    p.add_argument("--early-stopping", type=int, default=d.early_stopping_patience, metavar="PATIENCE", help="stop after N epochs without improvement")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the split and of training (default %(default)s)")


def _add_data_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """The split, label corrections, augmentation, resizing and caching."""
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--test-fraction", type=float, default=d.test_fraction)
    p.add_argument("--group-by", default="auto", choices=GROUP_CHOICES,
                   help="keep groups (CSV group column, DICOM PatientID) within one split")
    p.add_argument("--corrections", default=AUTO, metavar="FILE|auto|none",
                   help="label corrections (corrections.csv: path,original_label,new_label,when) to train with: "
                        "auto (default) the ones the app's review queue saved for this dataset, a file, or none "
                        "for the labels as the folders give them")
    p.add_argument("--augment", default="", help=f"comma-separated: {','.join(AUGMENTATIONS)}")
    p.add_argument("--resize", default=d.resize, choices=RESIZE_POLICIES)
    p.add_argument("--cache", default=d.cache, choices=CACHE_MODES,
                   help="where decoded images are kept between epochs: auto (default) memory when they take less "
                        "than half the memory available, else a disk cache in the run folder, else none; "
                        "the choice and its reason are printed and recorded in config.json "
                        "(CNN_STUDIO_MEMORY_BUDGET=BYTES simulates a computer with less memory)")
    p.add_argument("--no-feature-cache", action="store_true", help="do not cache frozen-backbone features")


def _add_band_and_volume_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """Multi-band images (which bands, which shown as RGB) and volumes (slicing, study answers)."""
    p.add_argument("--bands", default="", metavar="LIST",
                   help="multi-band images: the bands the model uses, counted from 1 (e.g. 4,3,2 or 1-4,8; default: all)")
    p.add_argument("--rgb", default="", metavar="R,G,B",
                   help="multi-band images: the three bands shown as red, green, blue (Grad-CAM, thumbnails) and "
                        "given the pretrained RGB filters (default: from the band names, else 1,2,3)")
    p.add_argument("--slice-axis", type=int, default=d.slice_axis, choices=SLICE_AXES,
                   help="volumes: the axis slices are cut across (default 2: axial for RAS-oriented NIfTI)")
    p.add_argument("--slices", default=d.slices, metavar="WHICH",
                   help='volumes: "content" (every slice with content, default), "all" or "middle:K"')
    p.add_argument("--study-aggregate", default=d.study_aggregate, choices=STUDY_AGGREGATES,
                   help="volumes: a study's answer from its slices' probabilities (default: mean)")


def _add_output_and_compute_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """The run folder, XLA, and training on several processes or machines."""
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="new folder for the run")
    p.add_argument("--jit", nargs="?", const="on", default=d.jit, choices=JIT_MODES,
                   help="XLA compilation of the train step: --jit (on), --jit off; default auto (Keras: on a GPU only)")
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help="number format: auto (default: mixed_float16 on GPUs with tensor cores; on a CPU with Intel "
                        "AMX the training images' one pass through the frozen layers in bfloat16), float32 "
                        "everywhere, or mixed_float16")
    p.add_argument("--workers", type=int, default=d.workers, metavar="N",
                   help="train with N worker processes on this computer (MultiWorkerMirroredStrategy on 127.0.0.1)")
    p.add_argument("--cluster", default=None, metavar="FILE",
                   help="several machines: a file naming the workers (host:port a line, the chief first); "
                        "run the same command on each with its --task-index (or set TF_CONFIG instead)")
    p.add_argument("--task-index", type=int, default=0, metavar="I", help="this machine's line in --cluster (0 = chief)")


def _register_resume(sub: argparse._SubParsersAction) -> None:
    """Add the ``resume`` subcommand."""
    r = sub.add_parser("resume", help="continue an interrupted or stopped training run",
                       description="Continue a run from its last completed epoch (after Ctrl+C, a crash or a kill).")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--more-epochs", type=int, default=0, metavar="N",
                   help="a run that completed (e.g. while its validation loss was still falling): train its last "
                   "phase N more epochs")
    r.set_defaults(run=run_resume)


def check_train(args: argparse.Namespace) -> None:
    """Before the device line, the weights and TensorFlow: the dataset must be there (DatasetError)."""
    if not args.show_fine_tune:
        require_source(args.data_dir)


def run_train(args: argparse.Namespace) -> int:
    """Prepare (scan, check, split) and train; 0 when done, 2 on a dataset/setting error, 130 when stopped."""
    if args.cluster:
        os.environ["TF_CONFIG"] = json.dumps(distributed.tf_config_from_file(args.cluster, args.task_index))
    cluster = distributed.tf_config()
    if args.workers > 1 and cluster is None:
        return distributed.run_local_workers(_train_argv(), args.workers)

    if args.show_fine_tune:
        return show_fine_tune(args)
    backbone, weights = default_backbone_and_weights(args.backbone, args.weights)
    config = config_from_args(args, backbone, weights)
    config = config.replace(jit=args.jit, precision=args.precision,
                            workers=max(args.workers, distributed.task_count(cluster or {})))
    if not distributed.is_chief(cluster):
        config = config.replace(extra={**config.extra, "review": False})  # the chief reviews the model
    progress = TerminalProgress()
    try:
        with cancel_on_interrupt() as token:
            prepared = prepare(args.data_dir, PrepareOptions(
                val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                seed=config.effective_split_seed, group_by=config.group_by, corrections=args.corrections,
                slicing=config.slicing), sink=progress, cancel=token)
            for f in prepared.findings:
                if f.severity != "info":
                    print(f"{f.severity}: {f.message}" + (f"\n  {f.hint}" if f.hint else ""), file=sys.stderr)
            if not prepared.usable:
                print("error: the dataset cannot be used for training as it is (see above).", file=sys.stderr)
                return 2
            result = _train_here(config, prepared.split, args.out, cluster, progress, token)
    except Cancelled:
        layout = RunLayout(Path(args.out))
        if layout.is_run() and not layout.best_model.exists():
            print(f"{NO_MODEL_YET} Start again with the same command (or: cnn-studio resume {args.out}).",
                  file=sys.stderr)
        elif layout.is_run():
            print(f"stopped; the best model so far is kept in {args.out}. "
                  f"Continue with: cnn-studio resume {args.out}", file=sys.stderr)
        else:
            print("stopped before training started; nothing was written.", file=sys.stderr)
        return 130
    return _finish(result)


def fine_tune_depth_of(args: argparse.Namespace) -> str:
    """``--fine-tune-depth``, else ``--fine-tune-layers N`` read as "N conv", else the default."""
    if args.fine_tune_depth is not None:
        if args.fine_tune_layers is not None:
            raise ConfigError("Give --fine-tune-depth or --fine-tune-layers, not both.",
                              "--fine-tune-layers N is the same as --fine-tune-depth \"N conv\".")
        return args.fine_tune_depth
    if args.fine_tune_layers is not None:
        return f"{args.fine_tune_layers} conv"
    return DEFAULT_DEPTH


def config_from_args(args: argparse.Namespace, backbone: str, weights: str) -> TrainConfig:
    """The validated TrainConfig of ``cnn-studio train``'s options."""
    patience = args.reduce_lr_patience
    if patience is None:
        patience = PLATEAU_PATIENCE if args.lr_schedule == "plateau" else 0
    elif args.lr_schedule == "constant" and patience > 0:
        raise ConfigError("--lr-schedule constant and --reduce-lr-patience contradict each other.",
                          "Use --lr-schedule plateau --reduce-lr-patience N, or leave the patience out.")
    return TrainConfig(
        backbone=backbone, weights=weights, image_size=args.image_size, batch_size=args.batch_size,
        epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs, fine_tune_depth=fine_tune_depth_of(args),
        learning_rate=args.learning_rate, fine_tune_learning_rate=args.fine_tune_learning_rate,
        optimizer=args.optimizer, label_smoothing=args.label_smoothing, class_weight=args.class_weight,
        dropout=args.dropout, reduce_lr_patience=patience, time_budget_s=parse_duration(args.time_budget),
        early_stopping_patience=args.early_stopping, seed=args.seed, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, group_by=group_by_value(args.group_by),
        resize=args.resize, augment=tuple(a.strip() for a in args.augment.split(",") if a.strip()),
        cache=args.cache, feature_cache=not args.no_feature_cache,
        bands=parse_band_list(args.bands), rgb_bands=parse_band_list(args.rgb), slice_axis=args.slice_axis,
        slices=args.slices, study_aggregate=args.study_aggregate,
    ).validate()


def show_fine_tune(args: argparse.Namespace) -> int:
    """``--show-fine-tune``: the layers the chosen depth retrains and their weights (from the measured table)."""
    spec = get(args.backbone or DEFAULT_BACKBONE)
    depth = fine_tune_depth_of(args)
    plan = table_plan(spec, depth)
    print(f"{spec.label}, fine-tune depth \"{plan.depth}\": {plan.summary()}")
    for name in plan.layers:
        print(f"  {name}")
    return 0


def _train_argv() -> list[str]:
    """This command's ``train`` arguments, for the local workers to run again."""
    return sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else sys.argv[1:]


def _train_here(config: TrainConfig, split, out: str, cluster: dict | None, progress, token):
    """Train into ``out`` on the chief; elsewhere into a temporary folder that is removed afterwards."""
    where = distributed.worker_out_dir(out, cluster)
    if cluster is not None:
        role = "chief, writes " + out if distributed.is_chief(cluster) else "writes a temporary copy"
        print(f"Worker {cluster['task']['index']} of {distributed.task_count(cluster)} ({role}): "
              "MultiWorkerMirroredStrategy", flush=True)
    try:
        return train(config, split, where, sink=progress, cancel=token)
    finally:
        if where != Path(out):
            shutil.rmtree(where.parent, ignore_errors=True)


def default_backbone_and_weights(backbone: str | None, weights: str | None,
                                 sink=None) -> tuple[str, str]:
    """The backbone and weights to train when options were left out, saying so when it is not the plain default.

    ``small_cnn`` (and any backbone without pretrained weights) needs no ``--weights``. A pretrained
    backbone defaults to ImageNet weights. Only when *both* were left out and the default backbone's
    weights neither load offline nor download does it fall back to the small CNN from scratch, and
    it prints what it chose and why (an explicit ``--backbone`` is never changed).
    """

    spec = get(backbone or DEFAULT_BACKBONE)
    if weights is not None:
        return spec.key, weights
    if not spec.has_pretrained_weights or backbone is not None or offline_status(spec).available:
        return spec.key, spec.default_weights
    print(f"{spec.label}'s ImageNet weights are not on this computer: downloading them.", file=sys.stderr)
    try:
        download_weights(spec, sink=sink or TerminalProgress())
        return spec.key, spec.default_weights
    except WeightsUnavailable as exc:
        print(f"note: {exc.message}\n  So CNN Studio trains the Small CNN from scratch instead (it needs no "
              f"weights, but learns less from few images). To train {spec.label}: {exc.hint}", file=sys.stderr)
        fallback = get(FALLBACK_BACKBONE)
        return fallback.key, fallback.default_weights


def _finish(result) -> int:
    """The last lines of a run: a plain success only when the review found nothing to doubt."""
    cal = result.review.get("calibration") or {}
    if cal.get("applied"):
        print(f"calibrated: temperature {cal['temperature']:.3g} lowers the validation calibration error "
              f"from {cal['ece_before']:.3f} to {cal['ece_after']:.3f}")
    if result.warnings:
        for w in result.warnings:
            print(f"warning: {w}")
        print(f"finished with warnings: the model is saved in {result.best_model}, but do not trust it yet "
              "(see the warnings above)")
        return 0
    print(f"done: best model {result.best_model}")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    """Continue a run folder; 0 when done, 2 when it cannot be resumed, 130 when stopped again."""

    with cancel_on_interrupt() as token:
        try:
            result = resume(args.run_dir, sink=TerminalProgress(), cancel=token, more_epochs=args.more_epochs)
        except Cancelled:
            print(f"stopped again; continue with: cnn-studio resume {args.run_dir}", file=sys.stderr)
            return 130
    return _finish(result)
