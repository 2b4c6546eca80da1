"""Step 5, Classify: drop images or folders, see the top-3 labels, where the network looked, save a CSV.

The trained model is loaded once (in a task) and kept in a :class:`cnn_studio.predict.predictor.Classifier`
for every later drop. Grad-CAM overlays are computed in a task too; the opacity slider only
re-blends the cached, downscaled heat maps.

A multi-band tile shows the RGB composite of the bands the run shows as R, G, B. A NIfTI volume or
a folder holding a DICOM series is one *study*: it gets one answer (its slices' probabilities
aggregated as the run says), shown with the slice that drove it most; the tooltip names the slices
that drove it, and the heat map and the closer look explain that slice.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
from cnn_studio.ui.messages import show_error
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
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.core import events as ev
from cnn_studio.core.paths import job_log
from cnn_studio.data.bands import composite, is_multiband_key, read_bands, read_run_bands
from cnn_studio.data.decode import decode_key
from cnn_studio.data.records import slice_name
from cnn_studio.evaluation.calibration import uncertain
from cnn_studio.explain.gradcam import overlay
from cnn_studio.explain.views import CLASSIFY, HEATMAPS, THUMB, open_model, shrink
from cnn_studio.predict.predictor import Prediction, skipped_predictions, write_csv
from cnn_studio.predict.studies import StudyPredictOptions, find_studies
from cnn_studio.runs.run_folder import open_run

STUDIES = "cnn_studio.predict.studies:classify_studies"
"""The model server's call that answers per study (a NIfTI file, a DICOM series)."""

INTRO = ("Drop pictures or a whole folder anywhere on this page (or use Add images…). Each picture gets "
         "the model's three most likely labels with their probabilities. Turn on the heat map to see which "
         "part of the picture the network based its answer on, and click a picture to look closer.")


def classify_paths(run_dir, model, paths, uncertain_below=None, *, sink, cancel):
    """Load the run's model once (when ``model`` is None or died) in its own process, then classify ``paths``
    (answers less sure than ``uncertain_below`` come back as "uncertain").

    ``model`` is a :func:`cnn_studio.explain.views.open_model` handle, kept by the page across drops.
    NIfTI files and DICOM series among ``paths`` (or in its folders) are answered per study
    (:func:`cnn_studio.predict.studies.classify_studies`, cut and aggregated as the run was trained).
    Returns ``(model, predictions, previews, studies)``: ``predictions`` has one
    :class:`~cnn_studio.predict.predictor.Prediction` per image and per study (its ``path`` the study),
    ``previews`` a picture for each entry Qt cannot show itself (a multi-band tile's RGB composite of the
    run's R, G, B bands; a study's slice that drove the answer most), ``studies`` the
    :class:`~cnn_studio.predict.studies.StudyPrediction` of each study.
    """

    if model is not None and not model.alive:  # its process died (the error was shown): load it anew
        model.close()
        model = None
    if model is None:
        sink(ev.StageChanged(task="classify", stage="Loading the model"))
        model = open_model(run_dir, log_path=job_log("model", run_dir))
    config = open_run(run_dir).config
    found = find_studies(paths, config.slicing)
    predictions, studies = [], {}
    if found.images:
        predictions += model.call(CLASSIFY, list(map(str, found.images)), top_k=3, uncertain_below=uncertain_below,
                                  sink=sink, cancel=cancel)
    if found.studies:
        options = StudyPredictOptions(aggregate_by=config.study_aggregate, top_k=3, uncertain_below=uncertain_below)
        for sp in model.call(STUDIES, found, options, sink=sink, cancel=cancel):
            studies[sp.study] = sp
            predictions.append(Prediction(sp.study, sp.top, sp.probabilities, sp.error, sp.uncertain))
    predictions += skipped_predictions(found.skipped)  # files of other types in the folders: a row each, with why
    previews = preview_pictures(run_dir, [p.path for p in predictions if not p.error and p.path not in studies])
    for study, sp in studies.items():
        if sp.top_slices:
            try:
                previews[study] = shrink(decode_key(sp.top_slices[0][0]), THUMB)
            except Exception:  # noqa: BLE001 - the placeholder then
                pass
    return model, predictions, previews, studies


def describe_study(sp) -> str:
    """The tooltip lines of a study's answer: how it was made and the slices that drove it."""
    if sp.error:
        return ""
    how = {"mean": "the average", "max": "the highest"}.get(sp.aggregate, sp.aggregate)
    lines = [f"One answer for the whole study: {how} of its {sp.slices} slices' probabilities."]
    if sp.top_slices:
        drove = ", ".join(f"{slice_name(k)} ({p:.0%})" for k, p in sp.top_slices)
        lines.append(f"The slices that drove it most: {drove}.")
    if sp.unreadable_slices:
        lines.append(f"{sp.unreadable_slices} slice(s) could not be read and were left out.")
    return "\n".join(lines)


def preview_pictures(run_dir, paths) -> dict[str, np.ndarray]:
    """uint8 RGB pictures of the ``paths`` Qt cannot show: a multi-band tile's composite of the bands the run
    shows as R, G, B, windowed by its training statistics (so every tile is on one scale)."""
    info = read_run_bands(run_dir)
    if info is None:
        return {}
    out = {}
    for p in paths:
        if is_multiband_key(p):
            try:
                out[p] = shrink(composite(read_bands(p), info.rgb, info.windows or None), THUMB)
            except Exception:  # noqa: BLE001 - a picture that cannot be made shows the placeholder
                continue
    return out


def gradcam_heatmaps(model, paths, class_index: int | None = None, keys: dict[str, str] | None = None, *, sink,
                     cancel):
    """{path: (downscaled original, downscaled heat map)} for the predicted (or the given) class.

    ``keys`` maps a shown entry to what is explained instead (a study → the slice that drove it most)."""

    keys = keys or {}
    asked = [keys.get(p, p) for p in map(str, paths)]
    back = {keys.get(p, p): p for p in map(str, paths)}
    maps = model.call(HEATMAPS, asked, class_index, sink=sink, cancel=cancel)
    return {back.get(k, k): v for k, v in maps.items()}


def caption(prediction, study=None) -> tuple[str, str]:
    """(short caption under the thumbnail, full tooltip); ``study``: the StudyPrediction when it is a study."""
    short, tip = _caption(prediction)
    if study is not None and not prediction.error:
        n = study.slices
        short = short.replace("\n", f"\n{n} slices · ", 1) if "\n" in short else f"{short}\n{n} slices"
        tip = f"{tip}\n{describe_study(study)}"
    return short, tip


def _caption(prediction) -> tuple[str, str]:
    name = Path(prediction.path).name
    if prediction.error:
        return f"⚠ {name}\ncannot be read", f"{prediction.path}\nCould not read this file: {prediction.error}"
    lines = [f"{label} {p:.0%}" for label, p in prediction.top]
    if getattr(prediction, "uncertain", False):
        return (f"uncertain ({lines[0]})\n" + " · ".join(lines[1:]),
                f"{prediction.path}\nNot sure: the best answer is below the 'not sure' threshold.\n" + "\n".join(lines))
    return f"{lines[0]}\n" + " · ".join(lines[1:]), f"{prediction.path}\n" + "\n".join(lines)


def with_threshold(prediction, threshold: float | None):
    """``prediction`` with ``uncertain`` recomputed for a new "not sure" threshold (no model needed)."""

    if prediction.error or not prediction.top:
        return prediction
    return replace(prediction, uncertain=uncertain(float(prediction.top[0][1]), threshold))


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
        self.add_button = QPushButton("Add images…")
        self.add_button.clicked.connect(self._on_add_clicked)
        self.folder_button = QPushButton("Add a folder…")
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.save_button = QPushButton("Save results as CSV…")
        self.save_button.setToolTip("One row per image: its top labels and probabilities (opens in Excel).")
        self.save_button.clicked.connect(self._on_save_clicked)
        self.heat_toggle = QCheckBox("Show where the network looked (Grad-CAM)")
        self.heat_toggle.setToolTip("Colours the part of each picture that most influenced the answer: red/yellow "
                                    "= strong evidence. If it is the background, the model may have learned a shortcut.")
        self.heat_toggle.toggled.connect(self._on_heat_toggled)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setMaximumWidth(160)
        self.opacity.setToolTip("Heat map opacity")
        self.opacity.valueChanged.connect(self._redraw_heatmaps)
        self.heat_class = QComboBox()
        self.heat_class.setToolTip("Which class the heat maps explain: the model's own answer for each picture, "
                                   "or one class for all (where is the evidence for 'dog'?).")
        self.heat_class.addItem("its answer", None)
        self.heat_class.activated.connect(self._on_heat_class_activated)
        self.not_sure = QDoubleSpinBox()
        self.not_sure.setRange(0.0, 0.99)
        self.not_sure.setSingleStep(0.05)
        self.not_sure.setDecimals(2)
        self.not_sure.setSpecialValueText("off")
        self.not_sure.setValue(0.0)
        self.not_sure.setToolTip("Answers whose top probability is below this become 'uncertain' instead of a "
                                 "possibly wrong label (e.g. 0.60). The probabilities are calibrated on the "
                                 "validation images when training ends. 'off': always give the best label.")
        self.not_sure.valueChanged.connect(self._on_not_sure_changed)
        self.status = QLabel("Train a model first, then drop pictures here.")
        self.strip = TaskStrip()
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
        self.inspect = InspectPanel()

        buttons = QHBoxLayout()
        for w in (self.add_button, self.folder_button, self.clear_button, self.save_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        heat_row = QHBoxLayout()
        heat_row.addWidget(self.heat_toggle)
        heat_row.addWidget(QLabel("for"))
        heat_row.addWidget(self.heat_class)
        heat_row.addStretch(1)
        view_row = QHBoxLayout()  # a row of its own: one row was too wide for a 1280-pixel screen
        view_row.addWidget(QLabel("opacity"))
        view_row.addWidget(self.opacity)
        view_row.addSpacing(12)
        view_row.addWidget(QLabel("not sure below"))
        view_row.addWidget(self.not_sure)
        view_row.addStretch(1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.drop)
        ll.addLayout(buttons)
        ll.addLayout(heat_row)
        ll.addLayout(view_row)
        ll.addWidget(self.status)
        ll.addWidget(self.strip)
        ll.addWidget(self.views, 1)
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
        if self.heat_class.count() != len(self.classifier.info.class_names) + 1:
            self.heat_class.clear()
            self.heat_class.addItem("its answer", None)
            for i, name in enumerate(self.classifier.info.class_names):
                self.heat_class.addItem(name, i)
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
        errors = sum(1 for p in self.predictions.values() if p.error)
        unsure = sum(1 for p in self.predictions.values() if getattr(p, "uncertain", False))
        done = len(self.predictions) - errors
        studies = sum(1 for p, pred in self.predictions.items() if p in self.studies and not pred.error)
        images = done - studies
        parts = ([f"{images} image{'' if images == 1 else 's'}"] if images or not studies else []) + (
            [f"{studies} stud{'y' if studies == 1 else 'ies'} (one answer each)"] if studies else [])
        text = " and ".join(parts) + " classified"
        if unsure:
            text += f" ({unsure} uncertain: below {self.threshold():.0%})"
        if errors:
            text += f"; {errors} file{'' if errors == 1 else 's'} could not be read as images (hover for why)"
        self.status.setText(text + ".")
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
