"""Step 1, Data: choose or drop a dataset folder, scan and check it off the GUI thread, show classes and findings.

What was found is said in the data's own terms ("240 tiles, 13 bands, uint16"; "36 studies, 1,152
slices, 12 patients"). A multi-band dataset shows a band picker (the bands the model uses, the three
shown as R, G, B); a dataset of volumes shows how studies are cut into slices (a change rescans).
Both choices go to the session's :class:`TrainConfig`. The generated samples (multispectral tiles,
MRI volumes) are made here on first use, off the GUI thread.
"""

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
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.thumbnails import read_thumbnail
from cnn_studio.ui.widgets.band_picker import BandPicker
from cnn_studio.ui.widgets.drop_zone import DropZone
from cnn_studio.ui.widgets.findings_view import FindingsView
from cnn_studio.ui.widgets.slice_settings import SliceSettings
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
    QMenu,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import StudioError
from cnn_studio.data.prepare import Prepared, PrepareOptions, prepare
from cnn_studio.data.records import DatasetIndex, VolumeSlicing
from cnn_studio.data.sample import (
    GENERATED_SAMPLES,
    generated_sample,
    is_generated,
    is_sample_path,
    sample_dataset_path,
)
from cnn_studio.data.split import SEED, TEST_FRACTION, VAL_FRACTION

EXAMPLES_PER_CLASS = 5


def load_thumbnails(groups: list[list[str]], size: int = THUMB, rgb: tuple[int, ...] | None = None, *,
                    sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> list[list[QImage]]:
    """Read small thumbnails (scaled reads, worker thread): one list of QImages per group of record keys
    (a file, or a slice of a volume: ``path#slice=AXIS:INDEX``); ``rgb``: the bands a multi-band file
    shows as red, green and blue."""
    out = []
    for paths in groups:
        raise_if_cancelled(cancel)
        out.append([read_thumbnail(p, size * 2, rgb) for p in paths])
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
        self.suggest_button = QPushButton("Suggest images to label…")
        self.suggest_button.setToolTip("Choose a folder of unlabelled images: CNN Studio ranks them by what would "
                                       "teach the model most, and you label them with a key press. Your files are "
                                       "never moved or changed.")
        self.suggest_button.setEnabled(False)
        self.suggest_button.clicked.connect(self._on_suggest_clicked)
        session.dataset_changed.connect(lambda: self.suggest_button.setEnabled(session.index is not None))
        self._suggest_run = None
        self.choose_button.clicked.connect(self._on_choose_clicked)
        self.csv_button.clicked.connect(self._on_csv_clicked)
        self.sample_button.clicked.connect(self.open_sample)
        self.generated_button = QPushButton("More samples ▾")
        self.generated_button.setToolTip("Datasets made on this computer (no download): multispectral satellite "
                                         "tiles with 13 bands, and MRI volumes grouped into studies and patients.")
        self.generated_menu = QMenu(self.generated_button)
        for kind, sample in GENERATED_SAMPLES.items():
            action = self.generated_menu.addAction(sample.title, lambda k=kind: self.open_generated_sample(k))
            action.setToolTip(sample.description)
            action.setStatusTip(sample.description)
        self.generated_menu.setToolTipsVisible(True)
        self.generated_button.setMenu(self.generated_menu)
        self._sample_task = None
        buttons = QHBoxLayout()
        for b in (self.choose_button, self.csv_button, self.sample_button, self.generated_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.suggest_button)
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

        self.band_picker = BandPicker()
        self.band_picker.setVisible(False)
        self.band_picker.changed.connect(self._on_bands_changed)
        self.slice_settings = SliceSettings()
        self.slice_settings.setVisible(False)
        self.slice_settings.changed.connect(self._on_slicing_changed)

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
        ll.addWidget(self.band_picker)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("<b>What the check found</b>"))
        rl.addWidget(self.findings_list, 1)
        rl.addWidget(self.slice_settings)
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
        return self._task is not None or self._sample_task is not None

    @property
    def can_continue(self) -> bool:
        return self.next_button.isEnabled()

    def open_sample(self) -> None:
        """Scan the bundled sample dataset."""

        self.open_dataset(sample_dataset_path())

    def open_dataset(self, path: str | Path) -> None:
        """Scan and check ``path`` (a folder or a .csv manifest) on a worker thread."""

        path = Path(path)
        if not is_sample_path(path):  # the dialogs open next to what the user chose last
            self._last_dir = path.parent
        self._start(path, f"Reading {path.name}…")

    def open_generated_sample(self, kind: str) -> None:
        """Open a generated sample ("multiband" or "volumes"), making it first (a few seconds, worker thread)."""

        if self._sample_task is not None:
            self._sample_task.cancel()
        sample = GENERATED_SAMPLES[kind]
        task = start_task(generated_sample, kind, on_returned=self.open_dataset,
                          on_errored=self._on_sample_errored)
        task.signals.finished.connect(lambda t=task: self._on_sample_finished(t))
        self._sample_task = task
        status = (f"Opening the {sample.title.lower()}…" if is_generated(kind) else
                  f"Making the {sample.title.lower()} (only the first time; a few seconds)…")
        self.task_strip.attach(task, status)

    def _on_sample_finished(self, task) -> None:
        if self._sample_task is task:
            self._sample_task = None

    def _on_sample_errored(self, exc: BaseException) -> None:
        msg = describe_error(exc)
        self._show_banner(f"The sample dataset could not be made: {msg.text}",
                          msg.hint or "Check that the app data folder can be written to, then try again.", "error")

    def dialog_folder(self) -> str:
        """Where the folder and CSV dialogs open: beside the last dataset chosen, else the home folder
        (never the folder the app was started from, e.g. its install folder)."""
        if self._last_dir is not None and self._last_dir.is_dir():
            return str(self._last_dir)
        return str(Path.home())

    def split_settings(self) -> dict:
        """The split settings the page shows, as :class:`cnn_studio.data.prepare.PrepareOptions` takes them."""
        return {"val_fraction": self.val_spin.value() / 100, "test_fraction": self.test_spin.value() / 100,
                "seed": self.seed_spin.value(), "group_by": None}

    def slicing(self) -> VolumeSlicing:
        """How volumes are cut into slices: the session's settings (the Train step uses the same)."""
        return self.session.config.slicing

    def cancel(self) -> None:
        for task in (self._task, self._thumb_task, self._sample_task):
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
        self.band_picker.setVisible(False)
        self.slice_settings.setVisible(False)
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
        task = start_task(prepare, source, PrepareOptions(**self.split_settings(), slicing=self.slicing()),
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
        self.summary.setText(summary_html(result))
        self._show_data_kind(result)
        first = result.first_error
        if first is not None:
            self._show_banner(describe_finding(first).text, first.hint, "error")
        self.session.set_dataset(result.index, result.findings, result.report)
        if result.index.bands:
            self.session.set_bands(self.band_picker.selected_bands(), self.band_picker.rgb_bands())
        else:
            self.session.set_bands((), ())
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
        self.band_picker.setVisible(False)
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

    # ---------------------------------------------------------------- bands and slices
    def _show_data_kind(self, result: Prepared) -> None:
        """Show the band picker for multi-band arrays and the slice settings for volumes (hide otherwise)."""
        index, report = result.index, result.report
        if index.bands:
            config = self.session.config
            same = self.band_picker.band_count == index.bands and self.band_picker.isVisible()
            bands = self.band_picker.checked_bands() if same else config.bands
            rgb = self.band_picker.rgb_bands() if same else config.rgb_bands
            ranges = [(r["min"], r["max"]) for r in (report.band_ranges if report is not None else [])]
            self.band_picker.set_bands(index.bands, index.band_names, report.dtype if report is not None else "",
                                       ranges, bands=bands, rgb_bands=rgb)
        self.band_picker.setVisible(bool(index.bands))
        if index.studies:
            self.slice_settings.set_value(self.session.config.slice_axis, self.session.config.slices)
        self.slice_settings.setVisible(bool(index.studies))

    def _on_bands_changed(self) -> None:
        """The user ticked a band or chose other R, G, B bands: the Train step uses them."""
        problem = self.band_picker.problem_text()
        if problem:
            self.next_button.setEnabled(False)
            self.next_button.setToolTip(problem)
            return
        self.session.set_bands(self.band_picker.selected_bands(), self.band_picker.rgb_bands())
        self.next_button.setEnabled(self.session.split is not None)
        self.next_button.setToolTip("")
        if self._index is not None:
            self._load_thumbnails(self._index)  # the pictures show the chosen R, G, B bands

    def _on_slicing_changed(self) -> None:
        """Another axis or other slices: store them and read the volumes again (the split changes)."""
        axis, slices = self.slice_settings.value()
        self.session.set_slicing(axis, slices)
        if self._index is not None:
            self._start(Path(self._index.root), "Cutting the volumes into slices again…")

    # ---------------------------------------------------------------- display
    def _show_banner(self, text: str, hint: str, severity: str) -> None:
        colour = severity_colour(severity).name()
        self.banner.setText(f"<b style='color:{colour}'>{escape(text)}</b>" +
                            (f"<br>What to do: {escape(hint)}" if hint else ""))
        self.banner.setProperty("severity", severity)
        self.banner.setVisible(True)

    def _load_thumbnails(self, index: DatasetIndex) -> None:
        groups: list[list[str]] = [[] for _ in index.class_names]
        for r in _examples(index):
            if len(groups[r.label]) < EXAMPLES_PER_CLASS:
                groups[r.label].append(r.key)
        rgb = self.band_picker.rgb_bands() if index.bands else None
        if self._thumb_task is not None:
            self._thumb_task.cancel()
        task = start_task(load_thumbnails, groups, THUMB, rgb, on_returned=self._on_thumbnails_returned)
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
        from cnn_studio.ui.review_queue import LabelCheck

        index = self.session.index
        if index is None:
            return
        if self._label_check is not None:
            self._label_check.cancel()
        check = LabelCheck(self.session, self)
        check.corrections_changed.connect(lambda root=index.root: self.open_dataset(root))
        self._label_check = check
        task = check.start(index.root)  # the Model step's backbone and weights (see label_check_choice)
        how = f" ({check.describe})" if check.describe else ""
        self.task_strip.attach(task, f"Looking for images whose label looks wrong{how}…")

    def _on_suggest_clicked(self) -> None:
        """Ask for the folder of unlabelled images, rank them off the GUI thread, open the suggestion queue."""
        index = self.session.index
        if index is None:
            return
        pool = QFileDialog.getExistingDirectory(self, "Choose the folder of unlabelled images", self.dialog_folder())
        if pool:
            self.suggest_images(pool)

    def suggest_images(self, pool: str | Path, **kwargs):
        """Rank ``pool`` for the current dataset and open the queue; the dataset is read again after labelling."""
        from cnn_studio.ui.suggest_queue import SuggestRun

        index = self.session.index
        if self._suggest_run is not None:
            self._suggest_run.cancel()
        run = SuggestRun(self.session, self)
        run.labels_changed.connect(lambda root=index.root: self.open_dataset(root))
        self._suggest_run = run
        self.task_strip.attach(run.start(index.root, str(pool), **kwargs), "Ranking the images to label next…")
        return run

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


def summary_html(result: Prepared) -> str:
    """The line above the class table: what was found ("240 tiles, 13 bands, uint16"; "36 studies, 1,152
    slices, 12 patients"; "16 images"), in how many classes, how it is divided, what was skipped."""
    index, report, split = result.index, result.report, result.split
    counts = index.counts()
    n = sum(counts.values())
    found = report.headline() if report is not None else f"{n:,} images"
    parts = [f"<b>{escape(found)}</b> in <b>{len(counts)} classes</b> from <code>{escape(index.root)}</code>"]
    if split is not None:
        unit = report.unit if report is not None else "image"
        if index.studies:
            def studies(recs) -> str:
                k = len({r.study for r in recs if r.study})
                return f"{len(recs):,} slices ({k:,} {'study' if k == 1 else 'studies'})"
            parts.append(f"{studies(split.train)} to train on, {studies(split.val)} to validate"
                         + (f", {studies(split.test)} to test" if split.test else ""))
        else:
            word = "" if unit == "image" else f" {unit}s"
            parts.append(f"{len(split.train):,}{word} to train on, {len(split.val):,} to validate"
                         + (f", {len(split.test):,} to test" if split.test else ""))
    if index.skipped:
        parts.append(f"{len(index.skipped):,} file(s) skipped (listed on the right)")
    return " · ".join(parts)


def _examples(index: DatasetIndex):
    """Records to show as examples: for volumes the middle slice of each study (its first slice is often
    near-empty), else the records in order."""
    if not index.studies:
        return index.records
    by_study: dict[str, list] = {}
    for r in index.records:
        by_study.setdefault(r.study or r.path, []).append(r)
    return [recs[len(recs) // 2] for recs in by_study.values()]


def _percent_spin(value: int, lo: int, hi: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setSuffix(" %")
    spin.setToolTip(tip)
    return spin


def _icon_size():
    return QSize(5 * (THUMB + 3), THUMB)
