"""``cnn-studio weights``: list, import and download the pretrained weights CNN Studio keeps for itself.

The store lives in the app's data folder (``CNN_STUDIO_HOME`` overrides); see
:mod:`cnn_studio.backbones.weights_store`. ``import`` copies the file (the original stays where it
is); ``download`` fetches Keras' published file with a progress line (Ctrl+C cancels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cnn_studio.backbones.registry import all_specs, get
from cnn_studio.backbones.weights_store import (
    download_weights,
    import_weights,
    offline_status,
    store_dir,
    stored,
)
from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled
from cnn_studio.core.tf_runtime import import_tensorflow


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, import or download pretrained backbone weights",
                       description="CNN Studio keeps its own copy of pretrained weights, which only you delete. "
                       "`import` accepts Keras' original downloads (.h5), .weights.h5 and .keras files: on a "
                       "computer without internet, fetch the file elsewhere and import it here.")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    ls = wsub.add_parser("list", help="every backbone and whether its ImageNet weights load offline")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(run=run_list)
    im = wsub.add_parser("import", help="copy a weights file into CNN Studio's weights (checked first)")
    im.add_argument("file", metavar="FILE", help=".h5 (Keras' download), .weights.h5 or .keras")
    im.add_argument("--backbone", default=None, metavar="KEY",
                    help="the backbone it belongs to (default: recognised from the file)")
    im.set_defaults(run=run_import)
    dl = wsub.add_parser("download", help="download a backbone's ImageNet weights (needs internet)")
    dl.add_argument("backbone", metavar="KEY", help="backbone key, see `cnn-studio backbones`")
    dl.set_defaults(run=run_download)
    p.set_defaults(run=run_list, json=False)


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for spec in all_specs():
        if not spec.has_pretrained_weights:
            continue
        st = offline_status(spec)
        entry = stored(spec)
        rows.append({"key": spec.key, "label": spec.label, "available_offline": st.available, "source": st.source,
                     "path": st.path, "origin": entry.origin if entry else None,
                     "imported_from": entry.source if entry else None, "message": st.message})
    if getattr(args, "json", False):
        print(json.dumps({"store": str(store_dir()), "backbones": rows}, indent=2))
        return 0
    words = {"store": "offline (CNN Studio)", "keras_cache": "offline (Keras cache)", "none": "not here"}
    print(f"{'key':<20}{'imagenet weights':<24}file")
    for r in rows:
        what = words.get(r["source"], r["source"])
        if r["origin"] == "keras-original":
            what += ", Keras original"
        print(f"{r['key']:<20}{what:<24}{r['path'] or ''}")
    print(f"\nCNN Studio's weights: {store_dir()}\n"
          "Add a file: cnn-studio weights import FILE   Download: cnn-studio weights download KEY")
    return 0


def run_import(args: argparse.Namespace) -> int:
    import_tensorflow()  # checking the file loads it into the backbone: TensorFlow's start-up lines go to the log
    with cancel_on_interrupt() as token:
        entry = import_weights(args.file, get(args.backbone) if args.backbone else None, sink=TerminalProgress(), cancel=token)
    if os.path.samefile(entry.path, Path(args.file).expanduser()):  # the store's own file, left as it was
        print(f"{args.file} is already CNN Studio's weights file for {get(entry.backbone).label} ({entry.label}): "
              f"nothing was copied or changed; train with --backbone {entry.backbone} --weights imagenet")
        return 0
    print(f"imported for {get(entry.backbone).label} ({entry.label}): {entry.path}\n"
          f"your file {args.file} was copied and is unchanged; train with --backbone {entry.backbone} "
          "--weights imagenet")
    return 0


def run_download(args: argparse.Namespace) -> int:
    spec = get(args.backbone)
    try:
        with cancel_on_interrupt() as token:
            entry = download_weights(spec, sink=TerminalProgress(), cancel=token)
    except Cancelled:
        print("download cancelled; nothing was kept.", file=sys.stderr)
        return 130
    print(f"downloaded for {spec.label}: {entry.path}")
    return 0
