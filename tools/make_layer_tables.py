"""Write resources/layer_tables.json: every backbone built without weights and its layers measured.

    python3 tools/make_layer_tables.py           # rewrite the file
    python3 tools/make_layer_tables.py --check   # exit 1 when the file differs from what would be written

Each backbone is built in a fresh Keras session, so automatic layer names (conv2d_N) do not depend on
what was built before. A few minutes on 2 CPU cores.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "resources" / "layer_tables.json"


def measure():
    import keras

    from cnn_studio.backbones import registry
    from cnn_studio.backbones.classifier import measure_layer_tables

    out = {}
    for key in registry.keys():
        keras.backend.clear_session()
        out.update(measure_layer_tables((key,)))
        print(f"  {key}: {len(out[key][1])} layers", file=sys.stderr)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    from cnn_studio.backbones.layer_tables import render

    text = render(measure())
    if args.check:
        same = TARGET.read_text(encoding="utf-8") == text
        print("layer_tables.json is up to date" if same else "layer_tables.json differs: run the tool")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
