"""Event-loop latency while training: a 10 ms heartbeat QTimer in the real app window (offscreen).

Opens the main window on the bundled sample dataset, trains the small CNN for a few epochs from
the Train step and records the gap between heartbeats. Target: max gap < 100 ms (the window never
freezes), p99 well under that.

    python bench/ui_latency.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args(argv)

    import numpy as np
    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app, create_window
    from cnn_studio.ui.workers import cancel_all_and_wait
    from PySide6.QtCore import QEventLoop, QTimer

    messages.BLOCKING = False
    app = create_app([])
    window = create_window(None, open_sample=True)
    window.show()
    loop = QEventLoop()
    window.data_page.check_finished.connect(lambda ok: loop.quit())
    loop.exec()
    window.session.set_config(window.session.config.replace(
        backbone="small_cnn", weights="none", image_size=args.image_size, epochs=args.epochs,
        fine_tune_epochs=0, batch_size=32))

    gaps: list[float] = []
    phases: dict[str, list[float]] = {"before first epoch": [], "training": []}
    last = [time.perf_counter()]
    state = {"phase": "before first epoch"}

    def beat() -> None:
        now = time.perf_counter()
        gap = (now - last[0]) * 1000
        gaps.append(gap)
        phases[state["phase"]].append(gap)
        last[0] = now

    from cnn_studio import events as ev

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)
    done = QEventLoop()
    window.train_page.training_finished.connect(lambda status: done.quit())
    t0 = time.perf_counter()
    last[0] = t0
    heartbeat.start()
    window.start_training()
    window.train_page.task.event.connect(
        lambda e: state.__setitem__("phase", "training") if isinstance(e, ev.EpochStarted) else None)
    done.exec()
    heartbeat.stop()
    seconds = time.perf_counter() - t0
    cancel_all_and_wait(10000)
    n_points = window.train_page.curves.n_epochs

    print(f"trained small_cnn on the sample for {args.epochs} epoch(s) in {seconds:.1f} s "
          f"({n_points} epoch points plotted)")
    print(f"{'phase':<20} {'beats':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    for name, values in (*phases.items(), ("all", gaps)):
        if values:
            a = np.asarray(values)
            print(f"{name:<20} {len(a):>6} {np.median(a):>10.1f} {np.percentile(a, 99):>8.1f} {a.max():>8.1f}")
    worst = max(gaps) if gaps else float("nan")
    print(f"max gap {worst:.1f} ms (target < 100 ms)")
    window.session.dirty = False
    window.close()
    app.processEvents()
    return 0 if worst < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
