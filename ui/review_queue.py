"""The review queue: go through the images whose label looks wrong and relabel, exclude or keep each.

:class:`ReviewQueue` is a dialog over a :class:`~cnn_studio.labels.issues.LabelIssues` result and the
dataset's :class:`~cnn_studio.labels.corrections.Corrections`. For each suspect it shows the image, its given
and suggested label, the score, its nearest neighbours from every class, so a person can judge
which class it resembles, and — when the session has a trained model of these classes — the Grad-CAM
heat map for the given label beside the one for the suggested label (:class:`SuspectHeatmaps`: the
model is held in its own process, :func:`cnn_studio.explain.views.open_model`, as in the Classify
step; maps are computed one image at a time in a worker thread, so the keys keep working, and a map
that arrives for an image no longer shown is not drawn). Keys: **R** relabel (to the class chosen, the suggestion by default),
**E** exclude, **K** keep, **←/→** (or ↑/↓) previous/next, **Ctrl+Z** undo. Every decision is saved
at once to the corrections file (never to the images); the Data step applies it when it reads the
dataset again.

The line above the queue names the checker and its chance verdict (out-of-fold accuracy, 95%
interval); a checker not better than guessing lists nothing, and the queue says so and what would help.

:class:`LabelCheck` runs the finder in a child process (``child_process.run_job``, off the GUI
thread through :func:`~cnn_studio.ui.workers.start_task`) with the Model step's backbone and weights
(:func:`label_check_choice`), opens the queue when it returns and says when corrections changed.
No TensorFlow is imported here.
"""

from __future__ import annotations

import threading
from html import escape

from cnn_studio.ui.thumbnails import read_thumbnail
from cnn_studio.ui.widgets.image_grid import array_to_pixmap
from cnn_studio.ui.widgets.screen_fit import resize_to_fit
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.backbones.registry import get as get_spec
from cnn_studio.core import events as ev
from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import job_log
from cnn_studio.data.records import display_name
from cnn_studio.explain.gradcam import overlay
from cnn_studio.explain.views import HEATMAPS, open_model
from cnn_studio.labels.checker import choose_checker, default_checker
from cnn_studio.labels.corrections import EXCLUDED, KEPT, Corrections

IMAGE_SIDE = 280
THUMB_SIDE = 84
HEAT_SIDE = 192  # the model server's heat-map pictures (explain.views.THUMB)
HEAT_ALPHA = 0.45
NEIGHBOURS_SHOWN = 3  # the finder's default (label_issues.NEIGHBOURS)
_MARK = {"relabel": "✎", "exclude": "✕", "keep": "✓"}


def _pixmap(path: str, side: int) -> QPixmap:
    """A scaled picture of ``path`` (Qt's reader, else the engine's decoder for DICOM/TIFF ...)."""

    img = read_thumbnail(path, side)
    if img.isNull():
        return QPixmap()
    if img.width() < side and img.height() < side:  # small images: enlarge, pixels kept sharp
        img = img.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return QPixmap.fromImage(img if isinstance(img, QImage) else QImage(img))


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


class ReviewQueue(QDialog):
    """Review the suspects one by one (see the module docstring).

    Signals
    -------
    decided(object)
        A decision was made or undone; the argument is the :class:`~cnn_studio.labels.corrections.Decision`
        (for an undo, the one taken back).
    """

    decided = Signal(object)

    def __init__(self, issues, corrections: Corrections, parent: QWidget | None = None, *, run_dir=None,
                 note: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Review label issues")
        self.issues = issues
        self.corrections = corrections
        self.note = note
        self.suspects = list(issues.suspects) if issues.trusted else []  # a checker at chance accuses no one
        self.changed = False
        self._row = -1

        self.list = QListWidget()
        self.list.setMinimumWidth(260)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows and R/E/K belong to the dialog
        for s in self.suspects:
            item = QListWidgetItem()
            item.setToolTip(s.path)
            self.list.addItem(item)
        self.list.currentRowChanged.connect(self._show)

        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(IMAGE_SIDE, IMAGE_SIDE)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.decision_label = QLabel()
        self.target = QComboBox()
        self.target.addItems(list(issues.class_names))
        self.target.setToolTip("The class R gives the image (the suggestion by default).")
        self.target.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

        self.relabel_button = QPushButton("Relabel (R)")
        self.exclude_button = QPushButton("Exclude (E)")
        self.keep_button = QPushButton("Keep label (K)")
        self.undo_button = QPushButton("Undo (Ctrl+Z)")
        self.prev_button = QPushButton("← Previous")
        self.next_button = QPushButton("Next →")
        self.relabel_button.setToolTip("Give the image the class chosen on the left; the file stays where it is.")
        self.exclude_button.setToolTip("Leave the image out of training and evaluation; the file is not deleted.")
        self.keep_button.setToolTip("The given label is right; the check will not suggest it again.")
        for b in (self.relabel_button, self.exclude_button, self.keep_button, self.undo_button,
                  self.prev_button, self.next_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.relabel_button.clicked.connect(self.relabel)
        self.exclude_button.clicked.connect(self.exclude)
        self.keep_button.clicked.connect(self.keep)
        self.undo_button.clicked.connect(self.undo)
        self.prev_button.clicked.connect(lambda: self.go(-1))
        self.next_button.clicked.connect(lambda: self.go(1))
        self._keys = {Qt.Key.Key_R: self.relabel, Qt.Key.Key_E: self.exclude, Qt.Key.Key_K: self.keep,
                      Qt.Key.Key_Right: lambda: self.go(1), Qt.Key.Key_Down: lambda: self.go(1),
                      Qt.Key.Key_Left: lambda: self.go(-1), Qt.Key.Key_Up: lambda: self.go(-1)}
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.neighbours = QGridLayout()
        self.neighbours.setHorizontalSpacing(6)
        self.neighbours.setColumnStretch(NEIGHBOURS_SHOWN + 1, 1)  # thumbnails packed to the left
        neighbour_box = QWidget()
        neighbour_box.setLayout(self.neighbours)
        self.status = QLabel()
        self.status.setObjectName("summary")
        self.heatmaps = SuspectHeatmaps(run_dir)
        self.finished.connect(lambda _result: self.heatmaps.close_model())

        actions = QHBoxLayout()
        actions.addWidget(QLabel("Relabel as"))
        actions.addWidget(self.target)
        for b in (self.relabel_button, self.exclude_button, self.keep_button, self.undo_button):
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.prev_button)
        actions.addWidget(self.next_button)

        top = QHBoxLayout()
        top.addWidget(self.image)
        info = QVBoxLayout()
        info.addWidget(self.title)
        info.addWidget(self.decision_label)
        info.addWidget(self.heatmaps)
        info.addStretch(1)
        top.addLayout(info, 1)
        details = QWidget()  # scrolls: many classes (a row of neighbours each) never push the dialog off-screen
        dl = QVBoxLayout(details)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addLayout(top)
        self.neighbours_title = QLabel("<b>Nearest images of each class</b> (the check's embedding; left = closest)")
        dl.addWidget(self.neighbours_title)
        dl.addWidget(neighbour_box)
        dl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(details)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(scroll, 1)
        rl.addLayout(actions)
        splitter = QSplitter()
        splitter.addWidget(self.list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        self.intro = QLabel(intro_html(issues, len(self.suspects), corrections.path, note))
        self.intro.setWordWrap(True)
        lay.addWidget(self.intro)
        lay.addWidget(splitter, 1)
        lay.addWidget(self.status)
        resize_to_fit(self, 1040, 740)
        for row in range(len(self.suspects)):
            self._refresh_item(row)
        self._update_status()
        if self.suspects:
            self.list.setCurrentRow(0)
        else:
            self.title.setText("No likely label issues were found." if issues.trusted else
                               "<b>Nothing to review:</b> the check did no better than guessing, so it lists no "
                               "image as wrong (see above for what would help).")
            for b in (self.relabel_button, self.exclude_button, self.keep_button, self.prev_button,
                      self.next_button, self.target):
                b.setEnabled(False)
            for w in (self.heatmaps, self.neighbours_title):  # nothing to explain or compare
                w.hide()
        self.undo_button.setEnabled(self.corrections.can_undo)

    # ---------------------------------------------------------------- public
    @property
    def current(self):
        return self.suspects[self._row] if 0 <= self._row < len(self.suspects) else None

    @property
    def row(self) -> int:
        return self._row

    def go(self, step: int) -> None:
        """Show the previous (-1) or next (+1) suspect."""
        if self.suspects:
            self.list.setCurrentRow(max(0, min(len(self.suspects) - 1, self._row + step)))

    def relabel(self) -> None:
        """Give the current image the class in the "Relabel as" box."""
        s = self.current
        if s is not None:
            new = self.target.currentText()
            self._decide(s.path, s.given, KEPT if new == s.given else new)

    def exclude(self) -> None:
        s = self.current
        if s is not None:
            self._decide(s.path, s.given, EXCLUDED)

    def keep(self) -> None:
        s = self.current
        if s is not None:
            self._decide(s.path, s.given, KEPT)

    def undo(self) -> None:
        """Take back the last decision (also one from an earlier review) and show that image again."""
        undone = self.corrections.undo()
        if undone is None:
            return
        self._save()
        row = next((i for i, s in enumerate(self.suspects) if s.path == undone.path), None)
        if row is not None:
            self._refresh_item(row)
            self.list.setCurrentRow(row)
            self._show(row)
        self._update_status()
        self.decided.emit(undone)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """R/E/K decide, arrows move, Ctrl+Z undoes (handled here, so they work without a focused widget)."""
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undo()
            return
        slot = self._keys.get(event.key()) if not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier else None
        if slot is not None:
            slot()
            return
        super().keyPressEvent(event)

    # ---------------------------------------------------------------- inside
    def _decide(self, path: str, given: str, new: str) -> None:
        decision = self.corrections.decide(path, given, new)
        self._save()
        self._refresh_item(self._row)
        self._update_status()
        self.decided.emit(decision)
        nxt = next((i for i in range(self._row + 1, len(self.suspects))
                    if self.corrections.get(self.suspects[i].path) is None), None)
        if nxt is not None:
            self.list.setCurrentRow(nxt)
        else:
            self._show(self._row)

    def _save(self) -> None:
        self.changed = True
        if self.corrections.path is not None:
            self.corrections.save()
        self.undo_button.setEnabled(self.corrections.can_undo)

    def _refresh_item(self, row: int) -> None:
        s = self.suspects[row]
        d = self.corrections.get(s.path)
        mark = f"{_MARK[d.action]} " if d is not None else "   "
        self.list.item(row).setText(f"{mark}{display_name(s.path)}\n     {s.given} → {s.suggested}  ({s.score:.2f})")

    def _update_status(self) -> None:
        paths = [s.path for s in self.suspects]
        done = [self.corrections.get(p) for p in paths if self.corrections.get(p) is not None]
        counts = {a: sum(d.action == a for d in done) for a in ("relabel", "exclude", "keep")}
        self.status.setText(f"{len(done)} of {len(paths)} reviewed · {counts['relabel']} relabelled, "
                            f"{counts['exclude']} excluded, {counts['keep']} kept")

    def _show(self, row: int) -> None:
        self._row = row
        s = self.current
        if s is None:
            return

        self.image.setPixmap(_pixmap(s.path, IMAGE_SIDE))
        self.heatmaps.show_for(s.path, s.given, s.suggested)
        part = f" · in the {s.split} images" if s.split else ""
        self.title.setText(
            f"<b>{escape(display_name(s.path))}</b>{part}<br><small>{escape(s.path)}</small><br><br>"
            f"Given label: <b>{escape(s.given)}</b> (p = {s.given_probability:.2f})<br>"
            f"Suggested: <b style='color:#1a7f37'>{escape(s.suggested)}</b> (p = {s.suggested_probability:.2f})<br>"
            f"Score: {s.score:.2f} <small>(p(suggested) − p(given); higher = more likely wrong)</small>")
        d = self.corrections.get(s.path)
        what = "" if d is None else {"relabel": f"relabelled as {escape(d.new)}", "exclude": "excluded",
                                     "keep": "label kept"}[d.action]
        self.decision_label.setText(f"Decided: <b>{what}</b>" if what else "")
        self.target.setCurrentText(d.new if d is not None and d.action == "relabel" else s.suggested)
        self.prev_button.setEnabled(row > 0)
        self.next_button.setEnabled(row < len(self.suspects) - 1)
        while self.neighbours.count():
            w = self.neighbours.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for r, name in enumerate(self.issues.class_names):
            tag = " (given)" if name == s.given else " (suggested)" if name == s.suggested else ""
            self.neighbours.addWidget(QLabel(f"{escape(name)}{tag}"), r, 0)
            for c, p in enumerate(s.neighbours.get(name, ())[:NEIGHBOURS_SHOWN]):
                thumb = QLabel()
                thumb.setPixmap(_pixmap(p, THUMB_SIDE))
                thumb.setToolTip(p)
                self.neighbours.addWidget(thumb, r, c + 1)


def intro_html(issues, shown: int, corrections_path, note: str = "") -> str:
    """The line above the queue: what judged the labels, its chance verdict, and where decisions go."""
    how = f"{issues.folds}-fold check, {escape(issues.checker or issues.method.replace('_', ' '))}"
    check = issues.check or {}
    verdict = escape(check.get("message", f"Out-of-fold accuracy {issues.accuracy:.0%}."))
    extra = f"<br><i>{escape(note)}</i>" if note else ""
    if not issues.trusted:
        hint = escape(check.get("hint", ""))
        return (f"<b style='color:#9a6700'>No image is listed as wrong</b> ({how}). {verdict}"
                f"<br>{hint}{extra}")
    return (f"<b>{shown} image(s) whose label looks wrong</b> to a model that never saw them ({how}). "
            f"{verdict} Decisions are saved at once to <code>{escape(str(corrections_path or 'the project'))}"
            f"</code>; your image files are never moved or deleted.{extra}")


# ---------------------------------------------------------------------------- running the finder


def label_check_choice(config=None) -> tuple[dict, str]:
    """The finder's settings from the Model step's ``config`` (a TrainConfig) and a note ("" or why not).

    Its backbone and weights (read by the one weights parser) when they give the check something to
    judge by: pretrained weights (frozen features) or the Small CNN (trained per fold), with its image
    size and resize policy. A pretrained backbone set to train from scratch has no features: the check
    then takes :func:`~cnn_studio.labels.checker.default_checker` (pretrained features when any load
    offline, else the Small CNN) and says so. No config: the default checker.
    """

    if config is not None:
        try:
            chosen = choose_checker(config.backbone, config.weights)
            return ({"backbone": chosen.backbone, "weights": chosen.weights.value, "image_size": config.image_size,
                     "resize": config.resize}, "")
        except StudioError:
            fallback = default_checker()
            label = get_spec(config.backbone).label
            return ({"backbone": fallback.backbone, "weights": fallback.weights.value},
                    f"The Model step trains {label} from scratch, which gives the check nothing to judge by: "
                    f"it used {fallback.describe()} instead.")
    fallback = default_checker()
    return {"backbone": fallback.backbone, "weights": fallback.weights.value}, ""


def find_issues_in_child(root: str, *, sink, cancel, **kwargs):
    """Run :func:`cnn_studio.labels.issues.find_label_issues` in a child process (TensorFlow stays out of the app)."""

    return run_job("cnn_studio.labels.issues:find_label_issues", str(root), sink=sink, cancel=cancel,
                   log_path=job_log("label_issues", root), label="label check", **kwargs)


class LabelCheck(QObject):
    """Run the finder for the session's dataset, then open the review queue.

    Signals
    -------
    opened(object)
        The :class:`ReviewQueue` dialog, once shown.
    corrections_changed()
        The queue closed after decisions were made or undone: read the dataset again.
    """

    opened = Signal(object)
    corrections_changed = Signal()

    def __init__(self, session, parent: QWidget) -> None:
        super().__init__(parent)
        self.session = session
        self.task = None
        self.note = ""
        self.describe = ""  # the checker in words, once started ("VGG16, frozen ImageNet features")
        self.dialog: ReviewQueue | None = None
        session.closing.connect(self.cancel)

    def start(self, root: str, **kwargs):
        """Start the check of ``root`` (a folder or CSV); returns the task (attach it to a task strip)."""

        self.note = ""
        if "backbone" not in kwargs:
            settings, self.note = label_check_choice(self.session.config)
            kwargs = {**settings, **kwargs}
        try:
            self.describe = choose_checker(kwargs.get("backbone"), kwargs.get("weights"), kwargs.get("method")).describe()
        except StudioError:
            self.describe = ""  # the finder says why, in the task's error
        self._root = str(root)
        self.task = start_task(find_issues_in_child, self._root, on_returned=self._on_returned, **kwargs)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.dialog is not None:
            self.dialog.heatmaps.close_model()

    def _on_returned(self, issues) -> None:
        corrections = Corrections.for_dataset(self._root)
        parent = self.parent() if isinstance(self.parent(), QWidget) else None
        self.dialog = ReviewQueue(issues, corrections, parent, run_dir=self.session.run_dir, note=self.note)
        self.dialog.finished.connect(self._on_closed)
        self.dialog.show()
        self.opened.emit(self.dialog)

    def _on_closed(self, _result: int) -> None:
        if self.dialog is not None and self.dialog.changed:
            self.corrections_changed.emit()
