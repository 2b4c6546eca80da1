"""Step 5, Classify: drop images or folders, see the top-3 labels, where the network looked, save a CSV.

The trained model is loaded once (in a task) and kept in a :class:`cnn_studio.predict.predictor.Classifier`
for every later drop. Grad-CAM overlays are computed in a task too; the opacity slider only
re-blends the cached, downscaled heat maps.

A multi-band tile shows the RGB composite of the bands the run shows as R, G, B. A NIfTI volume or
a folder holding a DICOM series is one *study*: it gets one answer (its slices' probabilities
aggregated as the run says), shown with the slice that drove it most; the tooltip names the slices
that drove it, and the heat map and the closer look explain that slice.

The page joins its parts: the controls (:mod:`~cnn_studio.ui.pages.classify_controls`), what runs off the
GUI thread (:mod:`~cnn_studio.ui.pages.classify_tasks`) and what the answers say
(:mod:`~cnn_studio.ui.pages.classify_captions`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from cnn_studio.ui.messages import show_error
from cnn_studio.ui.pages import classify_controls
from cnn_studio.ui.pages.classify_captions import caption, status_text, with_threshold
from cnn_studio.ui.pages.classify_controls import ClassifyControls
from cnn_studio.ui.pages.classify_tasks import classify_paths, gradcam_heatmaps
from cnn_studio.ui.pages.inspect_panel import InspectPanel
from cnn_studio.ui.qmodels.prediction_table import PATH_ROLE, PredictionTableModel
from cnn_studio.ui.qmodels.rows import sortable
from cnn_studio.ui.widgets.drop_zone import DropZone, local_paths
from cnn_studio.ui.widgets.image_grid import ImageGrid, array_to_pixmap, thumbnail
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.widgets.task_strip import TaskStrip
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.explain.gradcam import overlay
from cnn_studio.predict.predictor import write_csv

INTRO = ("Drop pictures or a whole folder anywhere on this page (or use Add images…). Each picture gets "
         "the model's three most likely labels with their probabilities. Turn on the heat map to see which "
         "part of the picture the network based its answer on, and click a picture to look closer.")


class ClassifyPage(QWidget):
    """Drop → thumbnails with top-3 labels; Grad-CAM toggle and opacity; inspect panel; CSV."""

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.classifier = None
        self.predictions: dict[str, object] = {}
        self.heatmaps: dict[str, tuple] = {}
        self.previews: dict[str, np.ndarray] = {}  # pictures of files Qt cannot show (multi-band tiles, studies)
        self.studies: dict[str, object] = {}  # study → its StudyPrediction
        self._task = None
        self._queue: list[Path] = []
        self._pending_heat: list[str] = []
        self.setAcceptDrops(True)

        self.header = StepHeader("5. Classify — new pictures", INTRO)
        self.drop = DropZone("Drop images or a folder here — or click to choose images", accept="any")
        self.drop.paths_dropped.connect(self.add_paths)
        self.drop.clicked.connect(self._on_add_clicked)
        self.controls = self._make_controls()
        self.status = QLabel("Train a model first, then drop pictures here.")
        self.strip = TaskStrip()
        self.inspect = InspectPanel()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        for w in (self.drop, self.controls, self.status, self.strip):
            ll.addWidget(w)
        ll.addWidget(self._make_views(), 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.inspect)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 460])
        self.inspect.setMinimumWidth(420)
        lay = QVBoxLayout(self)
        lay.addWidget(self.header)
        lay.addWidget(split, 1)
        session.run_changed.connect(self._on_session_run_changed)
        session.closing.connect(self.shutdown)
        self._update_enabled()
        if session.run_dir is not None:  # made after a run was opened (the window builds steps when first opened)
            self.clear()

    # ------------------------------------------------------------------ layout
    def _make_controls(self) -> ClassifyControls:
        """The buttons, the heat-map settings and the threshold, connected to the page."""
        controls = ClassifyControls()
        for name in classify_controls.FIELDS:
            setattr(self, name, getattr(controls, name))
        self.add_button.clicked.connect(self._on_add_clicked)
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.clear_button.clicked.connect(self.clear)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.heat_toggle.toggled.connect(self._on_heat_toggled)
        self.opacity.valueChanged.connect(self._redraw_heatmaps)
        self.heat_class.activated.connect(self._on_heat_class_activated)
        self.not_sure.valueChanged.connect(self._on_not_sure_changed)
        return controls

    def _make_views(self) -> QTabWidget:
        """The answers as thumbnails with captions, and as a sortable table; a click looks closer."""
        self.grid = ImageGrid(128)
        self.grid.image_activated.connect(self._on_image_activated)
        self.table_model = PredictionTableModel(self)
        self.table = QTableView()
        self.table.setModel(sortable(self.table_model, self))
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.clicked.connect(lambda index: self._on_image_activated(index.data(PATH_ROLE)))
        self.views = QTabWidget()
        self.views.addTab(self.grid, "Pictures")
        self.views.addTab(self.table, "Table")
        return self.views

    # ------------------------------------------------------------------ drag and drop on the whole page
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    # ------------------------------------------------------------------ actions
    def _update_enabled(self) -> None:
        has_run = self.session.run_dir is not None
        for w in (self.drop, self.add_button, self.folder_button):
            w.setEnabled(has_run)
        self.save_button.setEnabled(bool(self.predictions))
        self.clear_button.setEnabled(bool(self.predictions))

    def busy(self) -> bool:
        return self._task is not None and self._task.is_live

    def add_paths(self, paths) -> None:
        """Classify files and/or folders (queued while another batch is running)."""
        if self.session.run_dir is None:
            self.status.setText("There is no trained model yet: train one in the Train step first.")
            return
        self._queue.extend(Path(p) for p in paths)
        if not self.busy():
            self._start_next()

    def _start_next(self) -> None:
        if not self._queue:
            return
        paths, self._queue = self._queue, []
        self._task = start_task(classify_paths, self.session.run_dir, self.classifier, paths, self.threshold(),
                                on_returned=self._on_classified, on_errored=self._on_errored,
                                on_finished=self._on_task_finished)
        self.strip.attach(self._task, "Classifying…")

    def threshold(self) -> float | None:
        """The "not sure below" setting (None when off)."""
        value = self.not_sure.value()
        return value if value > 0 else None

    def _on_not_sure_changed(self, _value: float) -> None:
        """Re-judge what is shown against the new threshold (the probabilities do not change)."""
        if self.predictions:
            self._show_predictions([with_threshold(p, self.threshold()) for p in self.predictions.values()])

    def clear(self) -> None:
        self.predictions.clear()
        self.heatmaps.clear()
        self.previews.clear()
        self.studies.clear()
        self.grid.clear()
        self.table_model.clear()
        self.status.setText("Drop pictures to classify them.")
        self._update_enabled()

    def save_csv(self, path: str | Path) -> Path:
        return write_csv(list(self.predictions.values()), path)

    # ------------------------------------------------------------------ slots
    def _on_add_clicked(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Choose images to classify")
        if files:
            self.add_paths(files)

    def _on_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images")
        if folder:
            self.add_paths([folder])

    def _on_save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save results", "predictions.csv", "CSV files (*.csv)")
        if path:
            try:
                saved = self.save_csv(path)
            except Exception as exc:  # noqa: BLE001 - shown to the user
                show_error(self, exc)
                return
            self.status.setText(f"Saved {len(self.predictions)} results to {saved}")

    def shutdown(self) -> None:
        """Stop the model's process (the window is closing)."""
        self._close_model(wait=True)

    def _close_model(self, wait: bool = False) -> None:
        model, self.classifier = self.classifier, None
        if model is None:
            return
        if wait:
            model.close()
        else:  # closing waits for the child a little: not on the GUI thread
            threading.Thread(target=model.close, name="close-model", daemon=True).start()

    def _on_session_run_changed(self) -> None:
        self._close_model()  # another model: load it on the next drop
        self.clear()

    def _on_classified(self, result) -> None:
        self.classifier, predictions, previews, studies = result
        self.previews.update(previews)
        self.studies.update(studies)
        self.controls.set_classes(self.classifier.info.class_names)
        new = self._show_predictions(predictions)
        if self.heat_toggle.isChecked() and new:
            self._queue_heatmaps(new)

    def _show_predictions(self, predictions) -> list[str]:
        """Add or update rows and thumbnails; returns the readable images that are new."""
        self.table_model.add_predictions(predictions)
        new = []
        for pred in predictions:
            short, tip = caption(pred, self.studies.get(pred.path))
            if pred.path in self.predictions:
                for item in self.grid.items_for(pred.path):
                    item.setText(short)
                    item.setToolTip(tip)
                self.grid.fit_caption(short)
            else:
                preview = self.previews.get(pred.path)
                self.grid.add_image(pred.path, short, tip,
                                    array_to_pixmap(preview) if preview is not None else None)
            self.predictions[pred.path] = pred
            if not pred.error:
                new.append(pred.path)
        self.status.setText(status_text(self.predictions, self.studies, self.threshold()))
        self._update_enabled()
        return new

    def _on_task_finished(self) -> None:
        if self._queue:
            self._start_next()
        elif self._pending_heat:
            paths, self._pending_heat = self._pending_heat, []
            self._task = start_task(gradcam_heatmaps, self.classifier, paths, self.heat_class.currentData(),
                                    self.explained_keys(paths), on_returned=self._on_heatmaps,
                                    on_errored=self._on_errored, on_finished=self._on_task_finished)
            self.strip.attach(self._task, "Computing where the network looked…")

    def _queue_heatmaps(self, paths: list[str]) -> None:
        self._pending_heat = [*self._pending_heat, *[p for p in paths if p not in self.heatmaps]]
        if not self.busy():
            self._on_task_finished()

    def _on_heat_toggled(self, on: bool) -> None:
        if on:
            self._queue_heatmaps([p for p, pred in self.predictions.items() if not pred.error])
            self._redraw_heatmaps()
        else:
            for p in self.heatmaps:
                preview = self.previews.get(p)
                self.grid.set_pixmap(p, array_to_pixmap(preview) if preview is not None
                                     else thumbnail(p, self.grid.thumb_size))

    def _on_heat_class_activated(self, _index: int) -> None:
        self.heatmaps.clear()  # they explained another class
        if self.heat_toggle.isChecked():
            self._queue_heatmaps([p for p, pred in self.predictions.items() if not pred.error])

    def _on_heatmaps(self, heatmaps: dict) -> None:
        self.heatmaps.update(heatmaps)
        self._redraw_heatmaps()

    def _redraw_heatmaps(self) -> None:
        if not self.heat_toggle.isChecked():
            return

        for p, (original, heat) in self.heatmaps.items():
            self.grid.set_pixmap(p, array_to_pixmap(overlay(original, heat, alpha=self.opacity.value() / 100)))

    def explained_keys(self, paths) -> dict[str, str]:
        """For each study among ``paths``: the slice its heat map and closer look explain (the one that drove
        the answer most)."""
        out = {}
        for p in paths:
            sp = self.studies.get(p)
            if sp is not None and sp.top_slices:
                out[p] = sp.top_slices[0][0]
        return out

    def _on_image_activated(self, path: str) -> None:
        pred = self.predictions.get(path)
        if pred is not None and pred.error:
            self.inspect.show_problem(path, pred.error)
            return
        if self.classifier is None or pred is None:
            return
        self.inspect.inspect(self.classifier, self.explained_keys([path]).get(path, path),
                             self.heat_class.currentData(), prediction=pred)

    def _on_errored(self, exc: BaseException) -> None:
        self.status.setText("Something went wrong; see the message.")
        show_error(self, exc)
