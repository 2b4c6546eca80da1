"""Step 2, Model: pick a pretrained backbone and the training settings, bound to ``session.config``.

The page joins its two columns (:mod:`~cnn_studio.ui.pages.model_backbone_panel` on the left,
:mod:`~cnn_studio.ui.pages.model_settings` on the right) and the weights transfers
(:mod:`~cnn_studio.ui.pages.model_weights`); their widgets are attributes of the page too."""

from __future__ import annotations

from html import escape

from cnn_studio.ui.messages import severity_colour
from cnn_studio.ui.pages import model_backbone_panel, model_settings
from cnn_studio.ui.pages.model_backbone_panel import WEIGHT_CHOICES, BackbonePanel, input_note
from cnn_studio.ui.pages.model_settings import FullWidthScroll, TrainingSettings
from cnn_studio.ui.pages.model_weights import WeightsTransfers
from cnn_studio.ui.qmodels.backbone_list import KeyRole, spec_summary
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.widgets.step_header import StepHeader
from PySide6.QtCore import QItemSelectionModel, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.backbones import registry
from cnn_studio.backbones.fine_tune import DEFAULT_DEPTH
from cnn_studio.backbones.weights_store import offline_default, offline_status
from cnn_studio.core.errors import StudioError
from cnn_studio.training.config import PLATEAU_PATIENCE, TrainConfig
from cnn_studio.training.schedule import describe as schedule_line
from cnn_studio.training.schedule import format_duration, parse_duration

__all__ = ["FIXED_DEFAULT", "FROM_SCRATCH_TIP", "WEIGHT_CHOICES", "ModelPage", "default_config", "input_note"]

FIXED_DEFAULT = (10, 5)  # the epochs "Fixed epochs" starts from (head, fine-tune)
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


class ModelPage(WeightsTransfers, QWidget):
    """Backbone cards on the left, settings on the right; every valid change goes to ``session.set_config``.

    Signals
    -------
    continue_requested()
        "Next: train" was clicked.
    """

    continue_requested = Signal()

    def __init__(self, session: StudioSession, parent: QWidget | None = None) -> None:
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
        self._weights_file: str | None = None
        self._import_task = None
        self._download_task = None
        self.backbones = self._backbone_column()
        self.settings = self._settings_column()
        self.validation = QLabel()
        self.validation.setWordWrap(True)
        self.validation.setObjectName("validation")
        self.validation.setVisible(False)
        self.next_button = QPushButton("Next: train →")
        self.next_button.setObjectName("primary")
        self.next_button.clicked.connect(self.continue_requested)
        self._lay_out(header)
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

    def _backbone_column(self) -> BackbonePanel:
        """The left column, connected; its widgets become the page's attributes (``page.weights_combo``…)."""
        panel = BackbonePanel()
        for name in model_backbone_panel.FIELDS:
            setattr(self, name, getattr(panel, name))
        self.backbone_view.selectionModel().currentChanged.connect(self._on_backbone_current_changed)
        self.weights_combo.currentIndexChanged.connect(self._on_weights_choice_changed)
        self.weights_file_button.clicked.connect(self._on_weights_file_clicked)
        self.import_button.clicked.connect(self._on_import_clicked)
        self.download_button.clicked.connect(self.download_weights)
        self.download_cancel.clicked.connect(self.cancel_download)
        return panel

    def _settings_column(self) -> TrainingSettings:
        """The right column, connected; its fields become the page's attributes (``page.learning_rate``…)."""
        settings = TrainingSettings()
        for name in model_settings.FIELDS:
            setattr(self, name, getattr(settings, name))
        settings.edited.connect(self._on_form_changed)
        settings.epochs_edited.connect(self._epochs_edited)
        return settings

    def _lay_out(self, header: QWidget) -> None:
        scroll = FullWidthScroll()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the column wraps instead
        scroll.setWidget(self.settings)
        self.settings_scroll = scroll
        # the left column scrolls too: a long download error or note never pushes the settings off-screen
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left_scroll.setWidget(self.backbones)
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

    def _follow_selection(self) -> None:
        """Notes about one backbone are shown only while it is selected (and what they say still holds)."""
        selected = self.selected_backbone()
        self.import_status.setVisible(bool(self.import_status.text())
                                      and self._status_backbone in (None, selected))
        default_holds = self._default_backbone == selected and default_config()[0].backbone == selected
        self.default_note.setVisible(bool(self.default_note.text()) and default_holds)


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
        self.settings.show_fine_tune_plan(registry.get(self.selected_backbone()))

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
        self.backbones.show_scratch_warning(spec, chosen, images)
