"""The Model step's left column: the backbone cards, their details and where the starting weights come from."""

from __future__ import annotations

from html import escape

from cnn_studio.ui.messages import severity_colour
from cnn_studio.ui.qmodels.backbone_list import BackboneListModel
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.backbones.weights import WEIGHTS_KINDS

_WEIGHT_LABELS = {"imagenet": "ImageNet (pretrained)", "none": "None (train from scratch)",
                  "file": "A weights file on this computer"}
WEIGHT_CHOICES = tuple((kind, _WEIGHT_LABELS[kind]) for kind in WEIGHTS_KINDS)
# the widgets the Model step drives (each is also an attribute of the page)
FIELDS = ("backbone_model", "backbone_view", "details", "weights_combo", "weights_file_button", "import_button",
          "import_status", "scratch_warning", "download_button", "download_progress", "download_cancel")


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


class BackbonePanel(QWidget):
    """The backbone list, its details, the starting-weights choice and the import/download controls (widgets
    only: the Model step connects and fills them)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backbone_model = BackboneListModel(self)
        self.backbone_view = QListView()
        self.backbone_view.setModel(self.backbone_model)
        self.backbone_view.setAlternatingRowColors(True)
        self.backbone_view.setSpacing(2)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setObjectName("backbone_details")
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.weights_combo = QComboBox()
        for key, label in WEIGHT_CHOICES:
            self.weights_combo.addItem(label, key)
        self.weights_combo.setToolTip("Start from ImageNet weights (recommended: learns from far fewer images) "
                                      "or from random weights.")
        # may be narrower than its longest choice, so the left column fits beside the settings at 1280 pixels
        self.weights_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.weights_combo.setMinimumContentsLength(12)
        self.weights_file_button = QPushButton("Use a local weights file…")
        self.weights_file_button.setToolTip("A Keras .h5/.weights.h5 file of this backbone without its top "
                                            "layer, e.g. copied from a computer with internet.")
        self._make_transfer_widgets()
        self._lay_out()

    def _make_transfer_widgets(self) -> None:
        """Import, download (with its progress) and the notes about how they went."""
        self.import_button = QPushButton("Import weights file…")
        self.import_button.setToolTip("Copy a weights file (Keras' .h5 download, .weights.h5 or .keras), e.g. "
                                      "brought from a computer with internet, into CNN Studio's own weights. "
                                      "Your file is copied, never moved or deleted.")
        self.import_status = QLabel()
        self.import_status.setWordWrap(True)
        self.import_status.setObjectName("import_status")
        self.import_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scratch_warning = QLabel()
        self.scratch_warning.setWordWrap(True)
        self.scratch_warning.setObjectName("scratch_warning")
        self.scratch_warning.setVisible(False)
        self.download_button = QPushButton("Download ImageNet weights")
        self.download_button.setToolTip("Download this backbone's ImageNet weights from Keras' public address "
                                        "into CNN Studio's own weights (needs internet; the checksum is checked).")
        self.download_progress = QProgressBar()
        self.download_progress.setVisible(False)
        self.download_progress.setTextVisible(True)
        self.download_cancel = QPushButton("Cancel")
        self.download_cancel.setVisible(False)

    def _lay_out(self) -> None:
        ll = QVBoxLayout(self)
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

    def show_scratch_warning(self, spec, chosen, images: int) -> None:
        """Say plainly when a large pretrained-style backbone would learn from scratch on few images."""
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
