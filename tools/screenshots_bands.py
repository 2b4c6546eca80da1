"""Screenshots of the generated multispectral and MRI samples in the real app → docs/screenshots/21_* … 26_*.

Opens each sample through File → Open sample (made on first use), shows the Data step (the band
picker; the slice settings), trains the small CNN for a few epochs, and grabs the Evaluate and the
Classify steps (13-band tiles with their RGB composite; NIfTI studies answered per study).

    xvfb-run -s "-screen 0 1400x900x24" python tools/screenshots_bands.py [--out docs/screenshots] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _wait_idle(app, settle_s: float = 0.6) -> None:
    """tools/screenshots.py's wait (no engine task for ``settle_s`` s), with room for the longer runs here."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from screenshots import _wait_idle as wait

    wait(app, settle_s=settle_s, timeout_s=900)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--epochs", type=int, default=4, help="epochs on the tiles")
    parser.add_argument("--volume-epochs", type=int, default=20, help="epochs on the MRI slices")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CNN_STUDIO_HOME", tempfile.mkdtemp(prefix="cnn-studio-shots-"))

    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app, create_window

    messages.BLOCKING = False
    app = create_app([])
    window = create_window(None, open_sample=False)
    window.resize(1360, 860)
    window.show()
    _wait_idle(app)

    def shot(n: int, name: str) -> None:
        _wait_idle(app, settle_s=0.3)
        for _ in range(10):
            app.processEvents()
        path = out / f"{n}_{name}.png"
        window.grab().save(str(path))
        print(f"saved {path}", flush=True)

    def train(image_size: int, batch: int, epochs: int) -> bool:
        window.go_to(1)
        window.session.set_config(window.session.config.replace(
            backbone="small_cnn", weights="none", image_size=image_size, epochs=epochs, fine_tune_epochs=0,
            batch_size=batch, learning_rate=3e-3))
        window.start_training()
        _wait_idle(app, settle_s=1.0)
        return window.session.run_dir is not None

    # ---- multispectral tiles
    window.generated_sample_actions["multiband"].trigger()
    _wait_idle(app)
    window.data_page.band_picker.set_checked(tuple(b for b in range(1, 14) if b not in (1, 11)))  # no aerosol (B01), no cirrus (B10)
    window.data_page.band_picker.set_rgb((8, 4, 3))  # false colour: near-infrared as red
    shot(21, "data_multiband")
    if not train(64, 32, args.epochs):
        print("training on the tiles did not produce a run; stopping", file=sys.stderr)
        return 1
    window.go_to(4)
    classify = window.classify_page
    root = Path(window.session.index.root)
    tiles = [p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.glob("*.tif"))[:3]]
    classify.add_paths(tiles)
    _wait_idle(app)
    classify.heat_toggle.setChecked(True)
    _wait_idle(app)
    classify._on_image_activated(str(tiles[-1]))
    _wait_idle(app)
    shot(22, "classify_multiband")

    # ---- MRI volumes
    window.session.set_run(None)
    window.generated_sample_actions["volumes"].trigger()
    _wait_idle(app)
    shot(23, "data_volumes")
    if not train(32, 32, args.volume_epochs):
        print("training on the volumes did not produce a run; stopping", file=sys.stderr)
        return 1
    window.go_to(3)
    _wait_idle(app)
    tabs = window.evaluate_page.tabs
    for i in range(tabs.count()):
        if tabs.tabText(i) == "Per study":
            tabs.setCurrentIndex(i)
    shot(24, "evaluate_volumes")
    window.go_to(4)
    root = Path(window.session.index.root)
    studies = [p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.glob("*.nii.gz"))[:3]]
    classify.add_paths(studies)
    _wait_idle(app)
    classify.heat_toggle.setChecked(True)
    _wait_idle(app)
    classify._on_image_activated(str(studies[-1]))
    _wait_idle(app)
    shot(25, "classify_volumes")
    window.session.dirty = False
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
