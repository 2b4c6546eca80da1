"""Event-loop latency on the Classify step: classify the 240 sample pictures, then their Grad-CAM maps.

Trains the small CNN on the bundled sample once (3 epochs, 32 px, in a child process, not
measured), then for each mode
opens a fresh Classify page, drops every sample picture on it, turns the heat maps on, and records
the gaps of a 10 ms heartbeat QTimer until all pictures have their overlay:

* ``server``: the model in its own process (:func:`cnn_studio.explain.views.open_model`, a long-lived child of :mod:`cnn_studio.core.child_process`), as the app runs it;
* ``in-process``: the model loaded in the app's process (``CNN_STUDIO_IN_PROCESS=1``), the baseline,
  measured second so that it pays TensorFlow's import here, as the first drop in a session does.

Target: max gap < 100 ms (the window never freezes).

    python bench/classify_latency.py
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    import numpy as np
    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app
    from cnn_studio.ui.pages.classify_page import ClassifyPage
    from cnn_studio.ui.session import StudioSession
    from heartbeat import HEADER, Heartbeat, stats

    from cnn_studio.core.child_process import IN_PROCESS_ENV, run_in_child
    from cnn_studio.data.index import scan
    from cnn_studio.data.sample import sample_dataset_path
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig

    messages.BLOCKING = False
    app = create_app([])
    sample = sample_dataset_path()
    run = os.path.join(tempfile.mkdtemp(prefix="cnn-studio-bench-"), "run")
    # trained in a child, so this process has not imported TensorFlow when the measuring starts
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, epochs=3, fine_tune_epochs=0, batch_size=32)
    run_in_child("cnn_studio.training.trainer:train", cfg, make_split(scan(sample), val_fraction=0.2), run)
    pictures = sorted(str(p) for p in sample.rglob("*.png"))

    def measure(in_process: bool) -> tuple[float, np.ndarray]:
        if in_process:
            os.environ[IN_PROCESS_ENV] = "1"
        else:
            os.environ.pop(IN_PROCESS_ENV, None)
        session = StudioSession()
        session.set_run(run)
        page = ClassifyPage(session)
        page.show()
        heartbeat = Heartbeat(10)
        t0 = time.perf_counter()
        heartbeat.start()
        page.add_paths(pictures)
        page.heat_toggle.setChecked(True)
        while page.busy() or len(page.heatmaps) < len(pictures):
            app.processEvents()
            time.sleep(0.002)
        heartbeat.stop()
        seconds = time.perf_counter() - t0
        page.shutdown()
        page.deleteLater()
        return seconds, heartbeat.every_gap()

    # the server first: in-process then pays TensorFlow's import and the model's loading in this
    # process, as an app's first drop does
    results = {mode: measure(mode == "in-process") for mode in ("server", "in-process")}
    print(f"classify {len(pictures)} sample pictures + their Grad-CAM maps; heartbeat every 10 ms")
    print(f"{'model runs':<12} {HEADER} {'seconds':>8}")
    for mode, (seconds, gaps) in results.items():
        print(f"{mode:<12} {stats(gaps)} {seconds:>8.1f}")
    base, ours = results["in-process"][1].max(), results["server"][1].max()
    print(f"max gap: model process {ours:.1f} ms vs in-process {base:.1f} ms; target < 100 ms")
    return 0 if ours < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
