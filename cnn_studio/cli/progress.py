"""Render engine events on a terminal: one updating progress line, plus log lines.

Used as the ``sink`` of every long engine call made by the CLI. Writes to stderr so that
``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import TextIO

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken


def _bar(done: int, total: int, width: int = 24) -> str:
    if total <= 0:
        return ""
    frac = min(max(done / total, 0.0), 1.0)
    filled = int(frac * width)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {done}/{total}"


def _fmt_logs(logs: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4f}" for k, v in logs.items() if isinstance(v, (int, float)))


class TerminalProgress:
    """A sink for engine events that draws a progress line (on a TTY) and prints epoch summaries."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_draw = 0.0
        self._line_open = False

    def _line(self, text: str, final: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            if not final and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self._line_open = not final
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _print(self, text: str) -> None:
        if self.quiet:
            return
        if self._line_open:
            self.stream.write("\r\033[K")
            self._line_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: object) -> None:
        if isinstance(event, ev.ScanProgress):
            self._line(f"scanning: {event.files_seen} files, {event.images_found} images")
        elif isinstance(event, ev.ScanFinished):
            self._line(f"scanned: {event.n_images} images in {event.n_classes} classes, "
                       f"{event.n_skipped} skipped", final=True)
        elif isinstance(event, ev.TrainStarted):
            self._print(f"training {event.backbone}: {event.train_images} train / {event.val_images} val "
                        f"images, {event.epochs} epochs, run folder {event.run_dir}")
            if event.precision:
                self._print(event.precision)
        elif isinstance(event, ev.PhaseStarted):
            cache = " (feature cache)" if event.uses_feature_cache else ""
            self._print(f"phase {event.name}: {event.epochs} epochs at lr={event.learning_rate:g}, "
                        f"{event.trainable_layers} trainable layers{cache}")
        elif isinstance(event, ev.BatchEnded):
            self._line(f"epoch {event.epoch + 1} {_bar(event.step, event.steps)} {_fmt_logs(event.logs)} "
                       f"{event.images_per_s:.0f} img/s")
        elif isinstance(event, ev.EpochEnded):
            self._print(f"epoch {event.epoch + 1}/{event.epochs} [{event.phase}] {event.seconds:.1f}s  "
                        f"{_fmt_logs(event.logs)}")
        elif isinstance(event, ev.CheckpointSaved):
            if event.kind == "best":
                self._print(f"  saved best model ({event.monitor}={event.value:.4f}) to {event.path}")
        elif isinstance(event, ev.TrainFinished):
            self._print(f"training {event.status}: {event.epochs_done} epochs; best model {event.best_model}"
                        + (f" - {event.message}" if event.message else ""))
        elif isinstance(event, ev.TaskProgress):
            self._line(f"{event.task}: {_bar(event.done, event.total)} {event.detail}",
                       final=event.done >= event.total > 0)
        elif isinstance(event, ev.StageChanged):
            self._print(f"{event.task}: {event.stage}" + (f" - {event.detail}" if event.detail else ""))
        elif isinstance(event, ev.ExportProgress):
            self._print(f"export {event.fmt}: {event.stage}" + (f" - {event.detail}" if event.detail else ""))
        elif isinstance(event, ev.LogMessage):
            self._print(("" if event.level == "info" else f"{event.level}: ") + event.text)


class cancel_on_interrupt:  # noqa: N801 - used as a context manager, reads like a phrase
    """Context manager: the first Ctrl+C sets a CancelToken (work stops after the current
    batch/file, keeping what is done); a second Ctrl+C interrupts at once.

    Examples
    --------
    >>> with cancel_on_interrupt() as token:  # doctest: +SKIP
    ...     train(config, split, sink=TerminalProgress(), cancel=token)
    """

    def __init__(self) -> None:
        self.token = CancelToken()
        self._previous = None

    def _handler(self, signum, frame):  # noqa: ANN001

        if self.token.cancelled:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.token.cancel()
        sys.stderr.write("\nstopping after the current step (Ctrl+C again to abort now)...\n")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self.token

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
