"""The review queue's heat maps: where the current model looks for a suspect's given label and for the
suggested one (Grad-CAM), side by side.

The model is held in its own process (:func:`cnn_studio.explain.views.open_model`), as in the Classify
step; maps are computed one image at a time in a worker thread, so the review's keys keep working, and a
map that arrives for an image no longer shown is not drawn. No TensorFlow is imported here.
"""

from __future__ import annotations

import threading
from html import escape

from cnn_studio.ui.widgets.image_grid import array_to_pixmap
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from cnn_studio.core import events as ev
from cnn_studio.core.paths import job_log
from cnn_studio.explain.gradcam import overlay
from cnn_studio.explain.views import HEATMAPS, open_model

HEAT_SIDE = 192  # the model server's heat-map pictures (explain.views.THUMB)
HEAT_ALPHA = 0.45


def suspect_heatmaps(run_dir, model, path: str, classes, *, sink, cancel):
    """Grad-CAM of ``path`` for each class name in ``classes`` that the run's model knows.

    ``model`` is an :func:`~cnn_studio.explain.views.open_model` handle kept across calls (None, or a
    dead one, opens the run's model in its own process first). Returns ``(model, {class name:
    (picture, heat map)})``; a class the model was not trained on gets no entry.
    """

    if model is not None and not model.alive:  # its process died: load it anew
        model.close()
        model = None
    opened = model is None
    if opened:
        sink(ev.StageChanged(task="review", stage="Loading the model"))
        model = open_model(run_dir, log_path=job_log("model", run_dir))
    try:
        names = list(model.info.class_names)
        maps = {}
        for name in dict.fromkeys(classes):
            if name in names:
                got = model.call(HEATMAPS, [str(path)], names.index(name), sink=sink, cancel=cancel)
                if str(path) in got:
                    maps[name] = got[str(path)]
    except BaseException:
        if opened:  # nobody else holds it
            model.close()
        raise
    return model, maps


class SuspectHeatmaps(QWidget):
    """The given label's and the suggested label's Grad-CAM, side by side, computed off the GUI thread.

    :meth:`show_for` asks for one image's maps: at most one computation runs at a time, a newer
    request replaces a waiting one, and maps that arrive for an image no longer asked for are kept
    (for going back) but not drawn. Errors are said in the panel, never in a dialog that would stop
    the review.

    Signals
    -------
    shown(str)
        The maps of this path were drawn.
    """

    shown = Signal(str)

    def __init__(self, run_dir=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir = run_dir
        self.model = None
        self.task = None
        self.maps: dict[str, dict[str, tuple]] = {}  # path -> {class: (picture, heat)}
        self._wanted: tuple[str, tuple[str, ...]] | None = None
        self._error = ""
        self._closed = False
        self.pictures = [QLabel(alignment=Qt.AlignmentFlag.AlignCenter) for _ in range(2)]
        self.captions = [QLabel(alignment=Qt.AlignmentFlag.AlignCenter) for _ in range(2)]
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("hint")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("<b>Where the model looks</b> (Grad-CAM; red = what speaks for that label)"), 0, 0, 1, 3)
        for i, (pic, cap) in enumerate(zip(self.pictures, self.captions, strict=True)):
            pic.setFixedSize(HEAT_SIDE, HEAT_SIDE)
            cap.setMaximumWidth(HEAT_SIDE)
            grid.addWidget(pic, 1, i)
            grid.addWidget(cap, 2, i)
        grid.addWidget(self.note, 3, 0, 1, 3)
        grid.setColumnStretch(2, 1)
        if run_dir is None:
            self.note.setText("Train a model in the Train step to see here where it looks for the given and "
                              "the suggested label.")

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.is_live

    @property
    def current(self) -> str | None:
        """The path whose maps are asked for (shown, or being computed)."""
        return self._wanted[0] if self._wanted else None

    def show_for(self, path: str, given: str, suggested: str) -> None:
        """Show ``path``'s maps for ``given`` and ``suggested`` (at once when known, else when computed)."""
        self._wanted = (str(path), (given, suggested))
        for pic, cap, name, tag in zip(self.pictures, self.captions, (given, suggested), ("given", "suggested"),
                                       strict=True):
            pic.clear()
            cap.setText(f"{escape(name)} ({tag})")
        if self.run_dir is None or self._closed:
            return
        if self._error:
            self.note.setText(self._error)
            return
        if str(path) in self.maps:
            self._draw()
        else:
            self.note.setText("Computing where the model looks…")
            self._start()

    def close_model(self) -> None:
        """Stop: cancel a computation and end the model's process (off the GUI thread)."""
        self._closed = True
        if self.busy:
            self.task.cancel()
        model, self.model = self.model, None
        if model is not None:
            threading.Thread(target=model.close, name="close-review-model", daemon=True).start()

    # ---------------------------------------------------------------- inside
    def _start(self) -> None:
        if self.busy or self._wanted is None or self._closed:
            return
        path, classes = self._wanted
        self.task = start_task(suspect_heatmaps, self.run_dir, self.model, path, classes,
                               on_returned=lambda result, p=path: self._on_returned(p, result),
                               on_errored=self._on_errored, on_finished=self._on_finished)

    def _on_returned(self, path: str, result) -> None:
        self.model, maps = result
        if self._closed:  # the dialog closed while this was computed
            self.close_model()
            return
        self.maps[path] = maps
        if path == self.current:  # a map for an image no longer shown is not drawn
            self._draw()

    def _on_errored(self, exc: BaseException) -> None:
        message = getattr(exc, "message", "") or str(exc)
        self._error = f"The heat maps cannot be shown: {message}"
        self.note.setText(self._error)

    def _on_finished(self) -> None:
        self.task = None
        if not self._error and self.current is not None and self.current not in self.maps:
            self._start()  # the user moved on while the previous image's maps were computed

    def _draw(self) -> None:
        path, classes = self._wanted
        maps = self.maps.get(path, {})
        missing = [c for c in classes if c not in maps]
        for pic, name in zip(self.pictures, classes, strict=True):
            if name in maps:
                original, heat = maps[name]
                pic.setPixmap(array_to_pixmap(overlay(original, heat, alpha=HEAT_ALPHA)).scaled(
                    HEAT_SIDE, HEAT_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation))
        if not maps:
            self.note.setText("The current model cannot explain this image (it could not read it, or it was "
                              "trained on other classes).")
        elif missing:
            self.note.setText(f"The current model was not trained on {', '.join(map(escape, missing))}.")
        else:
            self.note.setText("From the current model, which learned from these labels: a map for the "
                              "suggested label that covers the object is a sign the given label is wrong.")
        self.shown.emit(path)

