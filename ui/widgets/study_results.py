"""StudyResults: the Evaluate step's study-level view (MRI volumes, DICOM series) beside the slice-level one.

The model answers slice by slice; a study's answer aggregates its slices' probabilities
(:mod:`cnn_studio.evaluation.studies`, ``Metrics.study``). This view shows the headline ("Per study (mean of
slice probabilities): 11 of 12 studies right (92 %)"), the study confusion matrix (click a cell to
list its studies), a table of studies (study, true class, predicted class, probability, slices) and,
for the study selected, the slices that drove its answer with their pictures.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from cnn_studio.ui.thumbnails import read_thumbnail
from cnn_studio.ui.widgets.confusion_matrix import ConfusionMatrix
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.data.records import slice_name
from cnn_studio.evaluation.intervals import MIN_IMAGES, describe
from cnn_studio.evaluation.studies import STUDY_UNIT

AGGREGATE_WORDS = {"mean": "mean of slice probabilities", "max": "highest slice probability per class"}
SLICE_THUMB = 96
STUDY_ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ("Study", "True", "Predicted", "Probability", "Slices")


def study_headline(study: dict[str, Any]) -> str:
    """"Per study (mean of slice probabilities): 11 of 12 studies right (92 %, 95 % CI 65–99 %)" (plain text;
    "" without studies); under :data:`MIN_IMAGES` studies the share says "too few studies to tell"."""
    if not study:
        return ""
    n = int(study["count"])
    right = sum(1 for s in study.get("studies", []) if s["label"] == s["predicted"])
    how = AGGREGATE_WORDS.get(study.get("aggregate", "mean"), study.get("aggregate", ""))
    return f"Per study ({how}): {right} of {n} studies right ({_share(study)})"


def _share(study: dict[str, Any]) -> str:
    """The study accuracy with its 95 % interval, or the verdict (bare for metrics from before study intervals)."""
    acc = (study.get("intervals") or {}).get("accuracy")
    if not acc:
        return f"{study['accuracy'] * 100:.0f} %"
    if acc.get("verdict"):
        return f"{study['accuracy'] * 100:.0f} %: {acc['verdict'].replace('images', 'studies')}, a figure needs {MIN_IMAGES}"
    return f"{study['accuracy'] * 100:.0f} %, 95 % CI {acc['low'] * 100:.0f}–{acc['high'] * 100:.0f} %"


def study_details(study: dict[str, Any]) -> tuple[str, str]:
    """(the balanced accuracy with its interval, the chance warning when the studies cannot show the model
    beats guessing, else ""), as HTML."""
    iv = study.get("intervals") or {}
    balanced = ""
    if iv.get("balanced_accuracy"):
        balanced = f"balanced accuracy {escape(describe(iv['balanced_accuracy'], 2, STUDY_UNIT))}"
    elif study.get("balanced_accuracy") is not None:
        balanced = f"balanced accuracy {study['balanced_accuracy']:.0%}"
    chance = study.get("chance") or {}
    warning = (f"<b>Warning:</b> {escape(chance['message'])} {escape(chance.get('hint', ''))}".rstrip()
               if chance.get("verdict") in ("not_better", "unproven") else "")
    return balanced, warning


def study_name(study_id: str) -> str:
    """A study's short name: its file or folder name (the full path is the tooltip)."""
    return Path(study_id).name or study_id


def _studies(n: int) -> str:
    return f"{n} study" if n == 1 else f"{n} studies"


class _Item(QTableWidgetItem):
    """A table cell that sorts by its number when it has one."""

    def __lt__(self, other) -> bool:  # noqa: D105
        a, b = self.data(Qt.ItemDataRole.UserRole + 1), other.data(Qt.ItemDataRole.UserRole + 1)
        if a is not None and b is not None:
            return a < b
        return super().__lt__(other)


class StudyResults(QWidget):
    """Study-level metrics: headline, study confusion matrix, table of studies, the slices behind one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.study: dict[str, Any] = {}
        self.class_names: list[str] = []
        self._slice_answers: dict[str, tuple[int, float]] = {}
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setObjectName("summary")
        self.matrix = ConfusionMatrix()
        self.matrix.setToolTip("Rows: the study's true class. Columns: the class its slices' probabilities add "
                               "up to. Click a cell to list its studies.")
        self.matrix.cell_chosen.connect(self.show_cell)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._on_study_selected)
        self.table_label = QLabel()
        self.all_button = QPushButton("Show all studies")
        self.all_button.clicked.connect(lambda: self.show_cell(None, None))
        self.slices_label = QLabel("Select a study to see the slices that drove its answer.")
        self.slices_label.setWordWrap(True)
        self.slices = QListWidget()
        self.slices.setViewMode(QListView.ViewMode.IconMode)
        self.slices.setIconSize(QSize(SLICE_THUMB, SLICE_THUMB))
        self.slices.setGridSize(QSize(SLICE_THUMB + 40, SLICE_THUMB + 44))
        self.slices.setMovement(QListView.Movement.Static)
        self.slices.setResizeMode(QListView.ResizeMode.Adjust)
        self.slices.setWordWrap(True)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("<b>Study confusion matrix</b>"))
        ll.addWidget(self.matrix, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.table_label, 1)
        head.addWidget(self.all_button)
        rl.addLayout(head)
        rl.addWidget(self.table, 2)
        rl.addWidget(self.slices_label)
        rl.addWidget(self.slices, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([320, 520])
        lay = QVBoxLayout(self)
        lay.addWidget(self.headline)
        lay.addWidget(split, 1)

    # ---------------------------------------------------------------- public
    def set_metrics(self, metrics) -> None:
        """Show ``metrics.study`` (empty: the view is cleared)."""
        self.study = dict(getattr(metrics, "study", None) or {})
        self.class_names = list(metrics.class_names) if metrics is not None else []
        self._slice_answers = {p["path"]: (int(p["pred"]), float(p["confidence"]))
                               for p in (metrics.predictions if metrics is not None else []) if p.get("study")}
        self.slices.clear()
        if not self.study:
            self.headline.clear()
            self.matrix.setRowCount(0)
            self.table.setRowCount(0)
            return
        balanced, warning = study_details(self.study)
        self.headline.setText(f"<b>{escape(study_headline(self.study))}</b>" + (f"; {balanced}" if balanced else "")
                              + ". Slice-level figures are in the other tabs; here each study counts once."
                              + (f"<br>{warning}" if warning else ""))
        self.matrix.set_matrix(self.study["confusion"], self.class_names, unit=("study", "studies"))
        self.show_cell(None, None)

    def show_cell(self, true: int | None, pred: int | None) -> None:
        """List the studies of one cell of the study confusion matrix (None, None: every study)."""
        rows = [s for s in self.study.get("studies", [])
                if true is None or (s["label"] == true and s["predicted"] == pred)]
        names = self.class_names
        if true is None:
            self.table_label.setText(_studies(len(rows)))
            self.matrix.clearSelection()
        else:
            verb = "correctly classified as" if true == pred else "classified as"
            self.table_label.setText(f"{_studies(len(rows))} of '{names[true]}' {verb} '{names[pred]}'")
        self.all_button.setEnabled(true is not None)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for r, s in enumerate(rows):
            prob = float(s["probabilities"][s["predicted"]])
            values = (study_name(s["study"]), names[s["label"]] if s["label"] >= 0 else "?", names[s["predicted"]],
                      f"{prob:.2f}", str(s["slices"]))
            numbers = (None, None, None, prob, int(s["slices"]))
            for c, (text, number) in enumerate(zip(values, numbers, strict=True)):
                item = _Item(text)
                item.setData(Qt.ItemDataRole.UserRole + 1, number)
                item.setData(STUDY_ROLE, s["study"])
                if c == 0:
                    item.setToolTip(s["study"])
                if c == 2 and s["label"] >= 0 and s["label"] != s["predicted"]:
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.table.setItem(r, c, item)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.slices.clear()
        self.slices_label.setText("Select a study to see the slices that drove its answer.")

    def select_study(self, study_id: str) -> bool:
        """Select ``study_id``'s row (as a click does); False when it is not listed."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(STUDY_ROLE) == study_id:
                self.table.selectRow(r)
                return True
        return False

    # ---------------------------------------------------------------- inside
    def _on_study_selected(self) -> None:
        items = self.table.selectedItems()
        if not items:
            return
        sid = items[0].data(STUDY_ROLE)
        s = next((x for x in self.study.get("studies", []) if x["study"] == sid), None)
        if s is None:
            return
        names = self.class_names
        answer = names[s["predicted"]]
        top = list(s.get("top_slices", []))
        self.slices_label.setText(
            f"<b>{escape(study_name(sid))}</b>: {escape(answer)} ({s['probabilities'][s['predicted']]:.0%}, "
            f"{s['slices']} slices). The {len(top)} slice(s) that drove it, highest probability of "
            f"{escape(answer)} first:")
        self.slices.clear()
        for key in top:
            pred, conf = self._slice_answers.get(key, (-1, 0.0))
            said = f"said {names[pred]} {conf:.0%}" if pred >= 0 else ""
            img = read_thumbnail(key, SLICE_THUMB)
            item = QListWidgetItem(QIcon(QPixmap.fromImage(img)) if not img.isNull() else QIcon(),
                                   f"{slice_name(key)}\n{said}".strip())
            item.setToolTip(key)
            item.setData(STUDY_ROLE, key)
            self.slices.addItem(item)
