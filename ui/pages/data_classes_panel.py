"""The Data step's class table: one row per class with its counts and a few example thumbnails (read off
the GUI thread), and below it the band picker of a multi-band dataset (the thumbnails show its R, G, B)."""

from __future__ import annotations

from cnn_studio.ui.qmodels.class_table import THUMB, ClassTableModel
from cnn_studio.ui.thumbnails import read_thumbnail
from cnn_studio.ui.widgets.band_picker import BandPicker
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.data.records import DatasetIndex

EXAMPLES_PER_CLASS = 5
# the widgets the Data step drives (each is also an attribute of the page)
FIELDS = ("class_model", "class_table", "band_picker")


def load_thumbnails(groups: list[list[str]], size: int = THUMB, rgb: tuple[int, ...] | None = None, *,
                    sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> list[list[QImage]]:
    """Read small thumbnails (scaled reads, worker thread): one list of QImages per group of record keys
    (a file, or a slice of a volume: ``path#slice=AXIS:INDEX``); ``rgb``: the bands a multi-band file
    shows as red, green and blue."""
    out = []
    for paths in groups:
        raise_if_cancelled(cancel)
        out.append([read_thumbnail(p, size * 2, rgb) for p in paths])
    return out


class ClassesPanel(QWidget):
    """The class table (its model: :class:`ClassTableModel`) and the band picker (hidden unless multi-band)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb_task = None
        self.class_model = ClassTableModel(self)
        self.class_table = QTableView()
        self.class_table.setModel(self.class_model)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.class_table.setIconSize(QSize(5 * (THUMB + 3), THUMB))
        hh = self.class_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(5, QHeaderView.ResizeMode.ResizeToContents)
        self.band_picker = BandPicker()
        self.band_picker.setVisible(False)
        ll = QVBoxLayout(self)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("<b>Classes</b>"))
        ll.addWidget(self.class_table, 1)
        ll.addWidget(self.band_picker)

    def show_index(self, index: DatasetIndex | None, split=None) -> None:
        """Show the classes of ``index`` (None: an empty table)."""
        if index is None:
            self.class_model.set_index(None)
            return
        self.class_model.set_index(index, split)
        self.class_table.resizeColumnsToContents()

    def cancel(self) -> None:
        if self.thumb_task is not None:
            self.thumb_task.cancel()

    def load_thumbnails(self, index: DatasetIndex) -> None:
        """Read a few examples per class off the GUI thread (a newer call replaces an unfinished one)."""
        groups: list[list[str]] = [[] for _ in index.class_names]
        for r in _examples(index):
            if len(groups[r.label]) < EXAMPLES_PER_CLASS:
                groups[r.label].append(r.key)
        rgb = self.band_picker.rgb_bands() if index.bands else None
        self.cancel()
        task = start_task(load_thumbnails, groups, THUMB, rgb, on_returned=self._on_thumbnails_returned)
        task.signals.finished.connect(lambda t=task: self._on_thumbs_finished(t))
        self.thumb_task = task

    def _on_thumbs_finished(self, task) -> None:
        if self.thumb_task is task:
            self.thumb_task = None

    def _on_thumbnails_returned(self, groups: list[list[QImage]]) -> None:
        if len(groups) != self.class_model.rowCount():
            return
        for row, images in enumerate(groups):
            self.class_model.set_thumbnails(row, images)
        self.class_table.resizeColumnToContents(5)


def _examples(index: DatasetIndex):
    """Records to show as examples: for volumes the middle slice of each study (its first slice is often
    near-empty), else the records in order."""
    if not index.studies:
        return index.records
    by_study: dict[str, list] = {}
    for r in index.records:
        by_study.setdefault(r.study or r.path, []).append(r)
    return [recs[len(recs) // 2] for recs in by_study.values()]
