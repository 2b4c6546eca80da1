"""Step 1, Data: choose or drop a dataset folder, scan and check it off the GUI thread, show classes and findings."""

from __future__ import annotations

from html import escape
from pathlib import Path

from cnn_studio.ui.messages import (
    describe_error,
    describe_finding,
    severity_colour,
    show_error,
)
from cnn_studio.ui.qmodels.class_table import THUMB, ClassTableModel
from cnn_studio.ui.review_queue import LabelCheck
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.thumbnails import read_thumbnail
from cnn_studio.ui.widgets.drop_zone import DropZone
from cnn_studio.ui.widgets.findings_view import FindingsView
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.widgets.task_strip import TaskStrip
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QSignalBlocker, QSize, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cnn_studio import events as ev
from cnn_studio.cancel import CancelToken, raise_if_cancelled
from cnn_studio.data.prepare import Prepared, prepare
from cnn_studio.data.records import DatasetIndex
from cnn_studio.data.split import SEED, TEST_FRACTION, VAL_FRACTION
from cnn_studio.errors import StudioError
from cnn_studio.sample import sample_dataset_path

EXAMPLES_PER_CLASS = 5


def load_thumbnails(groups: list[list[str]], size: int = THUMB, *, sink: ev.EventSink = ev.null_sink,
                    cancel: CancelToken | None = None) -> list[list[QImage]]:
    """Read small thumbnails (scaled reads, worker thread): one list of QImages per group of paths."""
    out = []
    for paths in groups:
        raise_if_cancelled(cancel)
        out.append([read_thumbnail(p, size * 2) for p in paths])
    return out


class DataPage(QWidget):
    """Choose a dataset; the page scans, splits and checks it and tells the session.

    Signals
    -------
    continue_requested()
        "Next: choose a model" was clicked.
    check_finished(bool)
        A scan/check ended; True when the dataset can be trained on.
    """

    continue_requested = Signal()
    check_finished = Signal(bool)

    def __init__(self, session: StudioSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._task = None
        self._thumb_task = None
        self._index: DatasetIndex | None = None
        self._last_dir: Path | None = None  # where the folder dialogs open (else the home folder)

        header = StepHeader(
            "1. Data — the images to learn from",
            "Put your images into <b>one folder per class</b> (e.g. <i>leaves/healthy</i>, "
            "<i>leaves/rust</i>) and choose or drop the parent folder here. CNN Studio reads the "
            "images, checks them for problems and keeps some aside to measure how well the model "
            "does on images it has not seen.")
        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.setToolTip("The folder that holds one sub-folder per class.")
        self.csv_button = QPushButton("Open CSV manifest…")
        self.csv_button.setToolTip("A .csv file with the columns path,label (and optionally split or group).")
        self.sample_button = QPushButton("Use sample dataset")
        self.sample_button.setToolTip("Small handwritten digits bundled with CNN Studio: try everything in a minute.")
        self.issues_button = QPushButton("Find label issues…")
        self.issues_button.setToolTip("Look for images whose label looks wrong (and near-duplicates), then review "
                                      "them: relabel, exclude or keep. Your files are never moved or deleted.")
        self.issues_button.setEnabled(False)
        self.issues_button.clicked.connect(self._on_label_issues_clicked)
        session.dataset_changed.connect(lambda: self.issues_button.setEnabled(session.index is not None))
        self._label_check = None
        self.choose_button.clicked.connect(self._on_choose_clicked)
        self.csv_button.clicked.connect(self._on_csv_clicked)
        self.sample_button.clicked.connect(self.open_sample)
        buttons = QHBoxLayout()
        for b in (self.choose_button, self.csv_button, self.sample_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.issues_button)

        self.drop_zone = DropZone("Drop a dataset folder (or a .csv manifest) here", accept="folders")
        self.drop_zone.setMaximumHeight(80)
        self.drop_zone.paths_dropped.connect(lambda paths: self.open_dataset(paths[0]))
        self.drop_zone.clicked.connect(self._on_choose_clicked)
        self.task_strip = TaskStrip()
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.summary = QLabel("No dataset yet.")
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)

        self.class_model = ClassTableModel(self)
        self.class_table = QTableView()
        self.class_table.setModel(self.class_model)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.class_table.setIconSize(_icon_size())
        hh = self.class_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(5, QHeaderView.ResizeMode.ResizeToContents)

        self.findings_list = FindingsView()

        split_box = QGroupBox("How the images are divided")
        form = QFormLayout(split_box)
        self.val_spin = _percent_spin(round(VAL_FRACTION * 100), 5, 50, "Share of each class held back to check progress while training.")
        self.test_spin = _percent_spin(round(TEST_FRACTION * 100), 0, 40, "Share of each class kept aside, untouched, for the final "
                                                 "evaluation. 0 = evaluate on the validation images.")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(SEED)
        self.seed_spin.setToolTip("Same number = same division of images, so results can be repeated.")
        form.addRow("Validation", self.val_spin)
        form.addRow("Test", self.test_spin)
        form.addRow("Random seed", self.seed_spin)
        self._resplit_timer = QTimer(self, singleShot=True, interval=400)
        self._resplit_timer.timeout.connect(self._resplit)
        for spin in (self.val_spin, self.test_spin, self.seed_spin):
            spin.valueChanged.connect(self._on_split_setting_changed)

        self.next_button = QPushButton("Next: choose a model →")
        self.next_button.setObjectName("primary")
        self.next_button.setEnabled(False)
        self.next_button.setToolTip("Available once a dataset without errors is loaded.")
        self.next_button.clicked.connect(self.continue_requested)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("<b>Classes</b>"))
        ll.addWidget(self.class_table, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("<b>What the check found</b>"))
        rl.addWidget(self.findings_list, 1)
        rl.addWidget(split_box)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        lay = QVBoxLayout(self)
        lay.addWidget(header)
        lay.addLayout(buttons)
        lay.addWidget(self.drop_zone)
        lay.addWidget(self.task_strip)
        lay.addWidget(self.banner)
        lay.addWidget(self.summary)
        lay.addWidget(splitter, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.next_button)
        lay.addLayout(bottom)

        session.project_opened.connect(self._on_session_project_opened)
        session.closing.connect(self.shutdown)

    # ---------------------------------------------------------------- public
    @property
    def busy(self) -> bool:
        return self._task is not None

    @property
    def can_continue(self) -> bool:
        return self.next_button.isEnabled()

    def open_sample(self) -> None:
        """Scan the bundled sample dataset."""

        self.open_dataset(sample_dataset_path())

    def open_dataset(self, path: str | Path) -> None:
        """Scan and check ``path`` (a folder or a .csv manifest) on a worker thread."""

        path = Path(path)
        if path != Path(sample_dataset_path()):  # the dialogs open next to what the user chose last
            self._last_dir = path.parent
        self._start(path, f"Reading {path.name}…")

    def dialog_folder(self) -> str:
        """Where the folder and CSV dialogs open: beside the last dataset chosen, else the home folder
        (never the folder the app was started from, e.g. its install folder)."""
        if self._last_dir is not None and self._last_dir.is_dir():
            return str(self._last_dir)
        return str(Path.home())

    def split_settings(self) -> dict:
        """The split settings the page shows, as :func:`cnn_studio.data.prepare.prepare` takes them."""
        return {"val_fraction": self.val_spin.value() / 100, "test_fraction": self.test_spin.value() / 100,
                "seed": self.seed_spin.value(), "group_by": None}

    def cancel(self) -> None:
        for task in (self._task, self._thumb_task):
            if task is not None:
                task.cancel()

    def shutdown(self) -> None:
        """The app is quitting (``session.closing``): stop scanning and re-splitting."""
        self._resplit_timer.stop()
        self.cancel()

    # ---------------------------------------------------------------- session → page
    def _on_session_project_opened(self) -> None:
        """Another project replaced this one: forget the old dataset, show the new project's split
        settings and read its dataset (if it is still there)."""
        self.cancel()
        self._resplit_timer.stop()
        self._index = None
        self.class_model.set_index(None)
        self.findings_list.clear()
        self.banner.setVisible(False)
        self.summary.setText("No dataset yet.")
        self.next_button.setEnabled(False)
        split = self.session.split
        if split is not None:
            for spin, value in ((self.val_spin, round(split.val_fraction * 100)),
                                (self.test_spin, round(split.test_fraction * 100)), (self.seed_spin, split.seed)):
                with QSignalBlocker(spin):
                    spin.setValue(value)
        path = self.session.dataset_path
        if path and Path(path).exists():
            self.open_dataset(path)

    # ---------------------------------------------------------------- scanning
    def _start(self, source: Path | DatasetIndex, status: str) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._thumb_task is not None:
            self._thumb_task.cancel()
        self.banner.setVisible(False)
        self.next_button.setEnabled(False)
        task = start_task(prepare, source, **self.split_settings(),
                          on_returned=self._on_check_returned, on_errored=self._on_check_errored,
                          on_cancelled=self._on_check_cancelled)
        task.signals.finished.connect(lambda t=task: self._on_check_finished(t))
        self._task = task
        self.task_strip.attach(task, status)

    def _on_check_finished(self, task) -> None:
        if self._task is task:
            self._task = None

    def _on_check_returned(self, result: Prepared) -> None:
        if not self._is_current():
            return
        self._index = result.index
        self.class_model.set_index(result.index, result.split)
        self.class_table.resizeColumnsToContents()
        self.findings_list.show_findings(result.findings, root=result.index.root, skipped=result.index.skipped,
                                         notes=result.index.notes)
        blocked = not result.usable
        n_skipped = len(result.index.skipped)
        counts = result.index.counts()
        parts = [f"<b>{sum(counts.values()):,} images</b> in <b>{len(counts)} classes</b> from "
                 f"<code>{result.index.root}</code>"]
        if result.split is not None:
            parts.append(f"{len(result.split.train):,} to train on, {len(result.split.val):,} to validate"
                         + (f", {len(result.split.test):,} to test" if result.split.test else ""))
        if n_skipped:
            parts.append(f"{n_skipped:,} file(s) skipped (listed on the right)")
        self.summary.setText(" · ".join(parts))
        first = result.first_error
        if first is not None:
            self._show_banner(describe_finding(first).text, first.hint, "error")
        self.session.set_dataset(result.index, result.findings, result.report)
        self.session.set_split(None if blocked else result.split)
        self.next_button.setEnabled(not blocked)
        self.next_button.setToolTip("Fix the errors listed on the right first." if blocked else "")
        self._load_thumbnails(result.index)
        self.check_finished.emit(not blocked)

    def _is_current(self) -> bool:
        """False for signals of a scan that a newer one replaced."""
        sender = self.sender()
        return sender is None or self._task is None or sender is self._task.signals

    def _on_check_errored(self, exc: BaseException) -> None:
        if not self._is_current():
            return
        if not isinstance(exc, StudioError):
            show_error(self, exc)
        msg = describe_error(exc)
        self._show_banner(msg.text, msg.hint, "error")
        self.summary.setText("No usable dataset.")
        self.class_model.set_index(None)
        self.findings_list.clear()
        self.next_button.setEnabled(False)
        self.session.set_dataset(None, [], None)
        self.session.set_split(None)
        self.check_finished.emit(False)

    def _on_check_cancelled(self) -> None:
        if not self._is_current():
            return
        self._show_banner("Reading the dataset was stopped.", "Choose the folder again to start over.", "warning")
        self.next_button.setEnabled(self.session.split is not None)
        self.check_finished.emit(False)

    def _on_split_setting_changed(self) -> None:
        if self._index is not None:
            self._resplit_timer.start()

    def _resplit(self) -> None:
        if self._index is not None:
            self._start(self._index, "Dividing the images…")

    # ---------------------------------------------------------------- display
    def _show_banner(self, text: str, hint: str, severity: str) -> None:
        colour = severity_colour(severity).name()
        self.banner.setText(f"<b style='color:{colour}'>{escape(text)}</b>" +
                            (f"<br>What to do: {escape(hint)}" if hint else ""))
        self.banner.setProperty("severity", severity)
        self.banner.setVisible(True)

    def _load_thumbnails(self, index: DatasetIndex) -> None:
        groups: list[list[str]] = [[] for _ in index.class_names]
        for r in index.records:
            if len(groups[r.label]) < EXAMPLES_PER_CLASS:
                groups[r.label].append(r.path)
        task = start_task(load_thumbnails, groups, on_returned=self._on_thumbnails_returned)
        task.signals.finished.connect(lambda t=task: self._on_thumbs_finished(t))
        self._thumb_task = task

    def _on_thumbs_finished(self, task) -> None:
        if self._thumb_task is task:
            self._thumb_task = None

    def _on_thumbnails_returned(self, groups: list[list[QImage]]) -> None:
        if len(groups) != self.class_model.rowCount():
            return
        for row, images in enumerate(groups):
            self.class_model.set_thumbnails(row, images)
        self.class_table.resizeColumnToContents(5)

    # ---------------------------------------------------------------- label issues
    def _on_label_issues_clicked(self) -> None:
        """Run the label check off the GUI thread, then open the review queue; reread the data after it."""

        index = self.session.index
        if index is None:
            return
        if self._label_check is not None:
            self._label_check.cancel()
        check = LabelCheck(self.session, self)
        check.corrections_changed.connect(lambda root=index.root: self.open_dataset(root))
        self._label_check = check
        self.task_strip.attach(check.start(index.root), "Looking for images whose label looks wrong…")

    # ---------------------------------------------------------------- dialogs
    def _on_choose_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the dataset folder (one sub-folder per class)",
                                                self.dialog_folder())
        if path:
            self.open_dataset(path)

    def _on_csv_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a CSV manifest", self.dialog_folder(), "CSV files (*.csv)")
        if path:
            self.open_dataset(path)


def _percent_spin(value: int, lo: int, hi: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setSuffix(" %")
    spin.setToolTip(tip)
    return spin


def _icon_size():
    return QSize(5 * (THUMB + 3), THUMB)
