"""The Model step's right column: the time budget, the schedule line and the collapsed Advanced settings."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.backbones.fine_tune import DEPTH_EXAMPLES, TABLES, block_names, table_plan
from cnn_studio.core.errors import StudioError
from cnn_studio.data.augment import AUGMENTATIONS
from cnn_studio.data.augment import describe as describe_augmentation
from cnn_studio.data.records import CACHE_MODES, RESIZE_POLICIES
from cnn_studio.training.config import LR_SCHEDULES, OPTIMIZERS, PLATEAU_PATIENCE

_SCHEDULE_LABELS = {"constant": "Constant", "plateau": "Lower on a plateau (×0.3)"}
DEPTH_TIP = ("How much of the backbone learns during fine-tuning: \"1 block\" (the top block, e.g. VGG16's "
             "block5), \"2 blocks\", a block name and everything above it, \"6 conv\" (the top 6 "
             "convolution layers; BatchNorm stays frozen) or \"all\". More means more to learn and more "
             "risk of forgetting: start with 1 block.")
# the fields the Model step reads and fills (each is also an attribute of the page)
FIELDS = ("schedule", "image_size", "batch_size", "epochs", "fine_tune_epochs", "fine_tune_depth",
          "fine_tune_layers", "fine_tune_plan", "lr_schedule", "learning_rate", "fine_tune_lr", "optimizer",
          "label_smoothing", "dropout", "class_weight", "early_stopping", "seed", "resize", "cache",
          "augment_boxes", "time_budget", "schedule_line", "advanced")


def _augment_tooltip(name: str) -> str:
    try:
        return describe_augmentation(name)
    except (ImportError, KeyError):
        return name


class FullWidthScroll(QScrollArea):
    """Scrolls up and down only: at least as wide as its content, so a splitter never cuts the settings sideways
    (the left column, which scrolls too, gives way instead)."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is None:
            return hint
        width = inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(max(hint.width(), width), hint.height())


class TrainingSettings(QWidget):
    """The training settings' widgets; they say nothing of what they mean (the page reads them).

    Signals
    -------
    edited()
        Any setting changed (the time budget: when its editing finished).
    epochs_edited()
        One of the fixed schedule's epoch counts changed (after ``edited``).
    """

    edited = Signal()
    epochs_edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        from superqt import QCollapsible  # superqt loads all its widgets: ~0.2 s, only when this step opens

        super().__init__(parent)
        self._make_run_fields()
        self._make_rate_fields()
        self._make_data_fields()
        self.time_budget = QLineEdit()
        self.time_budget.setObjectName("time_budget")
        self.time_budget.setPlaceholderText("none (e.g. 10m, 1h30m)")
        self.time_budget.setToolTip("Fit training into this time: each phase stops before an epoch that would end "
                                    "past it, and the run says what it left out. Empty = no budget.")
        self.time_budget.editingFinished.connect(self.edited)
        self.schedule_line = QLabel()
        self.schedule_line.setWordWrap(True)
        self.schedule_line.setObjectName("schedule_line")
        self.advanced = QCollapsible("Advanced settings")
        self.advanced.setObjectName("advanced")
        self.advanced.addWidget(self._form_box())
        self.advanced.collapse(animate=False)
        sl = QVBoxLayout(self)
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

    def _make_run_fields(self) -> None:
        """Schedule, image and batch size, epochs and the fine-tuning depth."""
        self.schedule = QComboBox()
        self.schedule.addItem("Automatic (recommended)", "auto")
        self.schedule.addItem("Fixed epochs", "fixed")
        self.schedule.setToolTip("Automatic: each phase trains until the validation loss stops improving and "
                                 "keeps its best weights. Fixed: exactly the epochs below (changing them "
                                 "picks Fixed).")
        self.schedule.currentIndexChanged.connect(self.edited)
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
            box.valueChanged.connect(self.epochs_edited)
        self.fine_tune_depth = QComboBox()
        self.fine_tune_depth.setEditable(True)
        self.fine_tune_depth.addItems(list(DEPTH_EXAMPLES))
        self.fine_tune_depth.setToolTip(DEPTH_TIP)
        self.fine_tune_depth.setProperty("usage_tip", DEPTH_TIP)
        self.fine_tune_depth.currentTextChanged.connect(self.edited)
        self.fine_tune_layers = self.fine_tune_depth  # the older name of this field
        self.fine_tune_plan = QLabel()
        self.fine_tune_plan.setWordWrap(True)
        self.fine_tune_plan.setObjectName("fine_tune_plan")

    def _make_rate_fields(self) -> None:
        """Learning rates, their schedule, the optimizer and the regularisers."""
        self.lr_schedule = QComboBox()
        for key in LR_SCHEDULES:
            self.lr_schedule.addItem(_SCHEDULE_LABELS[key], key)
        self.lr_schedule.setToolTip(f"Keep the learning rate, or lower it ×0.3 when validation loss has not "
                                    f"improved for {PLATEAU_PATIENCE} epochs (helps the last epochs settle).")
        self.lr_schedule.currentIndexChanged.connect(self.edited)
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
        self.class_weight.toggled.connect(self.edited)
        self.early_stopping = self._spin(0, 100, "Stop when validation loss has not improved for this many "
                                         "epochs (the best model is kept). 0 = off.")
        self.seed = self._spin(0, 2**31 - 1, "Same number = same result when training again.")

    def _make_data_fields(self) -> None:
        """How images are made square, where they are cached, and the augmentations."""
        self.resize = self._combo(RESIZE_POLICIES, "How images of another shape are made square: stretch, pad "
                                  "with black borders, or crop the centre.")
        self.cache = self._combo(CACHE_MODES, "Where the images are kept, once decoded, so later epochs do not "
                                 "read the files again. auto (recommended): in memory when they take less than half "
                                 "of the memory free, otherwise on disk in the run folder, otherwise not kept; the "
                                 "Train step says which and why. memory: fastest, but a large dataset can fill "
                                 "the computer's memory. disk: for datasets larger than memory. none: read the "
                                 "files again every epoch (slowest, uses no space).")
        self.augment_boxes: dict[str, QCheckBox] = {}
        self._augment_box = QWidget()
        al = QGridLayout(self._augment_box)  # wraps: one long row made the column scroll sideways
        al.setContentsMargins(0, 0, 0, 0)
        for i, name in enumerate(AUGMENTATIONS):
            box = QCheckBox(name)
            box.setToolTip(_augment_tooltip(name))
            box.toggled.connect(self.edited)
            self.augment_boxes[name] = box
            al.addWidget(box, i // 3, i % 3)

    def _form_box(self) -> QWidget:
        """The Advanced settings' form: a label (with the field's tooltip) beside each field."""
        depth_box = QWidget()
        db = QVBoxLayout(depth_box)
        db.setContentsMargins(0, 0, 0, 0)
        db.addWidget(self.fine_tune_depth)
        db.addWidget(self.fine_tune_plan)
        form_box = QWidget()
        form = QFormLayout(form_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, w in (("Schedule", self.schedule), ("Image size", self.image_size), ("Batch size", self.batch_size),
                         ("Epochs", self.epochs), ("Fine-tune epochs", self.fine_tune_epochs),
                         ("Fine-tune depth", depth_box), ("Learning rate", self.learning_rate),
                         ("Fine-tune learning rate", self.fine_tune_lr), ("Learning-rate schedule", self.lr_schedule),
                         ("Optimizer", self.optimizer),
                         ("Label smoothing", self.label_smoothing), ("Dropout", self.dropout),
                         ("Class weights", self.class_weight), ("Augmentation", self._augment_box),
                         ("Early stopping (epochs)", self.early_stopping), ("Seed", self.seed),
                         ("Resize", self.resize), ("Cache", self.cache)):
            form.addRow(label, w)
            lab = form.labelForField(w)
            if lab is not None:
                lab.setToolTip(w.toolTip() or DEPTH_TIP)
        return form_box

    def show_fine_tune_plan(self, spec) -> None:
        """'Retrains 3 conv layers (block5), 7.08 M of 14.71 M weights' from the measured table (no TensorFlow)."""
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

    def _spin(self, lo: int, hi: int, tip: str) -> QSpinBox:
        w = QSpinBox()
        w.setRange(lo, hi)
        w.setToolTip(tip)
        w.setProperty("usage_tip", tip)
        w.valueChanged.connect(self.edited)
        return w

    def _dspin(self, lo: float, hi: float, decimals: int, tip: str) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setDecimals(decimals)
        w.setRange(lo, hi)
        w.setSingleStep(10 ** -(decimals - 1) if decimals > 2 else 0.05)
        w.setToolTip(tip)
        w.setProperty("usage_tip", tip)
        w.valueChanged.connect(self.edited)
        return w

    def _combo(self, items: tuple[str, ...], tip: str) -> QComboBox:
        w = QComboBox()
        w.addItems(list(items))
        w.setToolTip(tip)
        w.currentIndexChanged.connect(self.edited)
        return w
