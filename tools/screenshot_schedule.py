"""Screenshot of the Train step on the automatic schedule: the schedule line, the learning-rate finder's
plot and the curves of a VGG16 run on the sample → docs/screenshots/29_train_schedule.png.

Needs the VGG16 ImageNet weights file (imported into a temporary app data folder first):

    xvfb-run -s "-screen 0 1400x900x24" python tools/screenshot_schedule.py WEIGHTS.h5 [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="vgg16 ImageNet weights without the top (.h5)")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--budget", type=float, default=180.0, help="time budget in seconds")
    args = parser.parse_args(argv)
    os.environ.setdefault("CNN_STUDIO_HOME", tempfile.mkdtemp(prefix="cnn-studio-shots-"))

    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app, create_window
    from screenshots import _wait_idle

    from cnn_studio.backbones.registry import get
    from cnn_studio.backbones.weights_store import import_weights

    import_weights(args.weights, get("vgg16"))
    messages.BLOCKING = False
    app = create_app([])
    window = create_window(None, open_sample=True)
    window.resize(1360, 900)
    window.show()
    _wait_idle(app)
    window.go_to(1)
    window.session.set_config(window.session.config.replace(
        backbone="vgg16", weights="imagenet", image_size=args.image_size, epochs=None, fine_tune_epochs=None,
        learning_rate=None, fine_tune_depth="1 block", time_budget_s=args.budget))
    window.go_to(2)
    window.start_training()
    _wait_idle(app, settle_s=1.0, timeout_s=1200)
    window.train_page.curves.refresh()
    for _ in range(10):
        app.processEvents()
    path = Path(args.out) / "29_train_schedule.png"
    window.grab().save(str(path))
    print(f"saved {path}", flush=True)
    window.session.dirty = False
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
