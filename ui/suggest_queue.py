"""The suggestion queue: label the unlabelled images the model would learn most from, one key press each.

:class:`SuggestQueue` is a dialog over a :class:`~cnn_studio.labels.suggest.Suggestions` result (which
strategy ranked the images, and why, is its first line) and the dataset's
:class:`~cnn_studio.labels.added_labels.AddedLabels`. For each image it shows the picture and the model's
best guesses. Keys: **1…9** give the image the class with that number (the buttons say which),
**S** skips it, **←/→** (or ↑/↓) move, **Ctrl+Z** undoes. Every label is saved at once to the
labels file beside the dataset's corrections (never to the images: they are not moved, copied or
changed); the Data step reads it when it reads the dataset again, and the next training uses it.

:class:`SuggestRun` ranks the images in a child process (``child_process.run_job``, off the GUI
thread) and opens the queue when it returns. It reuses the review queue's picture reader
(:func:`cnn_studio.ui.review_queue._pixmap`). No TensorFlow is imported here.
"""

from __future__ import annotations

from html import escape

from cnn_studio.ui.review_queue import IMAGE_SIDE, _pixmap
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.core.child_process import run_job
from cnn_studio.core.paths import job_log
from cnn_studio.data.records import display_name
from cnn_studio.labels.added_labels import AddedLabels
from cnn_studio.labels.corrections import norm_path
from cnn_studio.runs.run_folder import open_run

NUMBER_KEYS = {getattr(Qt.Key, f"Key_{i}"): i - 1 for i in range(1, 10)}


class SuggestQueue(QDialog):
    """Label the suggested images one by one (see the module docstring).

    Signals
    -------
    labelled(object)
        A label was given or undone; the argument is the :class:`~cnn_studio.labels.added_labels.AddedLabel`.
    """

    labelled = Signal(object)

    def __init__(self, suggestions, added: AddedLabels, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Images to label next")
        self.suggestions = suggestions
        self.added = added
        self.items = list(suggestions.items)
        self.classes = list(suggestions.class_names)
        self.skipped: set[str] = set()
        self.changed = False
        self._row = -1

        self.list = QListWidget()
        self.list.setMinimumWidth(240)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the number keys belong to the dialog
        for s in self.items:
            item = QListWidgetItem()
            item.setToolTip(s.path)
            self.list.addItem(item)
        self.list.currentRowChanged.connect(self._show)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(IMAGE_SIDE, IMAGE_SIDE)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.why = QLabel(escape(suggestions.why))
        self.why.setWordWrap(True)
        self.why.setObjectName("hint")
        self.status = QLabel()
        self.status.setObjectName("summary")
        self.class_buttons = self._make_class_buttons()
        self.skip_button = QPushButton("Skip (S)")
        self.undo_button = QPushButton("Undo (Ctrl+Z)")
        self.prev_button = QPushButton("← Previous")
        self.next_button = QPushButton("Next →")
        for b, slot in ((self.skip_button, self.skip), (self.undo_button, self.undo),
                        (self.prev_button, lambda: self.go(-1)), (self.next_button, lambda: self.go(1))):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
        self.skip_button.setToolTip("Leave this image unlabelled for now (nothing is written).")
        self._keys = {Qt.Key.Key_S: self.skip, Qt.Key.Key_Right: lambda: self.go(1),
                      Qt.Key.Key_Down: lambda: self.go(1), Qt.Key.Key_Left: lambda: self.go(-1),
                      Qt.Key.Key_Up: lambda: self.go(-1)}
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._lay_out()
        for row in range(len(self.items)):
            self._refresh_item(row)
        self._update_status()
        if self.items:
            self.list.setCurrentRow(0)
        else:
            self.title.setText("There is nothing to label: the pool holds no unlabelled image CNN Studio can read.")
        self.undo_button.setEnabled(self.added.can_undo)

    def _make_class_buttons(self) -> list[QPushButton]:
        buttons = []
        for i, name in enumerate(self.classes):
            key = f"{i + 1}  " if i < 9 else ""
            b = QPushButton(f"{key}{name}")
            b.setToolTip(f"Label this image {name}" + (f" (key {i + 1})" if i < 9 else "") +
                         "; the file stays where it is.")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _checked=False, c=name: self.label(c))
            buttons.append(b)
        return buttons

    def _lay_out(self) -> None:
        grid = QGridLayout()
        for i, b in enumerate(self.class_buttons):
            grid.addWidget(b, i // 5, i % 5)
        actions = QHBoxLayout()
        for b in (self.skip_button, self.undo_button):
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.prev_button)
        actions.addWidget(self.next_button)
        top = QHBoxLayout()
        top.addWidget(self.image)
        top.addWidget(self.title, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addLayout(top)
        rl.addStretch(1)
        rl.addWidget(QLabel("<b>Label as</b> (press the number)"))
        rl.addLayout(grid)
        rl.addLayout(actions)
        splitter = QSplitter()
        splitter.addWidget(self.list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        s = self.suggestions
        intro = QLabel(f"<b>{len(self.items)} of {s.pool_size} unlabelled image(s) to label next</b> from "
                       f"<code>{escape(s.pool)}</code>. Labels are saved at once to "
                       f"<code>{escape(str(self.added.path or s.labels_file))}</code>; your image files are never "
                       "moved or changed. The Data step adds them to the dataset when it reads it again.")
        intro.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.why)
        lay.addWidget(splitter, 1)
        lay.addWidget(self.status)
        self.resize(1000, 680)

    # ---------------------------------------------------------------- public
    @property
    def current(self):
        return self.items[self._row] if 0 <= self._row < len(self.items) else None

    @property
    def row(self) -> int:
        return self._row

    def go(self, step: int) -> None:
        if self.items:
            self.list.setCurrentRow(max(0, min(len(self.items) - 1, self._row + step)))

    def label(self, name: str) -> None:
        """Give the current image the class ``name``, save, and go to the next image not labelled yet."""
        s = self.current
        if s is None:
            return
        entry = self.added.label(s.path, name)
        self.skipped.discard(s.path)
        self._save()
        self.labelled.emit(entry)
        self._advance()

    def skip(self) -> None:
        s = self.current
        if s is not None:
            self.skipped.add(s.path)
            self._refresh_item(self._row)
            self._update_status()
            self._advance()

    def undo(self) -> None:
        """Take back the last label and show that image again."""
        undone = self.added.undo()
        if undone is None:
            return
        self._save()
        row = next((i for i, s in enumerate(self.items) if _same(s.path, undone.path)), None)
        if row is not None:
            self._refresh_item(row)
            self.list.setCurrentRow(row)
            self._show(row)
        self.labelled.emit(undone)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """1..9 label, S skips, arrows move, Ctrl+Z undoes (without a focused widget)."""
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undo()
            return
        plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        number = NUMBER_KEYS.get(event.key()) if plain else None
        if number is not None and number < len(self.classes):
            self.label(self.classes[number])
            return
        slot = self._keys.get(event.key()) if plain else None
        if slot is not None:
            slot()
            return
        super().keyPressEvent(event)

    # ---------------------------------------------------------------- inside
    def _advance(self) -> None:
        self._refresh_item(self._row)
        self._update_status()
        nxt = next((i for i in range(self._row + 1, len(self.items))
                    if self.added.get(self.items[i].path) is None and self.items[i].path not in self.skipped), None)
        if nxt is not None:
            self.list.setCurrentRow(nxt)
        else:
            self._show(self._row)

    def _save(self) -> None:
        self.changed = True
        if self.added.path is not None:
            self.added.save()
        self.undo_button.setEnabled(self.added.can_undo)
        self._update_status()

    def _refresh_item(self, row: int) -> None:
        s = self.items[row]
        a = self.added.get(s.path)
        mark = f"✓ {a.label}" if a is not None else ("skipped" if s.path in self.skipped else "")
        guess = f"{s.top[0][0]} {s.top[0][1]:.0%}" if s.top else ""
        self.list.item(row).setText(f"{s.rank:>3}. {display_name(s.path)}   {mark}\n      model: {guess}")

    def _update_status(self) -> None:
        done = sum(self.added.get(s.path) is not None for s in self.items)
        self.status.setText(f"{done} of {len(self.items)} labelled · {len(self.skipped)} skipped · "
                            f"{len(self.added)} image(s) labelled in CNN Studio for this dataset")

    def _show(self, row: int) -> None:
        self._row = row
        s = self.current
        if s is None:
            return
        self.image.setPixmap(_pixmap(s.path, IMAGE_SIDE))
        guesses = "<br>".join(f"{escape(c)}: {p:.0%}" for c, p in s.top)
        a = self.added.get(s.path)
        state = f"<br><br>Labelled: <b>{escape(a.label)}</b>" if a is not None else ""
        self.title.setText(
            f"<b>{s.rank}. {escape(display_name(s.path))}</b><br><small>{escape(s.path)}</small><br><br>"
            f"The model's best guesses:<br>{guesses}<br><small>margin {s.margin:.2f} (gap between the two best; "
            f"small = unsure)</small>{state}")
        self.prev_button.setEnabled(row > 0)
        self.next_button.setEnabled(row < len(self.items) - 1)


def _same(a: str, b: str) -> bool:
    return norm_path(a) == norm_path(b)


# ---------------------------------------------------------------------------- running the ranking


def run_for(session) -> str | None:
    """The session's run folder when its model was trained on the dataset's classes (else None: a quick
    classifier ranks the images)."""
    run_dir, index = getattr(session, "run_dir", None), getattr(session, "index", None)
    if run_dir is None or index is None:
        return None
    try:
        names = open_run(run_dir).class_names
    except Exception:  # noqa: BLE001 - a run that cannot be read: the quick classifier does the job
        return None
    return str(run_dir) if names and set(names) == set(index.class_names) else None


def suggest_in_child(root: str, pool: str, *, sink, cancel, **kwargs):
    """Run :func:`cnn_studio.labels.suggest.suggest` in a child process (TensorFlow stays out of the app)."""
    return run_job("cnn_studio.labels.suggest:suggest", str(root), str(pool), sink=sink, cancel=cancel,
                   log_path=job_log("suggest", root), label="suggestions", **kwargs)


class SuggestRun(QObject):
    """Rank a pool of images for the session's dataset, then open the suggestion queue.

    Signals
    -------
    opened(object)
        The :class:`SuggestQueue` dialog, once shown.
    labels_changed()
        The queue closed after labels were given or undone: read the dataset again.
    """

    opened = Signal(object)
    labels_changed = Signal()

    def __init__(self, session, parent: QWidget) -> None:
        super().__init__(parent)
        self.session = session
        self.task = None
        self.dialog: SuggestQueue | None = None
        session.closing.connect(self.cancel)

    def start(self, root: str, pool: str, **kwargs):
        """Rank ``pool`` for the dataset ``root``; returns the task (attach it to a task strip)."""
        kwargs.setdefault("run", run_for(self.session))
        self._root = str(root)
        self.task = start_task(suggest_in_child, self._root, str(pool), on_returned=self._on_returned, **kwargs)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_returned(self, suggestions) -> None:
        parent = self.parent() if isinstance(self.parent(), QWidget) else None
        self.dialog = SuggestQueue(suggestions, AddedLabels.for_dataset(self._root), parent)
        self.dialog.finished.connect(self._on_closed)
        self.dialog.show()
        self.opened.emit(self.dialog)

    def _on_closed(self, _result: int) -> None:
        if self.dialog is not None and self.dialog.changed:
            self.labels_changed.emit()
