"""GUI soak: the real main window trains the small CNN again and again while its live curves repaint.

Scenarios, each a real training in the app's child process with the live curves drawn:

* ``finish``   — start → all epochs → finished;
* ``stop``     — start → Stop after the first epoch → Continue training → finished;
* ``close``    — start → close the window while it trains (the app stops the run and quits).

Meanwhile a timer forces a full repaint of the curves every few milliseconds (``--repaint-ms``):
pushes the arrays again with ``setData`` and renders the widget, thousands of times a run. A
defective Qt binding (PySide6 6.12.0 with Python 3.11: "Fatal Python error: none_dealloc") aborts
the process here within seconds. Exit status 0 means every scenario ended as expected and nothing
crashed; 1 means a scenario did not (the reason is printed); a crash gives the crash's own status.

    QT_QPA_PLATFORM=offscreen python tools/gui_soak.py --cycles 1 --epochs 3

Used by tests/ui/test_soak.py (one cycle, in CI) and bench/soak.py (many, printing crashes/runs).
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SCENARIOS = ("finish", "stop", "close")


class Soak:
    """Drives one main window through the scenarios, counting repaints."""

    def __init__(self, app, epochs: int, repaint_ms: int, timeout_s: float) -> None:
        from cnn_studio.ui.app import create_window
        from PySide6.QtCore import QTimer

        self.app = app
        self.timeout_s = timeout_s
        self.repaints = 0
        self.window = create_window(None, open_sample=True)
        self.window.resize(1280, 800)
        self.window.show()
        self.wait(lambda: self.window.session.split is not None and not self.window.data_page.busy, "the sample scan")
        self.window.session.set_config(self.window.session.config.replace(
            backbone="small_cnn", weights="none", image_size=32, epochs=epochs, fine_tune_epochs=0, batch_size=16))
        self.page = self.window.train_page
        self.finished: list[str] = []
        self.page.training_finished.connect(self.finished.append)
        self.hammer = QTimer()
        self.hammer.setInterval(repaint_ms)
        self.hammer.timeout.connect(self.repaint)
        self.hammer.start()

    def repaint(self) -> None:
        curves = self.page.curves
        curves.refresh(everything=True)  # push the arrays again, as new points would
        curves.grab()  # render both plots, axes and symbols included
        self.repaints += 1

    def wait(self, predicate, what: str) -> None:
        end = time.monotonic() + self.timeout_s
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for {what}")
            self.app.processEvents()
            time.sleep(0.005)

    def train(self, start) -> str:
        """Start (or continue) a training with ``start`` and wait for its end; its status."""
        n = len(self.finished)
        if not start():
            raise RuntimeError(f"the Train step refused to start: {self.page.status.text()}")
        self.wait(lambda: len(self.finished) > n, "training to end")
        if self.finished[-1] == "failed":
            print(f"  the Train step says: {self.page.status.text()}", flush=True)
        return self.finished[-1]

    def _start(self) -> bool:
        self.window.start_training()  # what Ctrl+Return does
        return self.page.is_training

    def first_epoch(self) -> None:
        self.wait(lambda: self.page.curves.n_epochs >= 1 or not self.page.is_training, "the first epoch")

    def finish(self) -> str:
        status = self.train(self._start)
        return "ok" if status == "completed" else f"ended {status!r}, expected 'completed'"

    def stop(self) -> str:
        def start_then_stop() -> bool:
            if not self._start():
                return False
            self.first_epoch()
            self.page.stop()
            return True

        status = self.train(start_then_stop)
        if status != "cancelled":
            return f"Stop ended {status!r}, expected 'cancelled'"
        if not self.page.resume_button.isVisible():
            return "no 'Continue training' after Stop"
        status = self.train(self.page.resume)
        return "ok" if status == "completed" else f"Continue ended {status!r}, expected 'completed'"

    def close(self) -> str:
        if not self._start():
            return f"the Train step refused to start: {self.page.status.text()}"
        self.first_epoch()
        self.window.session.dirty = False  # no "save changes?" question in a scripted run
        closed = self.window.close()
        self.hammer.stop()
        if not closed:
            return "the window did not close while training"
        self.wait(lambda: not self.page.is_training, "the stopped run to end")
        return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1, help="how many times to run the finish and stop scenarios")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repaint-ms", type=int, default=5, help="forced curve repaint interval")
    parser.add_argument("--min-repaints", type=int, default=2000,
                        help="before the last scenario, keep repainting the trained curves until this many")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds any one wait may take")
    args = parser.parse_args(argv)
    faulthandler.enable()
    os.environ.setdefault("CNN_STUDIO_HOME", tempfile.mkdtemp(prefix="cnn-studio-soak-"))

    from cnn_studio.ui import messages
    from cnn_studio.ui.app import create_app

    messages.BLOCKING = False
    app = create_app([])
    soak = Soak(app, args.epochs, args.repaint_ms, args.timeout)
    plan = [s for _ in range(args.cycles) for s in ("finish", "stop")] + ["close"]
    failures = 0
    t0 = time.monotonic()
    for i, scenario in enumerate(plan, 1):
        if scenario == "close":
            while soak.repaints < args.min_repaints:  # the curves of the last run, drawn again and again
                soak.repaint()
                app.processEvents()
        t = time.monotonic()
        try:
            outcome = getattr(soak, scenario)()
        except (TimeoutError, RuntimeError) as exc:
            outcome = str(exc)
        failures += outcome != "ok"
        print(f"run {i}/{len(plan)} {scenario:<7} {outcome:<4} {time.monotonic() - t:6.1f} s, "
              f"{soak.repaints} repaints so far", flush=True)
    runs = len(plan) + sum(s == "stop" for s in plan)  # a stop scenario starts two trainings
    print(f"soak: {runs} training starts, {len(plan)} scenarios, {failures} failed, {soak.repaints} repaints, "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
