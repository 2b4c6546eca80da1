"""``cnn-studio backbones``: the backbones, their sizes, speed, when to pick each, and weights availability."""

from __future__ import annotations

import argparse
import json

from cnn_studio.backbones.registry import all_specs
from cnn_studio.backbones.weights import weights_status
from cnn_studio.backbones.weights_store import offline_status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backbones", help="list the backbones and whether their ImageNet weights are cached",
                       description="List the backbones CNN Studio can fine-tune, with input size, parameters, "
                       "speed, when to pick each, and whether its ImageNet weights are available offline.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for spec in all_specs():
        st = weights_status(spec)
        loads = offline_status(spec)
        rows.append({"key": spec.key, "label": spec.label, "family": spec.family, "input_size": spec.input_size,
                     "min_size": spec.min_size, "params_millions": spec.params_millions, "speed": spec.speed,
                     "weights": "cached" if st.available else ("n/a" if st.source == "not_applicable" else "not cached"),
                     "weights_path": st.path, "weights_file": spec.weights_file_notop,
                     "available_offline": loads.available, "offline_source": loads.source,
                     "when_to_pick": spec.when_to_pick})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'key':<20}{'input':>6}{'params':>9}  {'speed':<7}{'imagenet':<12}when to pick")
    for r in rows:
        print(f"{r['key']:<20}{r['input_size']:>6}{r['params_millions']:>8.1f}M  {r['speed']:<7}{_offline(r):<12}"
              f"{r['when_to_pick']}")
    print("\nimagenet: 'offline' = the weights load without internet (CNN Studio's weights or Keras' cache).\n"
          "Without internet: fetch the file elsewhere, then `cnn-studio weights import FILE` "
          "(see `cnn-studio weights list`).")
    return 0


def _offline(row: dict) -> str:
    if row["weights"] == "n/a":
        return "n/a"
    return "offline" if row["available_offline"] else "not here"
