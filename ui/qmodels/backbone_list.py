"""BackboneListModel: the backbones of ``cnn_studio.backbones.registry`` with their offline weight status."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from cnn_studio.backbones import registry
from cnn_studio.backbones.weights_store import offline_status

SpecRole = Qt.ItemDataRole.UserRole + 1
StatusRole = Qt.ItemDataRole.UserRole + 2
KeyRole = Qt.ItemDataRole.UserRole + 3
_Index = QModelIndex | QPersistentModelIndex


def spec_summary(spec) -> str:
    """One line: size, input size, speed."""
    return f"{spec.params_millions:g} M weights · {spec.input_size}×{spec.input_size} px · {spec.speed} on a laptop"


class BackboneListModel(QAbstractListModel):
    """One row per backbone; display = label + summary, tooltip = when to pick it."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._specs = list(registry.all_specs())
        self._status = {s.key: offline_status(s) for s in self._specs}

    def refresh_status(self) -> None:
        """Re-check which weights load offline (after the user imported or added a weights file)."""
        self._status = {s.key: offline_status(s) for s in self._specs}
        if self._specs:
            self.dataChanged.emit(self.index(0), self.index(len(self._specs) - 1))

    def row_of(self, key: str) -> int:
        for i, s in enumerate(self._specs):
            if s.key == key:
                return i
        return -1

    def spec(self, row: int):
        return self._specs[row]

    def status(self, key: str):
        return self._status[key]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._specs)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        spec = self._specs[index.row()]
        status = self._status[spec.key]
        if role == Qt.ItemDataRole.DisplayRole:
            offline = "" if spec.weights_file_notop is None else (
                "  ✓ ImageNet weights offline" if status.available else "  · no ImageNet weights here")
            return f"{spec.label}\n{spec_summary(spec)}{offline}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"<b>{spec.label}</b> ({spec.family})<br>{spec.when_to_pick}<br><i>{status.message}</i>"
        if role == SpecRole:
            return spec
        if role == StatusRole:
            return status
        if role == KeyRole:
            return spec.key
        return None
