"""``cnn-studio explain`` (Grad-CAM, feature maps, layers, architecture) and ``cnn-studio robustness``.

MODEL is a run folder or a ``.keras`` file; class names come from the run's labels.txt (or one
beside the .keras file). Results go to ``--out`` (PNG, written atomically); text to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

from PIL import Image

from cnn_studio.backbones.classifier import input_size_of
from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled
from cnn_studio.core.errors import ConfigError, RunError
from cnn_studio.core.fsutil import atomic_path
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.bands import read_run_bands
from cnn_studio.data.pipeline import load_image
from cnn_studio.explain.architecture import architecture_table, format_architecture
from cnn_studio.explain.feature_maps import feature_maps, grid, list_feature_layers
from cnn_studio.explain.gradcam import explain_file
from cnn_studio.explain.robustness import run_robustness
from cnn_studio.predict.predictor import Classifier, check_model_input
from cnn_studio.runs.checks import check_model, model_facts
from cnn_studio.runs.run_folder import load_model, looks_like_run, open_run, read_labels
from cnn_studio.training.config import parse_band_list


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``explain`` and ``robustness`` subcommands."""
    p = subparsers.add_parser(
        "explain", help="show why a model chose a class (Grad-CAM), or what its layers see",
        description="Draw a Grad-CAM heat map over IMAGE (default), a grid of one layer's feature "
                    "maps (--layer), list the layers (--list-layers) or print the architecture table.")
    p.add_argument("model", help="run folder or .keras model file")
    p.add_argument("image", nargs="?", help="image file to explain")
    p.add_argument("--out", type=Path, help="PNG to write (heat map overlay, or feature-map grid with --layer)")
    p.add_argument("--class", dest="class_name", metavar="NAME",
                   help="class to explain (default: the predicted class)")
    p.add_argument("--method", choices=("gradcam", "gradcam++"), default="gradcam")
    p.add_argument("--alpha", type=float, default=0.4, help="heat-map opacity from 0 to 1 (default 0.4)")
    p.add_argument("--colormap", choices=("jet", "inferno", "viridis"), default="jet")
    p.add_argument("--rgb", default="", metavar="R,G,B",
                   help="multi-band images: the three bands (counted from 1) the heat map is drawn over as red, "
                        "green, blue (default: the run's RGB bands)")
    p.add_argument("--layer", metavar="NAME", help="write this layer's feature maps instead (see --list-layers)")
    p.add_argument("--channels", type=int, default=16, metavar="N", help="feature maps to show (default 16)")
    p.add_argument("--list-layers", action="store_true", help="print the layers that have feature maps")
    p.add_argument("--architecture", action="store_true", help="print every layer with its parameter count")
    p.set_defaults(run=run_explain)

    r = subparsers.add_parser(
        "robustness", help="measure accuracy under noise, blur, JPEG, brightness and FGSM attacks",
        description="Test a trained run on its held-out images under everyday corruptions and adversarial "
                    "(FGSM) noise; writes robustness.json and plots into the run folder.")
    r.add_argument("run_dir", help="training run folder")
    r.add_argument("--subset", choices=("auto", "test", "val", "train"), default="auto",
                   help="images to test: auto = test, else val, else train")
    r.add_argument("--max-images", type=int, default=200, metavar="N", help="at most N images (default 200)")
    r.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    r.set_defaults(run=run_robustness_cli)


def _model_source(path: str) -> tuple[Path, Path | None, int | None, str, tuple[str, ...]]:
    """(model file, run folder or None, image size, resize policy, class names) for MODEL."""

    p = Path(path).expanduser()
    config_dir = p if p.is_dir() else p.parent
    if looks_like_run(RunLayout(config_dir)):  # one that lost config.json is told so by open_run
        info = open_run(config_dir)
        model_path = p if p.is_file() else info.model_path
        return model_path, info.root, info.image_size, info.config.resize, info.class_names
    if not p.is_file():
        raise RunError(f"No model at {p}.", "Give a run folder or a .keras file.")
    labels = RunLayout(p.parent).labels
    return p, None, None, "stretch", read_labels(labels) if labels.exists() else ()


def _check_made_by_studio(path: Path) -> None:
    """RunError when the .keras file is not a CNN Studio classifier (Grad-CAM needs its backbone and size)."""
    hint = "Give a run folder, or a .keras file CNN Studio trained or exported (--architecture lists any model)."
    try:
        facts = model_facts(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise RunError(f"{path} cannot be read as a Keras model ({exc}).", hint) from exc
    check_model(path, facts, hint)


def _class_index(name: str | None, class_names: tuple[str, ...]) -> int | None:
    if name is None:
        return None
    if name in class_names:
        return class_names.index(name)
    if name.isdigit():
        return int(name)
    raise ConfigError(f"Class: expected one of {', '.join(class_names) or '(no labels.txt found)'}, received {name!r}.")


def _save_png(path: Path, image) -> None:

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image, "RGB").save(tmp, format="PNG")


def run_explain(args: argparse.Namespace) -> int:
    """Run ``cnn-studio explain``; return the exit code."""

    model_path, run_root, size, resize, class_names = _model_source(args.model)
    if run_root is None and not (args.architecture or args.list_layers):
        _check_made_by_studio(model_path)  # a run's own model is checked by load_model
    model = load_model(model_path)
    if args.architecture:
        print(format_architecture(architecture_table(model)))
        return 0
    if args.list_layers:
        for info in list_feature_layers(model):
            shape = "x".join("?" if d is None else str(d) for d in info.output_shape[1:])
            extra = ""
            if info.kernel_size:
                extra = f"  kernel {info.kernel_size[0]}x{info.kernel_size[1]}, stride {info.strides[0]}, {info.padding}"
            print(f"{info.name:40s} {info.kind:10s} {shape:>14s}{extra}")
        return 0
    if not args.image or args.out is None:
        raise ConfigError("explain needs an IMAGE and --out PNG (or --list-layers / --architecture).",
                          "Example: cnn-studio explain runs/leaves photo.jpg --out heatmap.png")

    size = int(size or input_size_of(model))
    bands = read_run_bands(model_path)
    check_model_input(args.image, int(model.inputs[0].shape[-1]), pictures_only=run_root is not None and bands is None)
    if args.layer:  # a large picture is reduced while it is read, as for Grad-CAM and predict
        fm = feature_maps(model, load_image(args.image, size, resize, reduce=True), args.layer,
                          max_channels=args.channels)
        _save_png(args.out, grid(fm.maps))
        print(f"{fm.layer}: {len(fm.maps)} of {fm.total_channels} feature maps -> {args.out}")
        return 0

    rgb = parse_band_list(args.rgb) or None
    if rgb is not None and len(rgb) != 3:
        raise ConfigError(f"--rgb: expected three band numbers (red, green, blue), received {args.rgb!r}.",
                          "For example --rgb 4,3,2 (Sentinel-2 true colour).")
    _, cam, picture = explain_file(Classifier(model, class_names, size, resize, bands), args.image,
                                   class_index=_class_index(args.class_name, class_names), method=args.method,
                                   alpha=args.alpha, colormap=args.colormap, rgb=rgb)
    _save_png(args.out, picture)
    label = class_names[cam.class_index] if cam.class_index < len(class_names) else str(cam.class_index)
    print(f"{label} ({cam.class_prob:.1%}) - {cam.method} at {cam.layer_name} -> {args.out}")
    return 0


def run_robustness_cli(args: argparse.Namespace) -> int:
    """Run ``cnn-studio robustness``; return the exit code."""

    try:
        with cancel_on_interrupt() as token:
            report = run_robustness(args.run_dir, subset=args.subset, max_images=args.max_images,
                                    sink=TerminalProgress(quiet=args.json), cancel=token)
    except Cancelled:
        print("robustness check cancelled; nothing was written to robustness.json", file=sys.stderr)
        return 130
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        print()
        return 0
    print(f"Robustness on {report.n_images} {report.subset} images: clean accuracy {report.clean_accuracy:.1%}")
    current = None
    for row in report.rows:
        if row["perturbation"] != current:
            current = row["perturbation"]
            print(f"  {current.replace('_', ' ')} ({report.units.get(current, '')}):")
        print(f"    {row['level']:>8g}  {row['accuracy']:.1%}")
    print(f"  ({report.epsilon_note})")
    for note in report.notes:
        print(f"  {note}")
    for ex in report.examples:
        print(f"  FGSM eps {ex.epsilon:g}: {Path(ex.path).name} {ex.true} -> {ex.adv_pred}  [{ex.image}]")
    print(f"Saved robustness.json and {report.plot} in {args.run_dir}")
    return 0
