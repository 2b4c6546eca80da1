"""Step 2, Model: pick a pretrained backbone and the training settings, bound to ``session.config``."""

from __future__ import annotations

from html import escape
from pathlib import Path

from cnn_studio.ui.messages import severity_colour
from cnn_studio.ui.qmodels.backbone_list import BackboneListModel, KeyRole, spec_summary
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QItemSelectionModel, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.backbones import registry
from cnn_studio.backbones.fine_tune import DEFAULT_DEPTH, DEPTH_EXAMPLES, TABLES, block_names, table_plan
from cnn_studio.backbones.weights import WEIGHTS_KINDS
from cnn_studio.backbones.weights_store import offline_default, offline_status
from cnn_studio.core import events as ev
from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import app_data_dir
from cnn_studio.data.augment import AUGMENTATIONS
from cnn_studio.data.augment import describe as describe_augmentation
from cnn_studio.data.records import CACHE_MODES, RESIZE_POLICIES
from cnn_studio.training.config import LR_SCHEDULES, OPTIMIZERS, PLATEAU_PATIENCE, TrainConfig
from cnn_studio.training.schedule import describe as schedule_line
from cnn_studio.training.schedule import format_duration, parse_duration

_WEIGHT_LABELS = {"imagenet": "ImageNet (pretrained)", "none": "None (train from scratch)",
                  "file": "A weights file on this computer"}
WEIGHT_CHOICES = tuple((kind, _WEIGHT_LABELS[kind]) for kind in WEIGHTS_KINDS)
FIXED_DEFAULT = (10, 5)  # the epochs "Fixed epochs" starts from (head, fine-tune)
_SCHEDULE_LABELS = {"constant": "Constant", "plateau": "Lower on a plateau (×0.3)"}
FROM_SCRATCH_TIP = ("Not used when the network starts from scratch: fine-tuning unfreezes part of a pretrained "
                    "backbone, and here every layer trains from the first epoch.")


def default_config() -> tuple[TrainConfig, str]:
    """The starting settings and why: the default backbone (MobileNetV2) + ImageNet when its weights are here,
    else the small CNN (:func:`~cnn_studio.backbones.weights_store.offline_default`).

    Both train on the automatic schedule (:mod:`cnn_studio.training.schedule`), as ``cnn-studio train`` does."""
    backbone, weights = offline_default()
    config = TrainConfig(backbone=backbone, weights=weights, fine_tune_depth=DEFAULT_DEPTH)
    if backbone == registry.DEFAULT_BACKBONE:
        return (config, f"{registry.get(backbone).label} with ImageNet weights is selected: small, fast, and a "
                        "strong start for most images.")
    return (config,
            "The small CNN (trained from scratch) is selected because no ImageNet weights are on this "
            "computer yet and there may be no internet. It trains in a minute on the sample. Pick a "
            "pretrained backbone for real work once its weights are available.")


def _augment_tooltip(name: str) -> str:
    try:
        return describe_augmentation(name)
    except (ImportError, KeyError):
        return name


def input_note(index, config, label: str, pretrained: bool) -> str:
    """What the network takes from a multi-band dataset or from volumes, in plain words ("" for pictures).

    Examples
    --------
    >>> input_note(None, None, "VGG16", True)
    ''
    """
    if index is None:
        return ""
    if index.bands:
        used = len(config.bands) if config.bands else index.bands
        rgb = (f"bands {', '.join(map(str, config.rgb_bands))}" if config.rgb_bands
               else "the bands shown as red, green and blue on the Data step")
        head = f"<br><b>{used} band{'s' if used != 1 else ''} in</b> (of {index.bands}): "
        if pretrained:
            return head + (f"the first layer of {escape(label)} is adapted from its ImageNet red, green and blue "
                           f"filters — {rgb} get them, the other bands start from their average (scaled), so what "
                           "the network learned from photos still helps.")
        return head + "the network learns its first layer for these bands from scratch."
    if index.studies:
        return (f"<br><b>Slices of {len(index.studies):,} studies in</b>: the network learns from single slices; "
                f"a study's answer is the {escape(config.study_aggregate)} of its slices' probabilities.")
    return ""


class _FullWidthScroll(QScrollArea):
    """Scrolls up and down only: at least as wide as its content, so a splitter never cuts the settings sideways
    (the left column, which scrolls too, gives way instead)."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is None:
            return hint
        width = inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(max(hint.width(), width), hint.height())


class ModelPage(QWidget):
    """Backbone cards on the left, settings on the right; every valid change goes to ``session.set_config``.

    Signals
    -------
    continue_requested()
        "Next: train" was clicked.
    """

    continue_requested = Signal()

    def __init__(self, session: StudioSession, parent: QWidget | None = None) -> None:
        from superqt import QCollapsible  # superqt loads all its widgets: ~0.2 s, only when this step opens

        super().__init__(parent)
        self.session = session
        self._loading = False
        header = StepHeader(
            "2. Model — the network and how to train it",
            "A <b>backbone</b> is a network already trained on millions of photos (ImageNet); CNN "
            "Studio adds a small new layer for your classes and trains it on your images. Smaller "
            "backbones train faster; larger ones can be more accurate. The defaults are sensible: "
            "hover over any setting to see what it does.")
        self.default_note = QLabel()
        self.default_note.setWordWrap(True)
        self.default_note.setObjectName("note")
        self._default_backbone: str | None = None  # the backbone default_note explains (shown while selected)

        # ---- backbones
        self.backbone_model = BackboneListModel(self)
        self.backbone_view = QListView()
        self.backbone_view.setModel(self.backbone_model)
        self.backbone_view.setAlternatingRowColors(True)
        self.backbone_view.setSpacing(2)
        self.backbone_view.selectionModel().currentChanged.connect(self._on_backbone_current_changed)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setObjectName("backbone_details")
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.weights_combo = QComboBox()
        for key, label in WEIGHT_CHOICES:
            self.weights_combo.addItem(label, key)
        self.weights_combo.setToolTip("Start from ImageNet weights (recommended: learns from far fewer images) "
                                      "or from random weights.")
        self.weights_combo.currentIndexChanged.connect(self._on_weights_choice_changed)
        # may be narrower than its longest choice, so the left column fits beside the settings at 1280 pixels
        self.weights_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.weights_combo.setMinimumContentsLength(12)
        self.weights_file_button = QPushButton("Use a local weights file…")
        self.weights_file_button.setToolTip("A Keras .h5/.weights.h5 file of this backbone without its top "
                                            "layer, e.g. copied from a computer with internet.")
        self.weights_file_button.clicked.connect(self._on_weights_file_clicked)
        self._weights_file: str | None = None
        self.import_button = QPushButton("Import weights file…")
        self.import_button.setToolTip("Copy a weights file (Keras' .h5 download, .weights.h5 or .keras), e.g. "
                                      "brought from a computer with internet, into CNN Studio's own weights. "
                                      "Your file is copied, never moved or deleted.")
        self.import_button.clicked.connect(self._on_import_clicked)
        self.import_status = QLabel()
        self.import_status.setWordWrap(True)
        self.import_status.setObjectName("import_status")
        self.import_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._status_backbone: str | None = None  # the backbone import_status speaks of (None: any)
        self._import_backbone: str | None = None  # the backbone an import is for
        self.scratch_warning = QLabel()
        self.scratch_warning.setWordWrap(True)
        self.scratch_warning.setObjectName("scratch_warning")
        self.scratch_warning.setVisible(False)
        self._import_task = None
        self.download_button = QPushButton("Download ImageNet weights")
        self.download_button.setToolTip("Download this backbone's ImageNet weights from Keras' public address "
                                        "into CNN Studio's own weights (needs internet; the checksum is checked).")
        self.download_button.clicked.connect(self.download_weights)
        self.download_progress = QProgressBar()
        self.download_progress.setVisible(False)
        self.download_progress.setTextVisible(True)
        self.download_cancel = QPushButton("Cancel")
        self.download_cancel.setVisible(False)
        self.download_cancel.clicked.connect(self.cancel_download)
        self._download_task = None
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("<b>Backbone</b>"))
        ll.addWidget(self.backbone_view, 2)
        ll.addWidget(self.details)
        wl = QHBoxLayout()
        wl.addWidget(QLabel("Starting weights:"))
        wl.addWidget(self.weights_combo, 1)
        wl.addWidget(self.weights_file_button)
        ll.addLayout(wl)
        il = QHBoxLayout()
        il.addWidget(self.import_button)
        il.addWidget(self.download_button)
        il.addStretch(1)
        ll.addLayout(il)
        ll.addWidget(self.import_status)  # its own full-width row: a long error wraps in a few lines
        dl = QHBoxLayout()
        dl.addWidget(self.download_progress, 1)
        dl.addWidget(self.download_cancel)
        ll.addLayout(dl)
        ll.addWidget(self.scratch_warning)

        # ---- settings
        form_box = QWidget()
        form = QFormLayout(form_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.schedule = QComboBox()
        self.schedule.addItem("Automatic (recommended)", "auto")
        self.schedule.addItem("Fixed epochs", "fixed")
        self.schedule.setToolTip("Automatic: each phase trains until the validation loss stops improving and "
                                 "keeps its best weights. Fixed: exactly the epochs below (changing them "
                                 "picks Fixed).")
        self.schedule.currentIndexChanged.connect(self._on_form_changed)
        self.image_size = self._spin(0, 2048, "Images are resized to this many pixels square. 0 = the "
                                     "backbone's own size (best for pretrained weights); smaller is faster.")
        self.image_size.setSpecialValueText("backbone default")
        self.batch_size = self._spin(1, 4096, "How many images are processed at once. Lower it (8-16) if "
                                     "the computer runs out of memory.")
        self.epochs = self._spin(0, 1000, "Fixed schedule: passes over all training images with the backbone "
                                 "frozen (only the new layer learns). Changing it picks the fixed schedule.")
        self.fine_tune_epochs = self._spin(0, 1000, "Fixed schedule: extra passes with the top of the backbone "
                                           "unfrozen too, at a low learning rate. 0 = skip.")
        for box in (self.epochs, self.fine_tune_epochs):
            box.valueChanged.connect(self._epochs_edited)
        depth_tip = ("How much of the backbone learns during fine-tuning: \"1 block\" (the top block, e.g. VGG16's "
                     "block5), \"2 blocks\", a block name and everything above it, \"6 conv\" (the top 6 "
                     "convolution layers; BatchNorm stays frozen) or \"all\". More means more to learn and more "
                     "risk of forgetting: start with 1 block.")
        self.fine_tune_depth = QComboBox()
        self.fine_tune_depth.setEditable(True)
        self.fine_tune_depth.addItems(list(DEPTH_EXAMPLES))
        self.fine_tune_depth.setToolTip(depth_tip)
        self.fine_tune_depth.setProperty("usage_tip", depth_tip)
        self.fine_tune_depth.currentTextChanged.connect(self._on_form_changed)
        self.fine_tune_layers = self.fine_tune_depth  # the older name of this field
        self.fine_tune_plan = QLabel()
        self.fine_tune_plan.setWordWrap(True)
        self.fine_tune_plan.setObjectName("fine_tune_plan")
        depth_box = QWidget()
        db = QVBoxLayout(depth_box)
        db.setContentsMargins(0, 0, 0, 0)
        db.addWidget(self.fine_tune_depth)
        db.addWidget(self.fine_tune_plan)
        self.lr_schedule = QComboBox()
        for key in LR_SCHEDULES:
            self.lr_schedule.addItem(_SCHEDULE_LABELS[key], key)
        self.lr_schedule.setToolTip(f"Keep the learning rate, or lower it ×0.3 when validation loss has not "
                                    f"improved for {PLATEAU_PATIENCE} epochs (helps the last epochs settle).")
        self.lr_schedule.currentIndexChanged.connect(self._on_form_changed)
        self.learning_rate = self._dspin(0, 10, 6, "How big each learning step is. Automatic: the learning-rate "
                                         "finder picks it for the new layer (on the automatic schedule), else 0.001.")
        self.learning_rate.setSpecialValueText("automatic")
        self.fine_tune_lr = self._dspin(1e-7, 10, 7, "Learning rate while fine-tuning (default 0.0003): smaller "
                                        "than the new layer's, so the pretrained knowledge is adjusted, not destroyed. "
                                        "The best epoch is kept, so a rate that makes things worse costs time, not the model.")
        self.optimizer = self._combo(OPTIMIZERS, "The method that updates the weights. Adam works well almost always.")
        self.label_smoothing = self._dspin(0, 0.5, 2, "Makes the network a little less over-confident. "
                                           "0.1 helps with noisy labels; 0 = off.")
        self.dropout = self._dspin(0, 0.9, 2, "Randomly ignores this share of features while training, "
                                   "against memorising. 0.2 is typical.")
        self.class_weight = QCheckBox("Balance rare classes")
        self.class_weight.setToolTip("Count mistakes on rare classes more, so a class with few images is "
                                     "not ignored.")
        self.class_weight.toggled.connect(self._on_form_changed)
        self.early_stopping = self._spin(0, 100, "Stop when validation loss has not improved for this many "
                                         "epochs (the best model is kept). 0 = off.")
        self.seed = self._spin(0, 2**31 - 1, "Same number = same result when training again.")
        self.resize = self._combo(RESIZE_POLICIES, "How images of another shape are made square: stretch, pad "
                                  "with black borders, or crop the centre.")
        self.cache = self._combo(CACHE_MODES, "Where the images are kept, once decoded, so later epochs do not "
                                 "read the files again. auto (recommended): in memory when they take less than half "
                                 "of the memory free, otherwise on disk in the run folder, otherwise not kept; the "
                                 "Train step says which and why. memory: fastest, but a large dataset can fill "
                                 "the computer's memory. disk: for datasets larger than memory. none: read the "
                                 "files again every epoch (slowest, uses no space).")
        self.augment_boxes: dict[str, QCheckBox] = {}
        aug = QWidget()
        al = QGridLayout(aug)  # wraps: one long row made the column scroll sideways
        al.setContentsMargins(0, 0, 0, 0)
        for i, name in enumerate(AUGMENTATIONS):
            box = QCheckBox(name)
            box.setToolTip(_augment_tooltip(name))
            box.toggled.connect(self._on_form_changed)
            self.augment_boxes[name] = box
            al.addWidget(box, i // 3, i % 3)
        for label, w in (("Schedule", self.schedule), ("Image size", self.image_size), ("Batch size", self.batch_size),
                         ("Epochs", self.epochs), ("Fine-tune epochs", self.fine_tune_epochs),
                         ("Fine-tune depth", depth_box), ("Learning rate", self.learning_rate),
                         ("Fine-tune learning rate", self.fine_tune_lr), ("Learning-rate schedule", self.lr_schedule),
                         ("Optimizer", self.optimizer),
                         ("Label smoothing", self.label_smoothing), ("Dropout", self.dropout),
                         ("Class weights", self.class_weight), ("Augmentation", aug),
                         ("Early stopping (epochs)", self.early_stopping), ("Seed", self.seed),
                         ("Resize", self.resize), ("Cache", self.cache)):
            form.addRow(label, w)
            lab = form.labelForField(w)
            if lab is not None:
                lab.setToolTip(w.toolTip() or depth_tip)
        self.time_budget = QLineEdit()
        self.time_budget.setObjectName("time_budget")
        self.time_budget.setPlaceholderText("none (e.g. 10m, 1h30m)")
        self.time_budget.setToolTip("Fit training into this time: each phase stops before an epoch that would end "
                                    "past it, and the run says what it left out. Empty = no budget.")
        self.time_budget.editingFinished.connect(self._on_form_changed)
        self.schedule_line = QLabel()
        self.schedule_line.setWordWrap(True)
        self.schedule_line.setObjectName("schedule_line")
        self.advanced = QCollapsible("Advanced settings")
        self.advanced.setObjectName("advanced")
        self.advanced.addWidget(form_box)
        self.advanced.collapse(animate=False)
        settings = QWidget()
        sl = QVBoxLayout(settings)
        budget_row = QHBoxLayout()
        budget_label = QLabel("Time budget:")
        budget_label.setBuddy(self.time_budget)
        budget_row.addWidget(budget_label)
        budget_row.addWidget(self.time_budget, 1)
        sl.addWidget(QLabel("<b>Training</b>"))
        sl.addLayout(budget_row)
        sl.addWidget(self.schedule_line)
        sl.addWidget(self.advanced)
        sl.addStretch(1)
        scroll = _FullWidthScroll()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the column wraps instead
        scroll.setWidget(settings)
        self.settings_scroll = scroll

        self.validation = QLabel()
        self.validation.setWordWrap(True)
        self.validation.setObjectName("validation")
        self.validation.setVisible(False)
        self.next_button = QPushButton("Next: train →")
        self.next_button.setObjectName("primary")
        self.next_button.clicked.connect(self.continue_requested)

        # the left column scrolls too: a long download error or note never pushes the settings off-screen
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left_scroll.setWidget(left)
        splitter = QSplitter()
        splitter.addWidget(left_scroll)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(header)
        lay.addWidget(self.default_note)
        lay.addWidget(splitter, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.validation, 1)
        bottom.addWidget(self.next_button)
        lay.addLayout(bottom)

        if session.config == TrainConfig() and not session.dirty:
            config, why = default_config()
            session.set_config(config)
            session.dirty = False
            self.default_note.setText(why)
            self._default_backbone = config.backbone
        self.default_note.setVisible(bool(self.default_note.text()))
        session.config_changed.connect(self._on_session_config_changed)
        session.dataset_changed.connect(self._show_details)  # the band count / studies note
        session.closing.connect(self.shutdown)
        self._on_session_config_changed()

    def shutdown(self) -> None:
        """The app is quitting (``session.closing``): stop an import or download that is still running."""
        for task in (self._import_task, self._download_task):
            if task is not None:
                task.cancel()

    # ---------------------------------------------------------------- downloading weights
    def download_weights(self, backbone: str | None = None):
        """Download the ImageNet weights of ``backbone`` (default: the selected one) in a child process."""
        spec = registry.get(backbone or self.selected_backbone())
        if self._download_task is not None or not spec.has_pretrained_weights:
            return self._download_task
        self._download_spec = spec
        self.download_button.setEnabled(False)
        self.download_progress.setRange(0, 0)  # busy until the size is known
        self.download_progress.setFormat(f"Downloading {spec.label}'s ImageNet weights…")
        self.download_progress.setVisible(True)
        self.download_cancel.setVisible(True)
        self.download_cancel.setEnabled(True)
        self._set_import_status(f"Downloading {escape(spec.weights_file_for(self.image_size.value() or None))}…",
                                spec.key)
        self._download_task = start_task(
            run_job, "cnn_studio.backbones.weights_store:download_weights", spec,
            self.image_size.value() or None, log_path=str(app_data_dir() / "logs" / "download-weights.log"),
            label="weights download", on_event=self._on_download_event, on_returned=self._on_download_returned,
            on_errored=self._on_download_errored, on_cancelled=self._on_download_cancelled,
            on_finished=self._on_download_finished)
        return self._download_task

    def cancel_download(self) -> None:
        if self._download_task is not None:
            self._download_task.cancel()
            self.download_cancel.setEnabled(False)
            self.download_progress.setFormat("Cancelling…")

    def _on_download_event(self, event) -> None:
        if not isinstance(event, ev.TaskProgress) or event.task != "download":
            return
        if event.total > 0:
            scale = 1 << 10  # KiB keeps large files inside an int's range
            self.download_progress.setRange(0, max(event.total // scale, 1))
            self.download_progress.setValue(min(event.done // scale, event.total // scale))
            self.download_progress.setFormat(f"{self._download_spec.label}: {event.done / 1e6:.1f} of "
                                             f"{event.total / 1e6:.1f} MB (%p%)")

    def _on_download_returned(self, entry) -> None:
        spec = registry.get(entry.backbone)
        self._set_import_status(f"Downloaded <b>{escape(spec.label)}</b>'s ImageNet weights ({escape(entry.label)}).",
                                spec.key)
        self.backbone_model.refresh_status()
        if spec.key == self.selected_backbone():
            with QSignalBlocker(self.weights_combo):
                self.weights_combo.setCurrentIndex(self.weights_combo.findData("imagenet"))
            self._on_form_changed()
        self._show_details()

    def _on_download_errored(self, exc: BaseException) -> None:
        # the same short message as an import: the file, its address, Import weights file…
        self._show_import_error(exc, self._download_spec.key)

    def _on_download_cancelled(self) -> None:
        self._set_import_status("Download cancelled; nothing was kept.", self._download_spec.key)

    def _on_download_finished(self) -> None:
        self._download_task = None
        self.download_progress.setVisible(False)
        self.download_cancel.setVisible(False)
        self._show_details()

    # ---------------------------------------------------------------- importing weights
    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import weights file", "",
                                              "Keras weights (*.h5 *.keras);;All files (*)")
        if path:  # a cancelled dialog changes nothing
            self.import_weights_file(path)

    def import_weights_file(self, path: str, backbone: str | None = None):
        """Copy ``path`` into the weights store in a child process (checked there); the UI stays responsive."""

        self.import_button.setEnabled(False)
        self._import_backbone = backbone or self.selected_backbone()
        self._set_import_status(f"Importing {escape(Path(path).name)}… (checking that it loads)", None)
        self._import_task = start_task(
            run_job, "cnn_studio.backbones.weights_store:import_weights", str(path),
            registry.get(backbone) if backbone else None,
            log_path=str(app_data_dir() / "logs" / "import-weights.log"), label="weights import",
            on_returned=self._on_import_returned, on_errored=self._on_import_errored,
            on_finished=self._on_import_finished)
        return self._import_task

    def _on_import_returned(self, entry) -> None:
        spec = registry.get(entry.backbone)
        self._set_import_status(f"Imported for <b>{escape(spec.label)}</b> ({escape(entry.label)}). "
                                "Your file is unchanged.", spec.key)
        self.backbone_model.refresh_status()
        row = self.backbone_model.row_of(spec.key)
        if row >= 0:
            self.backbone_view.selectionModel().setCurrentIndex(
                self.backbone_model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        with QSignalBlocker(self.weights_combo):
            self.weights_combo.setCurrentIndex(self.weights_combo.findData("imagenet"))
        self._weights_file = None
        self._on_form_changed()
        self._show_details()

    def _on_import_errored(self, exc: BaseException) -> None:
        self._show_import_error(exc, self._import_backbone)

    def _show_import_error(self, exc: BaseException, backbone: str | None) -> None:
        text = exc.message if isinstance(exc, StudioError) else str(exc).splitlines()[0][:200]
        hint = exc.hint if isinstance(exc, StudioError) else ""
        colour = severity_colour("error").name()
        self._set_import_status(f"<span style='color:{colour}'>{escape(text)}</span> {escape(hint)}", backbone)

    def _set_import_status(self, html: str, backbone: str | None) -> None:
        """Say how a download or import went; it is shown while ``backbone`` (None: any) is the selected one."""
        self._status_backbone = backbone
        self.import_status.setText(html)
        self._follow_selection()

    def _follow_selection(self) -> None:
        """Notes about one backbone are shown only while it is selected (and what they say still holds)."""
        selected = self.selected_backbone()
        self.import_status.setVisible(bool(self.import_status.text())
                                      and self._status_backbone in (None, selected))
        default_holds = self._default_backbone == selected and default_config()[0].backbone == selected
        self.default_note.setVisible(bool(self.default_note.text()) and default_holds)

    def _on_import_finished(self) -> None:
        self.import_button.setEnabled(True)
        self._import_task = None

    # ---------------------------------------------------------------- widgets
    def _spin(self, lo: int, hi: int, tip: str) -> QSpinBox:
        w = QSpinBox()
        w.setRange(lo, hi)
        w.setToolTip(tip)
        w.setProperty("usage_tip", tip)
        w.valueChanged.connect(self._on_form_changed)
        return w

    def _dspin(self, lo: float, hi: float, decimals: int, tip: str) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setDecimals(decimals)
        w.setRange(lo, hi)
        w.setSingleStep(10 ** -(decimals - 1) if decimals > 2 else 0.05)
        w.setToolTip(tip)
        w.setProperty("usage_tip", tip)
        w.valueChanged.connect(self._on_form_changed)
        return w

    def _combo(self, items: tuple[str, ...], tip: str) -> QComboBox:
        w = QComboBox()
        w.addItems(list(items))
        w.setToolTip(tip)
        w.currentIndexChanged.connect(self._on_form_changed)
        return w

    # ---------------------------------------------------------------- session → form
    def _on_session_config_changed(self) -> None:
        if self._loading:
            return
        c = self.session.config
        self._loading = True
        try:
            row = self.backbone_model.row_of(c.backbone)
            if row >= 0:
                self.backbone_view.selectionModel().setCurrentIndex(
                    self.backbone_model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.schedule.setCurrentIndex(self.schedule.findData(c.schedule))
            self.time_budget.setText(format_duration(c.time_budget_s) if c.time_budget_s else "")
            self.image_size.setValue(c.image_size or 0)
            self.batch_size.setValue(c.batch_size)
            if c.schedule == "fixed":
                self.epochs.setValue(c.epochs or 0)
                self.fine_tune_epochs.setValue(c.fine_tune_epochs or 0)
            elif not self.epochs.value() and not self.fine_tune_epochs.value():
                self.epochs.setValue(FIXED_DEFAULT[0])  # what "Fixed epochs" starts from
                self.fine_tune_epochs.setValue(FIXED_DEFAULT[1])
            self.fine_tune_depth.setCurrentText(c.effective_fine_tune_depth)
            with QSignalBlocker(self.lr_schedule):
                self.lr_schedule.setCurrentIndex(self.lr_schedule.findData(c.lr_schedule))
            self.learning_rate.setValue(c.learning_rate or 0)
            self.fine_tune_lr.setValue(c.fine_tune_learning_rate)
            self.optimizer.setCurrentText(c.optimizer)
            self.label_smoothing.setValue(c.label_smoothing)
            self.dropout.setValue(c.dropout)
            self.class_weight.setChecked(c.class_weight == "balanced")
            self.early_stopping.setValue(c.early_stopping_patience)
            self.seed.setValue(c.seed)
            self.resize.setCurrentText(c.resize)
            self.cache.setCurrentText(c.cache)
            for name, box in self.augment_boxes.items():
                box.setChecked(name in c.augment)
            choice = c.weights_choice.kind
            if choice == "file":
                self._weights_file = c.weights
            with QSignalBlocker(self.weights_combo):
                self.weights_combo.setCurrentIndex(self.weights_combo.findData(choice))
            self._show_details()
            self.schedule_line.setText(escape(schedule_line(c)))
        finally:
            self._loading = False

    # ---------------------------------------------------------------- form → session
    def selected_backbone(self) -> str:
        idx = self.backbone_view.currentIndex()
        return idx.data(KeyRole) if idx.isValid() else self.session.config.backbone

    def _weights_value(self) -> str:
        spec = registry.get(self.selected_backbone())
        if spec.weights_file_notop is None:
            return "none"
        choice = self.weights_combo.currentData()
        if choice == "file":
            return self._weights_file or "none"
        return choice

    def form_config(self) -> TrainConfig:
        """The settings the form shows now (not validated)."""
        fixed = self.schedule.currentData() == "fixed"
        return self.session.config.replace(
            backbone=self.selected_backbone(),
            weights=self._weights_value(),
            image_size=self.image_size.value() or None,
            batch_size=self.batch_size.value(),
            epochs=self.epochs.value() if fixed else None,
            fine_tune_epochs=self.fine_tune_epochs.value() if fixed else None,
            time_budget_s=self._budget_value(),
            fine_tune_depth=self._depth_value(),
            reduce_lr_patience=self._patience_value(),
            learning_rate=self.learning_rate.value() or None,
            fine_tune_learning_rate=self.fine_tune_lr.value(),
            optimizer=self.optimizer.currentText(),
            label_smoothing=self.label_smoothing.value(),
            dropout=self.dropout.value(),
            class_weight="balanced" if self.class_weight.isChecked() else "none",
            early_stopping_patience=self.early_stopping.value(),
            seed=self.seed.value(),
            resize=self.resize.currentText(),
            cache=self.cache.currentText(),
            augment=tuple(n for n, b in self.augment_boxes.items() if b.isChecked()),
        )

    def _budget_value(self) -> float:
        """The time budget field in seconds (0: none); raises ConfigError for text that is not a duration."""
        return parse_duration(self.time_budget.text())

    def _epochs_edited(self, *_args) -> None:
        """Editing the epochs picks the fixed schedule (the automatic one does not use them)."""
        if self._loading:
            return
        if self.schedule.currentData() != "fixed":
            with QSignalBlocker(self.schedule):
                self.schedule.setCurrentIndex(self.schedule.findData("fixed"))
            self._on_form_changed()

    def _depth_value(self) -> str | None:
        text = " ".join(self.fine_tune_depth.currentText().split())
        c = self.session.config
        if c.fine_tune_depth is None and text == c.effective_fine_tune_depth:
            return None  # an older run's setting, left as it was
        return text

    def _patience_value(self) -> int:
        if self.lr_schedule.currentData() != "plateau":
            return 0
        return self.session.config.reduce_lr_patience or PLATEAU_PATIENCE

    def _show_fine_tune_plan(self) -> None:
        """'Retrains 3 conv layers (block5), 7.08 M of 14.71 M weights' from the measured table (no TensorFlow)."""
        spec = registry.get(self.selected_backbone())
        try:
            plan = table_plan(spec, self.fine_tune_depth.currentText())
        except (StudioError, KeyError) as exc:
            blocks = ", ".join(block_names(spec)) if spec.key in TABLES else ""
            why = exc.message if isinstance(exc, StudioError) else "no layer table for this backbone"
            self.fine_tune_plan.setText(f"{escape(why)} Blocks: {escape(blocks)}.")
            return
        text = plan.summary()
        self.fine_tune_plan.setText(escape(text[0].upper() + text[1:]) + ".")
        self.fine_tune_plan.setToolTip("Layers that learn while fine-tuning:\n" + "\n".join(plan.layers)
                                       if plan.layers else "")

    def _on_form_changed(self, *_args) -> None:
        if self._loading:
            return
        self._show_fine_tune_plan()
        try:
            config = self.form_config()
            config.validate()
            registry.get(config.backbone).image_size(config.image_size)
        except StudioError as exc:
            self._show_validation(exc.message, exc.hint)
            return
        self._show_validation("", "")
        self.schedule_line.setText(escape(schedule_line(config)))
        if config != self.session.config:
            self._loading = True
            try:
                self.session.set_config(config)
            finally:
                self._loading = False
        self._show_details()

    def _show_validation(self, text: str, hint: str) -> None:
        self.validation.setVisible(bool(text))
        self.next_button.setEnabled(not text)
        if text:
            colour = severity_colour("error").name()
            self.validation.setText(f"<b style='color:{colour}'>{escape(text)}</b> {escape(hint)}")

    @property
    def is_valid(self) -> bool:
        return not self.validation.isVisible() and self.next_button.isEnabled()

    def _on_backbone_current_changed(self, *_args) -> None:
        if self._loading:
            return
        spec = registry.get(self.selected_backbone())
        with QSignalBlocker(self.weights_combo):
            if spec.weights_file_notop is None:
                self.weights_combo.setCurrentIndex(self.weights_combo.findData("none"))
            elif self.weights_combo.currentData() == "file":
                # a file belongs to the backbone it was chosen for: back to ImageNet (never silently to scratch)
                self._weights_file = None
                self.weights_combo.setCurrentIndex(self.weights_combo.findData("imagenet"))
            elif self.weights_combo.currentData() == "none" and offline_status(spec).available:
                self.weights_combo.setCurrentIndex(self.weights_combo.findData("imagenet"))
        self._on_form_changed()
        self._show_details()

    def _on_weights_choice_changed(self, *_args) -> None:
        if self.weights_combo.currentData() == "file" and not self._weights_file:
            self._on_weights_file_clicked()
            return
        self._on_form_changed()

    def _on_weights_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a weights file", "", "Keras weights (*.h5 *.keras)")
        if path:
            self.use_weights_file(path)
        elif not self._weights_file:  # cancelled: keep the previous choice (never switch to scratch)
            previous = self.session.config.weights_choice.kind
            with QSignalBlocker(self.weights_combo):
                self.weights_combo.setCurrentIndex(self.weights_combo.findData(previous))
            self._on_form_changed()

    def use_weights_file(self, path: str) -> None:
        """Start from the weights in ``path`` (checked against the backbone when training begins)."""
        self._weights_file = str(path)
        with QSignalBlocker(self.weights_combo):
            self.weights_combo.setCurrentIndex(self.weights_combo.findData("file"))
        self._on_form_changed()

    def _show_details(self) -> None:
        spec = registry.get(self.selected_backbone())
        self._follow_selection()
        status = offline_status(spec)
        pretrained = spec.weights_file_notop is not None
        self.weights_combo.setEnabled(pretrained)
        self.weights_file_button.setEnabled(pretrained)
        # fine-tuning unfreezes part of a pretrained backbone: nothing to unfreeze when it starts from scratch
        from_scratch = not pretrained or self._weights_value() == "none"
        for box in (self.fine_tune_epochs, self.fine_tune_depth, self.fine_tune_lr):
            box.setEnabled(not from_scratch)
            box.setToolTip(FROM_SCRATCH_TIP if from_scratch else box.property("usage_tip"))
        self.fine_tune_plan.setVisible(not from_scratch)
        if not from_scratch:
            self._show_fine_tune_plan()
        self.download_button.setVisible(pretrained)
        self.download_button.setEnabled(pretrained and not status.available and self._download_task is None)
        if not pretrained:
            weights = "No pretrained weights: this network always learns from scratch."
            colour = severity_colour("info").name()
        elif status.available:
            weights = "ImageNet weights: <b>available offline</b>."
            colour = severity_colour("ok").name()
        else:
            weights = ("ImageNet weights: <b>not on this computer</b>. Training will try to download them "
                       "(needs internet); without internet use <b>Import weights file…</b>.")
            colour = severity_colour("warning").name()
        chosen = self.session.config.weights_choice
        using = ""
        if pretrained and chosen.kind == "file":
            using = f"<br>Using weights file <code>{escape(chosen.value)}</code>."
        self._show_scratch_warning(spec, chosen)
        self.details.setText(f"<b>{escape(spec.label)}</b> — {escape(spec_summary(spec))}<br>"
                             f"{escape(spec.when_to_pick)}<br><span style='color:{colour}'>{weights}</span>{using}"
                             + input_note(self.session.index, self.session.config, spec.label,
                                          pretrained and chosen.pretrained))

    def _show_scratch_warning(self, spec, chosen) -> None:
        """Say plainly when a large pretrained-style backbone would learn from scratch on few images."""
        images = 0
        split = getattr(self.session, "split", None)
        if split is not None:
            images = len(getattr(split, "train", ()) or ())
        large = spec.weights_file_notop is not None and spec.params_millions >= 2
        show = large and not chosen.pretrained and (images == 0 or images < 5000)
        self.scratch_warning.setVisible(show)
        if show:
            count = f"{images} training images" if images else "a few hundred images"
            colour = severity_colour("warning").name()
            self.scratch_warning.setText(
                f"<span style='color:{colour}'><b>{escape(spec.label)} from scratch will not learn from "
                f"{count}</b>: it has {spec.params_millions:g} M weights to learn.</span> Use ImageNet weights "
                "(download them, or <b>Import weights file…</b> from a computer with internet), or choose the "
                "Small CNN, which is made to train from scratch.")
