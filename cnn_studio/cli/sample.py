"""``cnn-studio sample``: where the sample datasets are, making a generated one on first use.

``digits`` is bundled with the app; ``multiband`` (13-band Sentinel-2-like tiles) and ``volumes``
(NIfTI studies) are generated once into ``<app data>/samples`` (:func:`cnn_studio.data.sample.generated_sample`),
the same folders File → Open sample opens in the app. The path is printed on its own line, so
``cnn-studio train "$(cnn-studio sample volumes)" ...`` works.
"""

from __future__ import annotations

import argparse
import sys

from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled
from cnn_studio.data.sample import GENERATED_SAMPLES, generated_sample, sample_dataset_path

KINDS = ("digits", *GENERATED_SAMPLES)


def register(sub: argparse._SubParsersAction) -> None:
    lines = "\n".join(f"  {s.key:<10} {s.description}" for s in GENERATED_SAMPLES.values())
    p = sub.add_parser("sample", help="print the folder of a sample dataset (digits, multiband, volumes), making it if needed",
                       description="Print the folder of a sample dataset, making a generated one the first time.\n\n"
                       "  digits     handwritten digits, bundled with the app\n" + lines,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", nargs="?", default="digits", choices=KINDS, help="which sample (default: digits)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.kind == "digits":
        print(sample_dataset_path())
        return 0
    try:
        with cancel_on_interrupt() as token:
            path = generated_sample(args.kind, sink=TerminalProgress(), cancel=token)
    except Cancelled:
        print("stopped; nothing was kept.", file=sys.stderr)
        return 130
    print(path)
    return 0
