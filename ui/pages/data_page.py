"""Step 1, Data: choose or drop a dataset folder, scan and check it off the GUI thread, show classes and findings.

What was found is said in the data's own terms ("240 tiles, 13 bands, uint16"; "36 studies, 1,152
slices, 12 patients"). A multi-band dataset shows a band picker (the bands the model uses, the three
shown as R, G, B); a dataset of volumes shows how studies are cut into slices (a change rescans).
Both choices go to the session's :class:`TrainConfig`. The generated samples (multispectral tiles,
MRI volumes) are made here on first use, off the GUI thread. The panels are modules of their own
(``data_source_bar``, ``data_classes_panel``, ``data_split_box``, ``data_summary``, ``data_label_tools``).
"""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui.messages import describe_error, describe_finding, show_error
from cnn_studio.ui.pages import data_classes_panel, data_source_bar, data_split_box
from cnn_studio.ui.pages.data_classes_panel import ClassesPanel, load_thumbnails
from cnn_studio.ui.pages.data_label_tools import LabelTools
from cnn_studio.ui.pages.data_source_bar import DataSourceBar
from cnn_studio.ui.pages.data_split_box import SplitSettingsBox
from cnn_studio.ui.pages.data_summary import banner_html, summary_html
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.widgets.drop_zone import DropZone
from cnn_studio.ui.widgets.findings_view import FindingsView
from cnn_studio.ui.widgets.slice_settings import SliceSettings
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.widgets.task_strip import TaskStrip
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

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

__all__ = ["DataPage", "load_thumbnails", "summary_html"]


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
        self._index: DatasetIndex | None = None
        self._last_dir: Path | None = None  # where the folder dialogs open (else the home folder)
        self._sample_task = None

        header = StepHeader(
            "1. Data — the images to learn from",
            "Put your images into <b>one folder per class</b> (e.g. <i>leaves/healthy</i>, "
            "<i>leaves/rust</i>) and choose or drop the parent folder here. CNN Studio reads the "
            "images, checks them for problems and keeps some aside to measure how well the model "
            "does on images it has not seen.")
        self.task_strip = TaskStrip()
        self.label_tools = LabelTools(session, self, self.task_strip)
        self.label_tools.labels_changed.connect(self.open_dataset)
        self.source_bar = self._make_source_bar()
        self.drop_zone = DropZone("Drop a dataset folder (or a .csv manifest) here", accept="folders")
        self.drop_zone.setMaximumHeight(80)
        self.drop_zone.paths_dropped.connect(lambda paths: self.open_dataset(paths[0]))
        self.drop_zone.clicked.connect(self._on_choose_clicked)
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.summary = QLabel("No dataset yet.")
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        splitter = QSplitter()
        splitter.addWidget(self._make_classes_panel())
        splitter.addWidget(self._make_findings_column())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.next_button = QPushButton("Next: choose a model →")
        self.next_button.setObjectName("primary")
        self.next_button.setEnabled(False)
        self.next_button.setToolTip("Available once a dataset without errors is loaded.")
        self.next_button.clicked.connect(self.continue_requested)

        lay = QVBoxLayout(self)
        for widget in (header, self.source_bar, self.drop_zone, self.task_strip, self.banner, self.summary):
            lay.addWidget(widget)
        lay.addWidget(splitter, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.next_button)
        lay.addLayout(bottom)

        session.project_opened.connect(self._on_session_project_opened)
        session.closing.connect(self.shutdown)

    # ---------------------------------------------------------------- layout
    def _make_source_bar(self) -> DataSourceBar:
        """The buttons that choose a dataset, and the label tools (enabled once a dataset is loaded)."""
        bar = DataSourceBar()
        for name in data_source_bar.FIELDS:
            setattr(self, name, getattr(bar, name))
        bar.choose_button.clicked.connect(self._on_choose_clicked)
        bar.csv_button.clicked.connect(self._on_csv_clicked)
        bar.sample_button.clicked.connect(self.open_sample)
        bar.generated_sample_chosen.connect(self.open_generated_sample)
        bar.issues_button.clicked.connect(self.label_tools.find_label_issues)
        bar.suggest_button.clicked.connect(self._on_suggest_clicked)
        self.session.dataset_changed.connect(lambda: bar.set_dataset_loaded(self.session.index is not None))
        return bar

    def _make_classes_panel(self) -> ClassesPanel:
        """The class table with its thumbnails, and the band picker of a multi-band dataset."""
        self.classes_panel = ClassesPanel()
        for name in data_classes_panel.FIELDS:
            setattr(self, name, getattr(self.classes_panel, name))
        self.band_picker.changed.connect(self._on_bands_changed)
        return self.classes_panel

    def _make_findings_column(self) -> QWidget:
        """What the check found, how volumes are cut into slices, and how the images are divided."""
        self.findings_list = FindingsView()
        self.slice_settings = SliceSettings()
        self.slice_settings.setVisible(False)
        self.slice_settings.changed.connect(self._on_slicing_changed)
        self.split_box = SplitSettingsBox()
        for name in data_split_box.FIELDS:
            setattr(self, name, getattr(self.split_box, name))
        self._resplit_timer = QTimer(self, singleShot=True, interval=400)
        self._resplit_timer.timeout.connect(self._resplit)
        self.split_box.changed.connect(self._on_split_setting_changed)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("<b>What the check found</b>"))
        rl.addWidget(self.findings_list, 1)
        rl.addWidget(self.slice_settings)
        rl.addWidget(self.split_box)
        return right

    # ---------------------------------------------------------------- public
    @property
    def _thumb_task(self):
        """The classes panel's thumbnail reading (None when none is running)."""
        return self.classes_panel.thumb_task

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
        return self.split_box.settings()

    def slicing(self) -> VolumeSlicing:
        """How volumes are cut into slices: the session's settings (the Train step uses the same)."""
        return self.session.config.slicing

    def cancel(self) -> None:
        for task in (self._task, self._sample_task):
            if task is not None:
                task.cancel()
        self.classes_panel.cancel()

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
        self.classes_panel.show_index(None)
        self.findings_list.clear()
        self.banner.setVisible(False)
        self.summary.setText("No dataset yet.")
        self.band_picker.setVisible(False)
        self.slice_settings.setVisible(False)
        self.next_button.setEnabled(False)
        split = self.session.split
        if split is not None:
            self.split_box.show_split(split)
        path = self.session.dataset_path
        if path and Path(path).exists():
            self.open_dataset(path)

    # ---------------------------------------------------------------- scanning
    def _start(self, source: Path | DatasetIndex, status: str) -> None:
        if self._task is not None:
            self._task.cancel()
        self.classes_panel.cancel()
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
        self.classes_panel.show_index(result.index, result.split)
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
        self.classes_panel.load_thumbnails(result.index)
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
        self.classes_panel.show_index(None)
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
            self.classes_panel.load_thumbnails(self._index)  # the pictures show the chosen R, G, B bands

    def _on_slicing_changed(self) -> None:
        """Another axis or other slices: store them and read the volumes again (the split changes)."""
        axis, slices = self.slice_settings.value()
        self.session.set_slicing(axis, slices)
        if self._index is not None:
            self._start(Path(self._index.root), "Cutting the volumes into slices again…")

    # ---------------------------------------------------------------- display
    def _show_banner(self, text: str, hint: str, severity: str) -> None:
        self.banner.setText(banner_html(text, hint, severity))
        self.banner.setProperty("severity", severity)
        self.banner.setVisible(True)

    # ---------------------------------------------------------------- label tools
    def suggest_images(self, pool: str | Path, **kwargs):
        """Rank ``pool`` for the current dataset and open the queue; the dataset is read again after labelling."""
        return self.label_tools.suggest_images(pool, **kwargs)

    # ---------------------------------------------------------------- dialogs
    def _on_choose_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the dataset folder (one sub-folder per class)",
                                                self.dialog_folder())
        if path:
            self.open_dataset(path)

    def _on_suggest_clicked(self) -> None:
        """Ask for the folder of unlabelled images, rank them off the GUI thread, open the suggestion queue."""
        if self.session.index is None:
            return
        pool = QFileDialog.getExistingDirectory(self, "Choose the folder of unlabelled images", self.dialog_folder())
        if pool:
            self.suggest_images(pool)

    def _on_csv_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a CSV manifest", self.dialog_folder(), "CSV files (*.csv)")
        if path:
            self.open_dataset(path)
