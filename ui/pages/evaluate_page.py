"""Step 4, Evaluate: how good is the model, where does it go wrong, and how robust is it?

All model work (evaluation, robustness, the architecture table) runs in engine tasks; this page
only shows their results. Results are stored in the run folder (metrics.json, robustness.json),
so reopening a project shows them at once. The confusion-matrix cell view can relabel, exclude or
keep an image (:class:`~cnn_studio.ui.widgets.label_actions.LabelActions`, the review queue's
corrections file); when the user leaves the step after such a decision, ``corrections_changed(root)``
asks for the dataset to be read again, so the next training uses the corrected labels.

The tabs are panels of their own: :mod:`~cnn_studio.ui.pages.evaluate_matrix_panel`,
:mod:`~cnn_studio.ui.pages.evaluate_robustness_panel` and :mod:`~cnn_studio.ui.pages.evaluate_architecture_panel`
(their widgets are attributes of the page too); the engine calls are in :mod:`~cnn_studio.ui.pages.evaluate_results`.
"""

from __future__ import annotations

from cnn_studio.ui.messages import show_error
from cnn_studio.ui.pages import evaluate_architecture_panel, evaluate_matrix_panel, evaluate_robustness_panel
from cnn_studio.ui.pages.evaluate_architecture_panel import ArchitecturePanel, shape_text
from cnn_studio.ui.pages.evaluate_matrix_panel import MatrixPanel
from cnn_studio.ui.pages.evaluate_results import (
    architecture_of,
    evaluate_or_load,
    robustness_or_load,
    summary_html,
    tile_filters,
)
from cnn_studio.ui.pages.evaluate_robustness_panel import PLOT_COLOURS, RobustnessPanel, robustness_curves
from cnn_studio.ui.qmodels.metrics_table import MetricsTableModel
from cnn_studio.ui.qmodels.rows import sortable
from cnn_studio.ui.widgets.image_grid import PATH_ROLE, ImageGrid
from cnn_studio.ui.widgets.label_actions import MARKS
from cnn_studio.ui.widgets.notice_banner import NoticeBanner, boxed_thumbnail, shortcut_examples
from cnn_studio.ui.widgets.reliability_view import ReliabilityView
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.widgets.study_results import StudyResults, study_headline
from cnn_studio.ui.widgets.task_strip import TaskStrip
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.core.paths import RunLayout
from cnn_studio.data.bands import read_run_bands
from cnn_studio.data.records import display_name
from cnn_studio.labels.corrections import Corrections

__all__ = ["INTRO", "PLOT_COLOURS", "EvaluatePage", "architecture_of", "evaluate_or_load", "robustness_curves",
           "robustness_or_load", "shape_text", "summary_html", "tile_filters"]


INTRO = ("Here the trained model is tested on images it never saw while learning (the test images, or "
         "the validation images when there is no test set). Click a cell of the confusion matrix to see "
         "which images were confused, and check the robustness tab before trusting the model on new data.")


class EvaluatePage(QWidget):
    """Metrics per class, confusion matrix with its images, top losses, robustness, architecture.

    Signals
    -------
    corrections_changed(str)
        Labels were corrected from the cell view (the argument is the dataset's folder or CSV): read
        the dataset again. Sent when the user leaves this step, not at every decision.
    """

    corrections_changed = Signal(str)

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.metrics = None
        self._cell_true = -1
        self._cell_captions: dict[str, str] = {}
        self._corrected_root: str | None = None  # decisions made here since the dataset was last read
        self.robustness: dict | None = None
        self._task = None

        self.header = StepHeader("4. Evaluate — how good is the model?", INTRO)
        self.summary = QLabel("Train a model first: its results appear here.")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("summary")
        self.evaluate_button = QPushButton("Evaluate again")
        self.evaluate_button.setToolTip("Run the model on the test (or validation) images and recompute every number.")
        self.evaluate_button.clicked.connect(lambda: self.evaluate(force=True))
        self.strip = TaskStrip()
        self.chance_banner = NoticeBanner()
        self.shortcut_banner = NoticeBanner()
        self.shortcut_banner.example_activated.connect(self._on_shortcut_example_activated)
        self.example_dialog: QDialog | None = None
        self.reliability = ReliabilityView()
        self._make_per_class()
        self.matrix_tab = self._matrix_panel()
        self.top_losses = ImageGrid(96)
        self.top_losses.setToolTip("The images the model got wrong with the most confidence: look for wrong "
                                   "labels in your data, or for what the model is missing.")
        self.robustness_tab = RobustnessPanel()
        self.robustness_tab.robust_button.clicked.connect(lambda: self.run_robustness(force=True))
        self.architecture_tab = ArchitecturePanel()
        for panel, fields in ((self.robustness_tab, evaluate_robustness_panel.FIELDS),
                              (self.architecture_tab, evaluate_architecture_panel.FIELDS)):
            for name in fields:
                setattr(self, name, getattr(panel, name))
        self._make_tabs()
        self._lay_out()
        self._set_enabled(False)
        session.run_changed.connect(self._on_session_run_changed)
        session.dataset_changed.connect(self._load_corrections)
        session.closing.connect(self.shutdown)
        # made after a run or dataset was opened (the window builds steps when first opened): start from them
        if session.run_dir is not None:
            self._on_session_run_changed()
        if session.dataset_path is not None:
            self._load_corrections()

    def _make_per_class(self) -> None:
        self.metrics_model = MetricsTableModel(self)
        self.per_class = QTableView()
        self.per_class.setModel(sortable(self.metrics_model, self))
        self.per_class.setSortingEnabled(True)
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.per_class.horizontalHeader().setStretchLastSection(True)
        self.per_class.setToolTip("Precision: when the model says this class, how often it is right.\n"
                                  "Recall: of the images of this class, how many it found.\n"
                                  "F1: the balance of both. ROC AUC: 1.0 = perfect ranking, 0.5 = guessing.")

    def _matrix_panel(self) -> MatrixPanel:
        """The Confusion matrix tab, connected; its widgets become the page's attributes (``page.matrix``…)."""
        panel = MatrixPanel()
        for name in evaluate_matrix_panel.FIELDS:
            setattr(self, name, getattr(panel, name))
        self.matrix.cell_chosen.connect(self._on_matrix_cell_chosen)
        self.cell_images.currentItemChanged.connect(self._on_cell_image_chosen)
        self.label_actions.decided.connect(self._on_label_decided)
        return panel

    def _make_tabs(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(self.matrix_tab, "Confusion matrix")
        self.tabs.addTab(self.top_losses, "Most confident mistakes")
        self.tabs.addTab(self.reliability, "Confidence (calibration)")
        self.tabs.addTab(self.robustness_tab, "Robustness")
        self.tabs.addTab(self.architecture_tab, "Architecture")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.study_view = StudyResults()  # a "Per study" tab after the confusion matrix, for volumes only

    def _lay_out(self) -> None:
        lay = QVBoxLayout(self)
        lay.addWidget(self.header)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.evaluate_button)
        lay.addLayout(row)
        lay.addWidget(self.strip)
        lay.addWidget(self.chance_banner)
        lay.addWidget(self.shortcut_banner)
        lay.addWidget(self.tabs, 1)

    # ------------------------------------------------------------------ actions
    def _set_enabled(self, on: bool) -> None:
        self.evaluate_button.setEnabled(on)
        self.robust_button.setEnabled(on)

    def shutdown(self) -> None:
        """The window is closing: stop the running evaluation, robustness check or layer reading."""
        if self._task is not None:
            self._task.cancel()

    def _busy(self) -> bool:
        return self._task is not None and self._task.is_live

    def evaluate(self, force: bool = False):
        run = self.session.run_dir
        if run is None or self._busy():
            return None
        self._set_enabled(False)
        self._task = start_task(evaluate_or_load, run, force=force, on_returned=self._on_metrics_returned,
                                on_errored=self._on_task_errored, on_finished=self._on_task_finished)
        self.strip.attach(self._task, "Evaluating the model on images it has not seen…")
        return self._task

    def run_robustness(self, force: bool = False):
        run = self.session.run_dir
        if run is None or self._busy():
            return None
        self._set_enabled(False)
        self._task = start_task(robustness_or_load, run, force=force, on_returned=self._on_robustness_returned,
                                on_errored=self._on_task_errored, on_finished=self._on_task_finished)
        self.strip.attach(self._task, "Testing robustness…")
        return self._task

    def load_architecture(self):
        run = self.session.run_dir
        if run is None or self._busy():
            return None
        self._task = start_task(architecture_of, run, on_returned=self._on_architecture_returned,
                                on_errored=self._on_task_errored, on_finished=self._on_task_finished)
        self.strip.attach(self._task, "Reading the network's layers…")
        return self._task

    # ------------------------------------------------------------------ slots
    def _on_session_run_changed(self) -> None:
        self.metrics = None
        self.robustness = None
        self.metrics_model.clear()
        self.matrix.setRowCount(0)
        self.cell_images.clear()
        self.top_losses.clear()
        self.robustness_tab.clear()
        self.architecture_tab.clear()
        self.chance_banner.clear_notice()
        self.shortcut_banner.clear_notice()
        self.reliability.set_calibration(None)
        self._show_studies(None)
        if self.session.run_dir is None:
            self.summary.setText("Train a model first: its results appear here.")
            self._set_enabled(False)
            return
        self.summary.setText("Evaluating…")
        if self.isVisible():
            self.evaluate()

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Leaving the step after correcting labels: ask for the dataset to be read again."""
        super().hideEvent(event)
        root, self._corrected_root = self._corrected_root, None
        if root is not None:
            self.corrections_changed.emit(root)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self.session.run_dir is not None and self.metrics is None and not self._busy():
            self.evaluate()

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.tabText(index) == "Architecture" and self.arch_table.rowCount() == 0:
            self.load_architecture()
        if self.tabs.tabText(index) == "Robustness" and self.robustness is None and not self._busy():
            if self.session.run_dir is not None and RunLayout(self.session.run_dir).robustness.exists():
                self.run_robustness(force=False)

    def _on_task_errored(self, exc: BaseException) -> None:
        self.summary.setText("Something went wrong; see the message.")
        show_error(self, exc)

    def _on_task_finished(self) -> None:
        self._set_enabled(self.session.run_dir is not None)

    def _on_metrics_returned(self, metrics) -> None:
        self.metrics = metrics
        bands = read_run_bands(self.session.run_dir) if self.session.run_dir is not None else None
        for grid in (self.cell_images, self.top_losses):  # tiles drawn with the run's red, green, blue bands
            grid.rgb = bands.rgb if bands is not None else None
        names = list(metrics.class_names)
        self.summary.setText(summary_html(metrics))
        self._show_studies(metrics)
        self._show_notices(metrics)
        self.reliability.set_calibration(metrics.calibration)
        self.metrics_model.set_metrics(metrics.per_class, metrics.roc_auc, metrics.intervals)
        # class order, and no arrow, until the user clicks a column (the view's default, "descending by
        # class", showed the classes backwards under an arrow that did not say so)
        self.per_class.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.matrix.set_matrix(metrics.confusion, names)
        self.cell_label.setText("Click a cell to see its images.")  # the cell shown belonged to the last results
        self.cell_images.clear()
        self.label_actions.set_image(None, "")
        self._load_corrections()
        self.top_losses.clear()
        for t in metrics.top_losses:
            self.top_losses.add_image(t["path"], f"is {t['true']}\nsaid {t['predicted']} {t['confidence']:.0%}",
                                      f"{t['path']}\ntrue: {t['true']}, predicted: {t['predicted']} "
                                      f"({t['confidence']:.1%})")

    def _show_studies(self, metrics) -> None:
        """Study-level results (slices of volumes): the headline under the slice-level one, the "Per study" tab."""
        study = getattr(metrics, "study", None) or {}
        self.study_view.set_metrics(metrics if study else None)
        at = self.tabs.indexOf(self.study_view)
        if study:
            self.summary.setText(f"{self.summary.text()}<br><b>{study_headline(study)}</b>.")
            if at < 0:
                self.tabs.insertTab(self.tabs.indexOf(self.matrix_tab) + 1, self.study_view, "Per study")
        elif at >= 0:
            self.tabs.removeTab(at)

    def _show_notices(self, metrics) -> None:
        """The chance-level and shortcut banners (hidden when there is nothing to say)."""
        chance = metrics.chance or {}
        if chance.get("verdict") in ("not_better", "unproven"):
            title = ("Not better than guessing." if chance["verdict"] == "not_better" else
                     "Not shown to be better than guessing.")
            self.chance_banner.show_notice(title, chance.get("message", ""), chance.get("hint", ""), "warning")
        else:
            self.chance_banner.clear_notice()
        sc = metrics.shortcuts or {}
        if sc.get("suspected"):
            self.shortcut_banner.show_notice("Possible shortcut.", sc.get("message", ""), sc.get("hint", ""),
                                             "warning", shortcut_examples(sc))
        else:
            self.shortcut_banner.clear_notice()

    def _on_shortcut_example_activated(self, path: str) -> None:
        """Show one example of the suspected shortcut larger, in a window beside the page."""
        if self.example_dialog is None:
            self.example_dialog = QDialog(self)
            self.example_dialog.setWindowTitle("Example: where the model may take a shortcut")
            box = QVBoxLayout(self.example_dialog)
            self.example_picture = QLabel()
            self.example_picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.example_caption = QLabel()
            self.example_caption.setWordWrap(True)
            box.addWidget(self.example_picture, 1)
            box.addWidget(self.example_caption)
        banner = self.shortcut_banner
        self.example_picture.setPixmap(boxed_thumbnail(path, 384, banner.box, banner.resize))
        framed = " (framed in red)" if banner.box else ""
        self.example_caption.setText(f"{path}\nLook at the place the warning names{framed}: is there a marker, a "
                                     "label, a ruler or a border that gives the class away?")
        self.example_dialog.show()
        self.example_dialog.raise_()

    def _on_matrix_cell_chosen(self, true: int, pred: int) -> None:
        if self.metrics is None:
            return
        names = self.metrics.class_names
        paths = self.metrics.images_in_cell(true, pred)
        verb = "correctly classified as" if true == pred else "classified as"
        self.cell_label.setText(f"{len(paths)} images of '{names[true]}' {verb} '{names[pred]}'")
        self._cell_true = true
        self.label_actions.set_image(None, "")
        self.cell_images.clear()
        conf = {p["path"]: p["confidence"] for p in self.metrics.predictions}
        self._cell_captions = {p: f"{display_name(p)}\n{conf.get(p, 0):.0%}" for p in paths}
        for p in paths:
            self.cell_images.add_image(p, self._caption(p))
        if true != pred:  # a mistake's image is the one to choose a label for: its predicted class
            self.label_actions.target.setCurrentText(names[pred])

    # ------------------------------------------------------------------ label corrections (cell view)
    def _load_corrections(self) -> None:
        """The dataset's corrections file (the review queue's), or why the cell view cannot correct."""
        names = list(self.metrics.class_names) if self.metrics is not None else []
        root = self.session.dataset_path
        if root is None:
            self.label_actions.set_corrections(None, names, "To relabel, exclude or keep images here, open this "
                                               "run's dataset in the Data step.")
        else:
            self.label_actions.set_corrections(Corrections.for_dataset(root), names)
        for p in self._cell_captions:
            self._mark(p)

    def _caption(self, path: str) -> str:
        c = self.label_actions.corrections
        d = c.get(path) if c is not None else None
        if d is None:
            return self._cell_captions[path]
        name, _, confidence = self._cell_captions[path].partition("\n")  # the mark on the second line: the
        return f"{name}\n{MARKS[d.action]} {confidence}"  # name stays readable

    def _mark(self, path: str) -> None:
        for item in self.cell_images.items_for(path):
            item.setText(self._caption(path))

    def _on_cell_image_chosen(self, item, _previous=None) -> None:
        if item is None or self.metrics is None or self._cell_true < 0:
            self.label_actions.set_image(None, "")
            return
        self.label_actions.set_image(item.data(PATH_ROLE), self.metrics.class_names[self._cell_true])

    def _on_label_decided(self, decision) -> None:
        self._corrected_root = self.session.dataset_path
        shown = decision.path if decision.path in self._cell_captions else None
        if shown is None:  # an undo of an image of another cell
            return
        self._mark(shown)
        row = self.cell_images.row(self.cell_images.items_for(shown)[0])
        if shown != self.label_actions.path:  # an undo of another image: show that one
            self.cell_images.setCurrentRow(row)
        elif self.label_actions.corrections.get(shown) is decision and row + 1 < self.cell_images.count():
            self.cell_images.setCurrentRow(row + 1)  # decided: on to the next image

    def _on_robustness_returned(self, report: dict) -> None:
        self.robustness = report
        self.robustness_tab.show_report(report)

    def _on_architecture_returned(self, result) -> None:
        self.architecture_tab.show_architecture(result)
