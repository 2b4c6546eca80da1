"""Event-loop latency while training: a 10 ms heartbeat QTimer in the real app window (offscreen).

Opens the main window on the bundled sample dataset, trains the small CNN for a few epochs from
the Train step and records the gap between heartbeats — once with TensorFlow in the app's own
process (the baseline) and once the way the app trains, in a child process
(:mod:`cnn_studio.core.child_process`). Target: max gap < 50 ms with the child (the window never
freezes). ``busy ms`` is the most CPU time the GUI thread itself used within one gap: the app's own
work, without the time it waited for a core on a loaded machine (see the load average printed).

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
    parser.add_argument("--modes", default="in-process,child",
                        help="comma-separated: in-process (TensorFlow in the app's process) and/or child")
    args = parser.parse_args(argv)

    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app, create_window
    from cnn_studio.ui.workers import cancel_all_and_wait
    from heartbeat import HEADER, Heartbeat, stats
    from PySide6.QtCore import QEventLoop

    messages.BLOCKING = False
    load_before = os.getloadavg()[0]
    app = create_app([])
    window = create_window(None, open_sample=True)
    window.show()
    loop = QEventLoop()
    window.data_page.check_finished.connect(lambda ok: loop.quit())
    loop.exec()
    window.session.set_config(window.session.config.replace(
        backbone="small_cnn", weights="none", image_size=args.image_size, epochs=args.epochs,
        fine_tune_epochs=0, batch_size=32))

    from cnn_studio.core import events as ev
    from cnn_studio.core.child_process import IN_PROCESS_ENV

    def measure(in_process: bool) -> tuple[float, Heartbeat]:
        """Train once (in the app's process or in a child) and record heartbeat gaps per phase."""
        if in_process:
            os.environ[IN_PROCESS_ENV] = "1"
        else:
            os.environ.pop(IN_PROCESS_ENV, None)
        heartbeat = Heartbeat(10, phase="before first epoch")
        done = QEventLoop()
        window.train_page.training_finished.connect(done.quit)
        t0 = time.perf_counter()
        heartbeat.start()
        window.start_training()
        window.train_page.task.event.connect(
            lambda e: setattr(heartbeat, "phase", "training") if isinstance(e, ev.EpochStarted) else None)
        done.exec()
        heartbeat.stop()
        window.train_page.training_finished.disconnect(done.quit)
        cancel_all_and_wait(10000)
        return time.perf_counter() - t0, heartbeat

    results = {}
    for mode in args.modes.split(","):
        results[mode] = measure(mode == "in-process")
    print(f"small_cnn on the sample, {args.epochs} epoch(s) at {args.image_size} px; heartbeat every 10 ms")
    print(f"{'training runs':<14} {'phase':<20} {HEADER} {'busy ms':>8} {'seconds':>8}")
    worst_child = float("nan")
    for mode, (seconds, heartbeat) in results.items():
        every = heartbeat.every_gap()
        for name, values, busy in (*((n, g, heartbeat.busy[n]) for n, g in heartbeat.gaps.items()),
                                   ("all", every, heartbeat.every_busy())):
            if len(values):
                print(f"{mode:<14} {name:<20} {stats(values)} {max(busy):>8.1f} "
                      f"{f'{seconds:.1f}' if name == 'all' else '':>8}")
        if mode == "child":
            worst_child = every.max() if len(every) else float("nan")
    if "child" in results and "in-process" in results:
        a = results["in-process"][1].every_gap().max()
        print(f"max gap: child process {worst_child:.1f} ms vs in-process {a:.1f} ms "
              f"({a / max(worst_child, 1e-9):.1f}x smaller); target < 50 ms")
    print(f"load average {load_before:.2f} → {os.getloadavg()[0]:.2f} (2 cores: above 2, other work waited for a core)")
    window.session.dirty = False
    window.close()
    app.processEvents()
    return 0 if worst_child < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
