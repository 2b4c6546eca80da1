"""Step 4, Evaluate: how good is the model, where does it go wrong, and how robust is it?

All model work (evaluation, robustness, the architecture table) runs in engine tasks; this page
only shows their results. Results are stored in the run folder (metrics.json, robustness.json),
so reopening a project shows them at once. The confusion-matrix cell view can relabel, exclude or
keep an image (:class:`~cnn_studio.ui.widgets.label_actions.LabelActions`, the review queue's
corrections file); when the user leaves the step after such a decision, ``corrections_changed(root)``
asks for the dataset to be read again, so the next training uses the corrected labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from cnn_studio.ui.messages import show_error
from cnn_studio.ui.qmodels.metrics_table import MetricsTableModel
from cnn_studio.ui.qmodels.rows import sortable
from cnn_studio.ui.widgets.confusion_matrix import ConfusionMatrix, legend_html
from cnn_studio.ui.widgets.image_grid import PATH_ROLE, ImageGrid, array_to_pixmap
from cnn_studio.ui.widgets.label_actions import MARKS, LabelActions
from cnn_studio.ui.widgets.notice_banner import NoticeBanner, boxed_thumbnail, shortcut_captions
from cnn_studio.ui.widgets.reliability_view import ReliabilityView
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.widgets.study_results import StudyResults, study_headline
from cnn_studio.ui.widgets.task_strip import TaskStrip
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout, job_log
from cnn_studio.data.bands import read_run_bands
from cnn_studio.data.records import display_name
from cnn_studio.evaluation.evaluate import load_metrics
from cnn_studio.evaluation.intervals import describe
from cnn_studio.explain.architecture import shape_text as text
from cnn_studio.labels.corrections import Corrections

INTRO = ("Here the trained model is tested on images it never saw while learning (the test images, or "
         "the validation images when there is no test set). Click a cell of the confusion matrix to see "
         "which images were confused, and check the robustness tab before trusting the model on new data.")


# ---------------------------------------------------------------- engine calls run in tasks


def evaluate_or_load(run_dir, *, force: bool = False, sink, cancel):
    """metrics.json if present (and not ``force``), else a fresh evaluation (in a child process)."""

    if not force:
        metrics = load_metrics(run_dir)
        if metrics is not None:
            return metrics
    run_job("cnn_studio.evaluation.evaluate:evaluate_run", str(run_dir), sink=sink, cancel=cancel,
            log_path=job_log("evaluate", run_dir), label="evaluation")
    metrics = load_metrics(run_dir)
    if metrics is None:
        raise RunError(f"The evaluation finished but wrote no metrics.json in {run_dir}.",
                       "Check that the folder is writable, then press Evaluate again.")
    return metrics


def robustness_or_load(run_dir, *, force: bool = False, sink, cancel):
    """robustness.json if present (and not ``force``), else a fresh robustness check (as a dict)."""

    path = RunLayout(Path(run_dir)).robustness
    if not force and path.exists():
        report = read_json(path)
    else:
        report = run_job("cnn_studio.explain.robustness:run_robustness", str(run_dir), sink=sink, cancel=cancel,
                         log_path=job_log("robustness", run_dir), label="robustness check").to_dict()
    for ex in report.get("examples", []):  # pictures are stored relative to the run folder
        if ex.get("image") and not Path(ex["image"]).is_absolute():
            ex["image"] = str(Path(run_dir) / ex["image"])
    return report


def architecture_of(run_dir, *, sink, cancel):
    """(ArchitectureTable, first-layer filters tiled as a uint8 image or None), read in a child process.

    The model is loaded by :func:`cnn_studio.explain.views.architecture` in a one-shot child, so
    TensorFlow never loads in the app's process.
    """

    table, filters = run_job("cnn_studio.explain.views:architecture", str(run_dir), sink=sink, cancel=cancel,
                             log_path=job_log("architecture", run_dir), label="architecture")
    return table, tile_filters(filters) if filters is not None else None


def tile_filters(filters: np.ndarray, scale: int = 14, cols: int = 8) -> np.ndarray:
    """(N, k, k, 3) filters in [0, 1] → one uint8 image, each filter enlarged ``scale`` times."""
    n, k = filters.shape[0], filters.shape[1]
    cell = k * scale + 2
    rows = -(-n // cols)
    out = np.full((rows * cell, min(n, cols) * cell, 3), 255, np.uint8)
    for i, f in enumerate(filters):
        big = np.repeat(np.repeat(np.clip(f, 0, 1), scale, 0), scale, 1)
        r, c = divmod(i, cols)
        out[r * cell + 1 : r * cell + 1 + k * scale, c * cell + 1 : c * cell + 1 + k * scale] = (big * 255).astype(np.uint8)
    return out


def shape_text(shape) -> str:
    """A layer's output shape for the screen: (None, 32, 32, 16) → "32 × 32 × 16"."""

    return text(shape, " × ", "–")


def robustness_curves(report: dict) -> dict[str, tuple[list[float], list[float]]]:
    """{perturbation: (strength steps 0..n, accuracies)}; step 0 is the unchanged images' accuracy.

    Levels have different units per change (noise sigma, blur radius, JPEG quality...), so the
    plot's x axis is the step number, not the raw level.
    """
    clean = float(report.get("clean_accuracy", 0.0))
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for row in report.get("rows", []):
        xs, ys = curves.setdefault(row["perturbation"], ([0.0], [clean]))
        xs.append(float(len(xs)))
        ys.append(float(row["accuracy"]))
    return curves


def summary_html(metrics) -> str:
    """The headline figures, each as "value (95% CI lo–hi, n images)" or "too few images to tell"."""

    n, names = metrics.n_images, list(metrics.class_names)
    words = {"test": "test", "val": "validation"}.get(metrics.subset, metrics.subset)
    iv = metrics.intervals or {}
    if not iv:  # metrics from before intervals existed
        return (f"<b>The model is right {metrics.accuracy:.0%} of the time</b> on {n} {words} images it never "
                f"trained on ({len(names)} classes). Evaluate again to see how sure these numbers are.")
    acc = iv.get("accuracy") or {}
    head = (f"<b>The model is right {metrics.accuracy:.0%} of the time</b> on {n} {words} images it never trained "
            f"on ({len(names)} classes): ")
    if acc.get("verdict"):
        head += (f"<b>{acc['verdict']}</b> how good it really is ({n} images; a figure needs "
                 f"{iv.get('min_images', 10)}).")
    else:
        head += f"accuracy {describe(acc)}."
    parts = [head]
    top2 = (iv.get("top_k_accuracy") or {}).get("2")
    if top2 and len(names) > 2:
        parts.append(f"Right class among its top two guesses: {describe(top2)}.")
    auc = (iv.get("roc_auc") or {}).get("macro")
    if auc and auc.get("value") is not None:
        parts.append(f"Macro ROC AUC: {describe(auc)} (1.0 = perfect, 0.5 = guessing).")
    if metrics.skipped:
        parts.append(f"{len(metrics.skipped)} unreadable images were skipped.")
    parts.append(f"<span style='color:#6b7280'>In brackets: the 95% interval and the images behind the figure; "
                 f"{iv.get('rule', 'a figure needs 10 images')}.</span>")
    return " ".join(parts)


PLOT_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSortingEnabled(True)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _fill(table: QTableWidget, rows: list[list]) -> None:
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem()
            if isinstance(value, (int, float, np.floating, np.integer)):
                item.setData(Qt.ItemDataRole.DisplayRole, float(value) if isinstance(value, float) else int(value))
                if isinstance(value, float):
                    item.setText(f"{value:.3f}")
            else:
                item.setText(str(value))
                if len(str(value)) > 24:
                    item.setToolTip(str(value))  # a narrow column elides it
            table.setItem(r, c, item)
    table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # keep the given order
    table.setSortingEnabled(True)  # until the user clicks a column


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
        self.matrix = ConfusionMatrix()
        self.matrix.cell_chosen.connect(self._on_matrix_cell_chosen)
        self.matrix_legend = QLabel(legend_html())
        self.matrix_legend.setWordWrap(True)
        self.cell_label = QLabel("Click a cell to see its images.")
        self.cell_images = ImageGrid(80)
        self.cell_images.currentItemChanged.connect(self._on_cell_image_chosen)
        cm = QSplitter(Qt.Orientation.Horizontal)
        self.matrix_tab = cm
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.matrix, 1)
        ll.addWidget(self.matrix_legend)
        cm.addWidget(left)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.cell_label)
        rl.addWidget(self.cell_images, 1)
        self.label_actions = LabelActions(shortcut_scope=right)
        self.label_actions.decided.connect(self._on_label_decided)
        rl.addWidget(self.label_actions)
        cm.addWidget(right)
        cm.setSizes([420, 380])

        self.top_losses = ImageGrid(96)
        self.top_losses.setToolTip("The images the model got wrong with the most confidence: look for wrong "
                                   "labels in your data, or for what the model is missing.")

        self.robust_button = QPushButton("Run robustness check")
        self.robust_button.setToolTip("Measure accuracy when images get noisy, blurred, darker, compressed, or "
                                      "are changed on purpose to fool the network (FGSM). Takes a minute.")
        self.robust_button.clicked.connect(lambda: self.run_robustness(force=True))
        self.robust_text = QLabel("How much does accuracy drop when images are a little different from "
                                  "the training images? Run the check to find out.")
        self.robust_text.setWordWrap(True)
        self.robust_table = _table(["Change", "Strength", "Accuracy"])
        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.robust_plot = pg.PlotWidget(title="Accuracy as the change gets stronger")
        self.robust_plot.setLabel("bottom", "strength step (0 = unchanged)")
        self.robust_plot.setLabel("left", "accuracy")
        self.robust_plot.setYRange(0, 1)
        self.robust_plot.showGrid(x=True, y=True, alpha=0.25)
        self.robust_plot.addLegend(offset=(-10, -10))
        self.robust_plot.setMinimumHeight(200)
        self.robust_examples = ImageGrid(200)
        rob = QWidget()
        rlay = QVBoxLayout(rob)
        top = QHBoxLayout()
        top.addWidget(self.robust_text, 1)
        top.addWidget(self.robust_button)
        rlay.addLayout(top)
        mid = QSplitter(Qt.Orientation.Horizontal)
        mid.addWidget(self.robust_table)
        mid.addWidget(self.robust_plot)
        mid.setStretchFactor(0, 0)
        mid.setStretchFactor(1, 1)
        self.robust_table.setMinimumWidth(430)
        rlay.addWidget(mid, 2)
        rlay.addWidget(QLabel("Adversarial examples: original | changed | the change, magnified"))
        rlay.addWidget(self.robust_examples, 1)

        self.arch_text = QLabel("Every layer of the network, with how many numbers (parameters) it learns. "
                                "A convolution re-uses one small kernel at every position of the image, "
                                "which is why it needs so few parameters.")
        self.arch_text.setWordWrap(True)
        self.arch_text.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.arch_table = _table(["Layer", "Type", "Output (h × w × maps)", "Parameters", "Trainable", "Note"])
        self.filters = QLabel()
        self.filters.setToolTip("The first layer's filters: the small colour patterns the network looks for first.")
        arch = QWidget()
        alay = QVBoxLayout(arch)
        alay.addWidget(self.arch_text)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.arch_table)
        filters_box = QWidget()
        fl = QVBoxLayout(filters_box)
        fl.setContentsMargins(6, 0, 0, 0)
        filters_caption = QLabel("<b>First layer's filters</b>, enlarged: the small colour patterns the network "
                                 "looks for first. The same few filters slide over the whole image.")
        filters_caption.setWordWrap(True)
        fl.addWidget(filters_caption)
        fl.addWidget(self.filters)
        fl.addStretch(1)
        split.addWidget(filters_box)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        self.filters.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.filters.setWordWrap(True)
        alay.addWidget(split, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(cm, "Confusion matrix")
        self.tabs.addTab(self.top_losses, "Most confident mistakes")
        self.tabs.addTab(self.reliability, "Confidence (calibration)")
        self.tabs.addTab(rob, "Robustness")
        self.tabs.addTab(arch, "Architecture")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.study_view = StudyResults()  # a "Per study" tab after the confusion matrix, for volumes only

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
        self._set_enabled(False)
        session.run_changed.connect(self._on_session_run_changed)
        session.dataset_changed.connect(self._load_corrections)
        session.closing.connect(self.shutdown)
        # made after a run or dataset was opened (the window builds steps when first opened): start from them
        if session.run_dir is not None:
            self._on_session_run_changed()
        if session.dataset_path is not None:
            self._load_corrections()

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
        self.robust_table.setRowCount(0)
        self.robust_plot.clear()
        self.robust_examples.clear()
        self.arch_table.setRowCount(0)
        self.filters.clear()
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
                                             "warning", list(sc.get("examples", []))[:6], box=sc.get("box"),
                                             resize=sc.get("resize", "stretch"), captions=shortcut_captions(sc))
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
        units = report.get("units", {})
        clean = report.get("clean_accuracy", 0.0)
        worst = min(report.get("rows", []), key=lambda r: r["accuracy"], default=None)
        text = f"Accuracy on {report.get('n_images', 0)} unchanged images: <b>{clean:.0%}</b>."
        if worst is not None:
            text += (f" Worst case: {worst['perturbation']} at {worst['level']} "
                     f"{units.get(worst['perturbation'], '')} → {worst['accuracy']:.0%}.")
        self.robust_text.setText(text + " " + report.get("epsilon_note", ""))
        _fill(self.robust_table, [[r["perturbation"], f"{r['level']} {units.get(r['perturbation'], '')}".strip(),
                                   float(r["accuracy"])] for r in report.get("rows", [])])
        self.robust_plot.clear()
        for i, (name, (xs, ys)) in enumerate(robustness_curves(report).items()):
            colour = PLOT_COLOURS[i % len(PLOT_COLOURS)]
            self.robust_plot.plot(xs, ys, name=name, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6,
                                  symbolBrush=colour)
        self.robust_examples.clear()
        for ex in report.get("examples", []):
            image = ex.get("image") or ex.get("path")
            self.robust_examples.add_image(image, f"{ex['clean_pred']} → {ex['adv_pred']} (ε {ex['epsilon']:g})",
                                           f"A '{ex['true']}' image: changing each pixel by at most "
                                           f"{ex['epsilon']:g} × 255 made the network change its answer from "
                                           f"'{ex['clean_pred']}' to '{ex['adv_pred']}'.")

    def _on_architecture_returned(self, result) -> None:
        table, filters = result
        _fill(self.arch_table, [[r.name, r.type, shape_text(r.output_shape), int(r.params),
                                 "yes" if r.trainable else "no", r.note] for r in table.rows])
        self.arch_text.setText(f"{len(table.rows)} layers, {table.total:,} parameters ({table.trainable:,} "
                               f"trainable). A convolution re-uses one small kernel at every position of the "
                               f"image, which is why it needs so few parameters.")
        if filters is not None:
            self.filters.setPixmap(array_to_pixmap(filters))
        else:
            self.filters.setText("The first layer's filters cannot be drawn for this network "
                                 "(they are not 3-channel colour filters).")
