"""``cnn-studio export RUN_DIR --format FMT --out DIR``: write verified exports with labels and a model card.

Each export is reloaded in its own runtime and compared with the trained model before it is put
in place; the result of that check is printed per format. Exit codes: 0 all verified, 2 an export
failed or bad input, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled
from cnn_studio.core.errors import ExportError
from cnn_studio.export.formats import FORMATS, QUANTIZATIONS
from cnn_studio.export.writer import export_model
from cnn_studio.runs.run_folder import load_model, open_run

FORMAT_CHOICES = (*FORMATS, "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand (no TensorFlow import)."""
    p = subparsers.add_parser(
        "export", help="export a trained model (.keras, SavedModel, TFLite, ONNX) with a model card",
        description="Export a run's best model, check that the export gives the same answers as the trained "
                    "model, and write labels.txt and a model card beside it.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder `cnn-studio train --out` created")
    p.add_argument("--format", dest="formats", action="append", choices=FORMAT_CHOICES, required=True,
                   help="format to write (repeat for several, or 'all')")
    p.add_argument("--quantization", choices=QUANTIZATIONS, default=QUANTIZATIONS[0],
                   help="TFLite only: float16 halves the size, int8 (dynamic range) quarters it, int8_full is "
                        "full integer (uint8 inputs and outputs, calibrated on training images) for phones, "
                        "Edge TPU and microcontrollers. Quantized exports are judged by their answers on the "
                        "validation images and refused only when those change materially")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the exports into")
    p.add_argument("--json", action="store_true", help="print the export records as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export and print the verification result per format; return the exit code."""

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder: the exports are written into a folder.",
                          "Give a new or existing folder, e.g. --out exports/; the file was left as it is.")
    keys = list(FORMATS) if "all" in args.formats else list(dict.fromkeys(args.formats))
    if args.quantization != "float32" and "tflite" not in keys:
        raise ExportError(f"--quantization {args.quantization} applies to the tflite format only.",
                          "Add --format tflite, or leave out --quantization.")
    model = load_model(open_run(args.run_dir).model_path)
    records, failed = [], []
    try:
        with cancel_on_interrupt() as token:
            for key in keys:
                q = args.quantization if FORMATS[key].quantizable else "float32"
                try:
                    r = export_model(args.run_dir, key, args.out, quantization=q, sink=TerminalProgress(),
                                     cancel=token, model=model)
                except ExportError as exc:
                    failed.append(key)
                    print(f"{key:<10} {q:<8} FAILED  {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""),
                          file=sys.stdout if not args.json else sys.stderr)
                    continue
                records.append(r)
                if not args.json and r.agreement is not None:
                    print(f"{r.fmt:<10} {r.quantization:<8} verified  {r.notes[0]}; max |diff| "
                          f"{r.max_abs_diff:.2g} (reported)  {r.path}", flush=True)
                elif not args.json:
                    print(f"{r.fmt:<10} {r.quantization:<8} verified  max |diff| {r.max_abs_diff:.2g} <= "
                          f"{r.tolerance:g} on {r.n_checked} images  {r.path}", flush=True)
    except Cancelled:
        print("export cancelled; nothing half-written was left", file=sys.stderr)
        return 130
    if args.json:
        json.dump([r.to_dict() for r in records], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif records:
        print(f"labels: {records[-1].labels_path}\nmodel card: {', '.join(records[-1].card_paths)}")
    if failed:
        print(f"error: {len(failed)} export(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 2
    return 0
