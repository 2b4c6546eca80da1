"""Screenshots of every step of the real app on the sample dataset → docs/screenshots/<n>_<step>.png.

Walks Data → Model → Train (small CNN, a few epochs) → Evaluate → Classify (a few sample images)
→ Export, waiting for each step's worker to finish, and grabs the window.

    xvfb-run -s "-screen 0 1400x900x24" python tools/screenshots.py [--out docs/screenshots] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _wait_idle(app, settle_s: float = 0.6, timeout_s: float = 600) -> None:
    """Process events until no engine task has been running for ``settle_s`` seconds."""
    from cnn_studio.ui.workers import live_tasks

    t_end = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < t_end:
        app.processEvents()
        if live_tasks():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle_s:
            return
        time.sleep(0.02)
    raise TimeoutError("a task did not finish in time")


def _tab(tabs, title: str) -> None:
    """Show the tab named ``title`` (indices move when tabs are added)."""
    for i in range(tabs.count()):
        if tabs.tabText(i) == title:
            tabs.setCurrentIndex(i)
            return
    raise KeyError(title)


def _random_labels(sample: Path, dest: Path, seed: int = 0) -> Path:
    """A copy of the sample dataset with every image moved to a random class folder: nothing to learn."""
    import random
    import shutil

    classes = sorted(d.name for d in sample.iterdir() if d.is_dir())
    files = sorted(p for d in sample.iterdir() if d.is_dir() for p in d.iterdir() if p.is_file())
    rng = random.Random(seed)
    for c in classes:
        (dest / c).mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        shutil.copy(f, dest / rng.choice(classes) / f"{i}_{f.name}")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--skip-chance", action="store_true", help="leave out the random-label run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CNN_STUDIO_HOME", tempfile.mkdtemp(prefix="cnn-studio-shots-"))

    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app, create_window

    from cnn_studio.data.sample import sample_dataset_path

    messages.BLOCKING = False
    app = create_app([])
    window = create_window(None, open_sample=True)
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

    shot(1, "data")
    window.go_to(1)
    window.session.set_config(window.session.config.replace(
        backbone="small_cnn", weights="none", image_size=32, epochs=args.epochs, fine_tune_epochs=0, batch_size=32))
    shot(2, "model")
    window.start_training()
    _wait_idle(app, settle_s=1.0)
    window.train_page.curves.refresh()
    shot(3, "train")
    if window.session.run_dir is None:
        print("training did not produce a run; stopping", file=sys.stderr)
        return 1
    window.go_to(3)
    evaluate = window.evaluate_page
    _wait_idle(app)
    _tab(evaluate.tabs, "Confusion matrix")  # with one cell opened
    if evaluate.matrix.rowCount() > 1 and evaluate.metrics is not None:  # the biggest mistake cell
        cm = evaluate.metrics.confusion
        _n, true, pred = max((cm[i][j], i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j)
        evaluate.matrix.setCurrentCell(true, pred)
        evaluate._on_matrix_cell_chosen(true, pred)
    shot(4, "evaluate")
    _tab(evaluate.tabs, "Confidence (calibration)")
    shot(13, "calibration")
    _tab(evaluate.tabs, "Robustness")
    evaluate.run_robustness()
    shot(7, "robustness")
    _tab(evaluate.tabs, "Architecture")
    shot(8, "architecture")
    window.go_to(4)
    classify = window.classify_page
    sample = sample_dataset_path()
    images = [p for d in sorted(sample.iterdir()) if d.is_dir() for p in sorted(d.glob("*.png"))[:3]]
    classify.add_paths(images)
    _wait_idle(app)
    classify.heat_toggle.setChecked(True)
    _wait_idle(app)
    classify._on_image_activated(str(images[0]))
    _wait_idle(app)
    shot(5, "classify")
    inspect = classify.inspect
    if inspect.layer_table.rowCount() > 2:
        inspect.layer_table.selectRow(2)
        _wait_idle(app)
    grab_inspect = out / "9_inspect.png"
    from PySide6.QtWidgets import QScrollArea

    scroll = inspect.findChild(QScrollArea)
    (scroll.widget() if scroll is not None else inspect).grab().save(str(grab_inspect))  # the whole panel
    print(f"saved {grab_inspect}", flush=True)
    window.go_to(5)
    page = window.export_page
    if hasattr(page, "checks"):
        for key, box in page.checks.items():
            box.setChecked(key in ("keras", "tflite"))
        page.quantization.setCurrentIndex(page.quantization.findData("int8_full"))
        page.export()
    shot(6, "export")
    if not args.skip_chance:  # a run on random labels: the warnings a model that learned nothing gets
        window.session.dirty = False
        noisy = _random_labels(sample, Path(tempfile.mkdtemp(prefix="cnn-studio-random-")) / "digits_shuffled")
        window.go_to(0)
        window.data_page.open_dataset(noisy)
        _wait_idle(app)
        window.session.set_config(window.session.config.replace(
            backbone="small_cnn", weights="none", image_size=32, epochs=args.epochs, fine_tune_epochs=0,
            batch_size=32))
        window.go_to(2)
        window.start_training()
        _wait_idle(app, settle_s=1.0)
        window.train_page.curves.refresh()
        shot(14, "train_chance")
        window.go_to(3)
        _wait_idle(app)
        _tab(window.evaluate_page.tabs, "Per class")
        shot(15, "evaluate_chance")
    window.session.dirty = False
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
