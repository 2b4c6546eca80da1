"""LabelActions: relabel, exclude or keep one image's label, saved to the dataset's corrections file.

The Evaluate step's confusion-matrix cell view puts this bar under the cell's images; the review
queue (:mod:`cnn_studio.ui.review_queue`) offers the same three decisions. Every decision is written
at once through :class:`cnn_studio.labels.corrections.Corrections` (a corrections.csv in the app data
folder, never the user's files) and can be undone; the labels change for the next training, when the
dataset is read again.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from cnn_studio.data.records import display_name
from cnn_studio.labels.corrections import EXCLUDED, KEPT, Corrections, Decision

MARKS = {"relabel": "✎", "exclude": "✕", "keep": "✓"}
"""The sign a decided image gets in front of its caption (the review queue's marks)."""


def decision_text(decision: Decision | None) -> str:
    """"relabelled as dog", "excluded", "label kept" or ""."""
    if decision is None:
        return ""
    return {"relabel": f"relabelled as {decision.new}", "exclude": "excluded", "keep": "label kept"}[decision.action]


class LabelActions(QWidget):
    """Relabel (R) / Exclude (E) / Keep (K) / Undo (Ctrl+Z) for the image set with :meth:`set_image`.

    The keys work anywhere inside ``shortcut_scope`` (the widget given, else this bar).

    Signals
    -------
    decided(object)
        A :class:`~cnn_studio.labels.corrections.Decision` was saved, or (for an undo) taken back.
    """

    decided = Signal(object)

    def __init__(self, shortcut_scope: QWidget | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.corrections: Corrections | None = None
        self.path: str | None = None
        self.given = ""
        self.target = QComboBox()
        self.target.setToolTip("The class Relabel gives the image.")
        self.relabel_button = QPushButton("Relabel (R)")
        self.exclude_button = QPushButton("Exclude (E)")
        self.keep_button = QPushButton("Keep label (K)")
        self.undo_button = QPushButton("Undo (Ctrl+Z)")
        self.relabel_button.setToolTip("Give the image the class chosen on the left; the file stays where it is.")
        self.exclude_button.setToolTip("Leave the image out of training and evaluation; the file is not deleted.")
        self.keep_button.setToolTip("The label is right; the label check will not suggest it again.")
        self.relabel_button.clicked.connect(self.relabel)
        self.exclude_button.clicked.connect(self.exclude)
        self.keep_button.clicked.connect(self.keep)
        self.undo_button.clicked.connect(self.undo)
        self.state = QLabel()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("hint")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Relabel as"))
        row.addWidget(self.target)
        for b in (self.relabel_button, self.exclude_button, self.keep_button, self.undo_button):
            row.addWidget(b)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.state)
        lay.addLayout(row)
        lay.addWidget(self.note)
        scope = shortcut_scope or self
        for key, slot in (("R", self.relabel), ("E", self.exclude), ("K", self.keep),
                          (QKeySequence.StandardKey.Undo, self.undo)):
            sc = QShortcut(QKeySequence(key), scope)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        self.set_corrections(None, ())

    # ---------------------------------------------------------------- setting up
    def set_corrections(self, corrections: Corrections | None, class_names, why_not: str = "") -> None:
        """Decide through ``corrections`` (None: the bar is off, ``why_not`` says why)."""
        self.corrections = corrections
        current = self.target.currentText()
        self.target.clear()
        self.target.addItems(list(class_names))
        if current:
            self.target.setCurrentText(current)
        self._why_not = why_not
        self.set_image(None, "")

    def set_image(self, path: str | None, given: str) -> None:
        """The image the buttons act on (None: none chosen) and its label as evaluated."""
        self.path, self.given = (str(path) if path else None), given
        if path and self.target.count():
            d = self.corrections.get(path) if self.corrections is not None else None
            others = [self.target.itemText(i) for i in range(self.target.count()) if self.target.itemText(i) != given]
            self.target.setCurrentText(d.new if d is not None and d.action == "relabel" else
                                       self.target.currentText() if self.target.currentText() != given else
                                       (others[0] if others else given))
        self._refresh()

    # ---------------------------------------------------------------- deciding
    def relabel(self) -> Decision | None:
        new = self.target.currentText()
        return self._decide(KEPT if new == self.given else new)

    def exclude(self) -> Decision | None:
        return self._decide(EXCLUDED)

    def keep(self) -> Decision | None:
        return self._decide(KEPT)

    def undo(self) -> Decision | None:
        """Take back the last decision (this image's or another's)."""
        if self.corrections is None:
            return None
        undone = self.corrections.undo()
        if undone is None:
            return None
        self._save()
        self._refresh()
        self.decided.emit(undone)
        return undone

    def _decide(self, new: str) -> Decision | None:
        if self.corrections is None or self.path is None:
            return None
        decision = self.corrections.decide(self.path, self.given, new)
        self._save()
        self._refresh()
        self.decided.emit(decision)
        return decision

    def _save(self) -> None:
        if self.corrections is not None and self.corrections.path is not None:
            self.corrections.save()

    def _refresh(self) -> None:
        on = self.corrections is not None
        chosen = on and self.path is not None
        for w in (self.target, self.relabel_button, self.exclude_button, self.keep_button):
            w.setEnabled(chosen)
        self.undo_button.setEnabled(on and self.corrections.can_undo)
        if not on:
            self.state.setText("")
            self.note.setText(self._why_not)
            return
        if self.path is None:
            self.state.setText("Click an image to relabel, exclude or keep it.")
        else:
            what = decision_text(self.corrections.get(self.path))
            self.state.setText(f"<b>{escape(display_name(self.path))}</b> (labelled {escape(self.given)})"
                               + (f": <b>{escape(what)}</b>" if what else ""))
        counts = self.corrections.counts()
        where = self.corrections.path or "the project"
        self.note.setText(f"Decisions are saved at once to {where} ({counts['relabel']} relabelled, "
                          f"{counts['exclude']} excluded, {counts['keep']} kept); your files are not touched. "
                          "The next training uses the corrected labels: the Data step reads the dataset again "
                          "when you leave this step.")
