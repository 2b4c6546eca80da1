"""ClassTableModel: one row per class — name, image count, train/val/test counts, example thumbnails."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap

from cnn_studio.data.records import DatasetIndex, Split

COLUMNS = ("Class", "Images", "Train", "Val", "Test", "Examples")
THUMB = 40
_Index = QModelIndex | QPersistentModelIndex


def thumbnail_strip(images: list[QImage], size: int = THUMB, gap: int = 3) -> QPixmap:
    """Lay out up to 5 thumbnails side by side in one pixmap (made on the GUI thread)."""
    n = max(len(images), 1)
    pix = QPixmap(n * (size + gap), size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    for i, img in enumerate(images):
        if img.isNull():
            continue
        scaled = img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        p.drawImage(i * (size + gap) + (size - scaled.width()) // 2, (size - scaled.height()) // 2, scaled)
    p.end()
    return pix


class ClassTableModel(QAbstractTableModel):
    """Read-only table over a :class:`DatasetIndex` (and its :class:`Split` when there is one)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._names: tuple[str, ...] = ()
        self._counts: list[int] = []
        self._split_counts: dict[str, list[int]] = {}
        self._thumbs: dict[int, QPixmap] = {}
        self._unit = "Images"  # "Tiles" for multi-band arrays, "Slices" for slices of volumes

    def set_index(self, index: DatasetIndex | None, split: Split | None = None) -> None:
        self.beginResetModel()
        self._names = index.class_names if index is not None else ()
        self._counts = list(index.counts().values()) if index is not None else []
        self._unit = "Tiles" if index is not None and index.bands else (
            "Slices" if index is not None and index.studies else "Images")
        self._thumbs = {}
        self._set_split(split)
        self.endResetModel()

    def _set_split(self, split: Split | None) -> None:
        self._split_counts = {}
        if split is None or split.class_names != self._names:
            return
        for part in ("train", "val", "test"):
            counts = [0] * len(self._names)
            for r in split.subset(part):
                counts[r.label] += 1
            self._split_counts[part] = counts

    def set_split(self, split: Split | None) -> None:
        self._set_split(split)
        if self._names:
            self.dataChanged.emit(self.index(0, 2), self.index(len(self._names) - 1, 4))

    def set_thumbnails(self, row: int, images: list[QImage]) -> None:
        if 0 <= row < len(self._names):
            self._thumbs[row] = thumbnail_strip(images)
            i = self.index(row, 5)
            self.dataChanged.emit(i, i)

    def class_names(self) -> tuple[str, ...]:
        return self._names

    # ---------------------------------------------------------------- Qt model API
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._names)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._unit if section == 1 else COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            unit = self._unit
            return ("Class name = folder name", f"Usable {unit.lower()} in this class",
                    f"{unit} the network learns from", f"{unit} held back to check progress while training",
                    f"{unit} kept aside for the final evaluation", f"A few {unit.lower()} of this class")[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return self._names[row]
            if col == 1:
                return f"{self._counts[row]:,}"
            if 2 <= col <= 4:
                part = ("train", "val", "test")[col - 2]
                return f"{self._split_counts[part][row]:,}" if part in self._split_counts else "–"
        elif role == Qt.ItemDataRole.DecorationRole and col == 5:
            return self._thumbs.get(row)
        elif role == Qt.ItemDataRole.SizeHintRole and col == 5:
            return QSize(5 * (THUMB + 3), THUMB + 4)
        elif role == Qt.ItemDataRole.TextAlignmentRole and 1 <= col <= 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == Qt.ItemDataRole.UserRole and col == 1:
            return self._counts[row]
        return None
