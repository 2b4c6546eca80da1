"""The review queue: go through the images whose label looks wrong and relabel, exclude or keep each.

:class:`ReviewQueue` is a dialog over a :class:`~cnn_studio.labels.issues.LabelIssues` result and the
dataset's :class:`~cnn_studio.labels.corrections.Corrections`. For each suspect it shows the image, its given
and suggested label, the score, its nearest neighbours from every class, so a person can judge
which class it resembles, and — when the session has a trained model of these classes — the Grad-CAM
heat map for the given label beside the one for the suggested label (:class:`SuspectHeatmaps`, in
:mod:`cnn_studio.ui.suspect_heatmaps`). Keys: **R** relabel (to the class chosen, the suggestion by default),
**E** exclude, **K** keep, **←/→** (or ↑/↓) previous/next, **Ctrl+Z** undo. Every decision is saved
at once to the corrections file (never to the images); the Data step applies it when it reads the
dataset again.

The line above the queue names the checker and its chance verdict (out-of-fold accuracy, 95%
interval); a checker not better than guessing lists nothing, and the queue says so and what would help.

The check itself is run, and the queue opened, by :class:`cnn_studio.ui.label_check.LabelCheck`.
No TensorFlow is imported here.
"""

from __future__ import annotations

from html import escape

from cnn_studio.ui.suspect_heatmaps import SuspectHeatmaps
from cnn_studio.ui.thumbnails import read_thumbnail
from cnn_studio.ui.widgets.screen_fit import resize_to_fit
from PySide6.QtCore import Qt, Signal
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

from cnn_studio.data.records import display_name
from cnn_studio.labels.corrections import EXCLUDED, KEPT, Corrections

IMAGE_SIDE = 280
THUMB_SIDE = 84
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

        self.status = QLabel()
        self.status.setObjectName("summary")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self._make_details(run_dir), 1)
        rl.addLayout(self._make_actions())
        splitter = QSplitter()
        splitter.addWidget(self._make_list())
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
            self._show_nothing_to_review()
        self.undo_button.setEnabled(self.corrections.can_undo)

    # ---------------------------------------------------------------- layout
    def _make_list(self) -> QListWidget:
        """The suspects, one row each (a mark once decided); choosing a row shows it."""
        self.list = QListWidget()
        self.list.setMinimumWidth(260)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows and R/E/K belong to the dialog
        for s in self.suspects:
            item = QListWidgetItem()
            item.setToolTip(s.path)
            self.list.addItem(item)
        self.list.currentRowChanged.connect(self._show)
        return self.list

    def _make_details(self, run_dir) -> QScrollArea:
        """The current suspect: its picture, labels and score, the heat maps and the nearest images of
        each class; it scrolls, so many classes (a row of neighbours each) never push the dialog off-screen."""
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(IMAGE_SIDE, IMAGE_SIDE)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.decision_label = QLabel()
        self.heatmaps = SuspectHeatmaps(run_dir)
        self.finished.connect(lambda _result: self.heatmaps.close_model())
        self.neighbours = QGridLayout()
        self.neighbours.setHorizontalSpacing(6)
        self.neighbours.setColumnStretch(NEIGHBOURS_SHOWN + 1, 1)  # thumbnails packed to the left
        neighbour_box = QWidget()
        neighbour_box.setLayout(self.neighbours)
        top = QHBoxLayout()
        top.addWidget(self.image)
        info = QVBoxLayout()
        info.addWidget(self.title)
        info.addWidget(self.decision_label)
        info.addWidget(self.heatmaps)
        info.addStretch(1)
        top.addLayout(info, 1)
        details = QWidget()
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
        return scroll

    def _make_actions(self) -> QHBoxLayout:
        """"Relabel as", the decision buttons and Previous/Next, and the keys that do the same."""
        self.target = QComboBox()
        self.target.addItems(list(self.issues.class_names))
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
        actions = QHBoxLayout()
        actions.addWidget(QLabel("Relabel as"))
        actions.addWidget(self.target)
        for b in (self.relabel_button, self.exclude_button, self.keep_button, self.undo_button):
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.prev_button)
        actions.addWidget(self.next_button)
        return actions

    def _show_nothing_to_review(self) -> None:
        """No suspects: say why, and disable what decides, moves, explains or compares."""
        self.title.setText("No likely label issues were found." if self.issues.trusted else
                           "<b>Nothing to review:</b> the check did no better than guessing, so it lists no "
                           "image as wrong (see above for what would help).")
        for b in (self.relabel_button, self.exclude_button, self.keep_button, self.prev_button,
                  self.next_button, self.target):
            b.setEnabled(False)
        for w in (self.heatmaps, self.neighbours_title):  # nothing to explain or compare
            w.hide()

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
