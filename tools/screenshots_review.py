"""Screenshots of the label review queue from the real app: a checker that learned, and one at chance.

Opens the main window, sets the Model step, opens a dataset in the Data step, clicks "Find label
issues…" and grabs the review queue when it opens:

* ``20_review_queue.png``: the sample digits with 6 % of the files in a wrong folder, judged by
  VGG16's frozen features from the offline test weights file (``--weights FILE``; without it the
  Small CNN);
* ``29_review_chance.png``: the sample digits with every file in a random folder (nothing to learn),
  judged by the Small CNN: not better than guessing, so the queue is empty and says why.

    XS_DISPLAY=:107 bash xsession.sh start 1280x800; DISPLAY=:107 python tools/screenshots_review.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CNN_STUDIO_IN_PROCESS", "1")  # the finder in this process: one TensorFlow, less memory
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "bench")]
VGG16 = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser() \
    / "vgg16_imagenet_notop.weights.h5"


def _review(app, window, root: Path, config, out: Path) -> None:
    """Open ``root``, run the check with ``config`` as the Model step's, grab the queue to ``out``."""
    from screenshots import _wait_idle

    window.session.set_config(config)
    page = window.data_page
    page.open_dataset(root)
    _wait_idle(app)
    page.issues_button.click()
    t_end = time.monotonic() + 900
    tools = page.label_tools
    while (tools.label_check is None or tools.label_check.dialog is None) and time.monotonic() < t_end:
        app.processEvents()
        time.sleep(0.05)
    dialog = tools.label_check.dialog
    _wait_idle(app, settle_s=0.5)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    dialog.grab().save(str(out))
    print(f"saved {out}", flush=True)
    dialog.close()
    _wait_idle(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--weights", default=str(VGG16) if VGG16.is_file() else None,
                        help="VGG16 weights file for the normal case (default: the offline test weights)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    os.environ.setdefault("CNN_STUDIO_HOME", tempfile.mkdtemp(prefix="cnn-studio-shots-"))

    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app, create_window
    from label_issues import planted_copy
    from screenshots import _random_labels

    from cnn_studio.data.sample import sample_dataset_path
    from cnn_studio.training.config import TrainConfig

    tmp = Path(tempfile.mkdtemp(prefix="review-shots-"))
    planted_copy("digits", tmp / "digits", 0.06, 0, 0, ())
    noise = _random_labels(Path(sample_dataset_path()), tmp / "random_labels")
    messages.BLOCKING = False
    app = create_app([])
    window = create_window(None, open_sample=False)
    window.resize(1280, 800)
    window.show()
    if args.weights:
        normal = TrainConfig(backbone="vgg16", weights=args.weights, image_size=64)
    else:
        normal = TrainConfig(backbone="small_cnn", weights="none", image_size=32)
    _review(app, window, tmp / "digits", normal, out / "20_review_queue.png")
    _review(app, window, noise, TrainConfig(backbone="small_cnn", weights="none", image_size=32),
            out / "29_review_chance.png")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
