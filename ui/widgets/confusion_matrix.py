"""ConfusionMatrix: a table of counts coloured by row share; clicking a cell asks for its images."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

SELECTION_COLOUR = "#f59e0b"  # amber: neither the blue of right answers nor the red of mistakes


class _OutlineSelection(QStyledItemDelegate):
    """Paints a chosen cell in its own colour with an amber frame, instead of the style's highlight
    (a blue fill that read as "right answer")."""

    def paint(self, painter, option, index) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        opt = QStyleOptionViewItem(option)
        opt.state &= ~(QStyle.StateFlag.State_Selected | QStyle.StateFlag.State_HasFocus)
        super().paint(painter, opt, index)
        if selected:
            painter.save()
            painter.setPen(QPen(QColor(SELECTION_COLOUR), 4))
            painter.drawRect(option.rect.adjusted(2, 2, -2, -2))
            painter.restore()


def _blend(share: float, correct: bool) -> QColor:
    """White → blue for the diagonal (right answers), white → red elsewhere (mistakes)."""
    target = (37, 99, 235) if correct else (220, 38, 38)
    s = max(0.0, min(1.0, share))
    return QColor(*(int(255 + (t - 255) * s * 0.85) for t in target))


def legend_html() -> str:
    """The colour key of the matrix in plain words (rich text for a QLabel)."""
    def swatch(share: float, correct: bool) -> str:
        return f'<span style="background:{_blend(share, correct).name()}">&nbsp;&nbsp;&nbsp;&nbsp;</span>'

    right = "".join(swatch(s, True) for s in (0.1, 0.4, 0.7, 1.0))
    wrong = "".join(swatch(s, False) for s in (0.1, 0.4, 0.7, 1.0))
    return (f"{right} right answers &nbsp;&nbsp; {wrong} mistakes<br>"
            "Darker = a larger share of that row's images. Each cell: count and share of its row.")


class ConfusionMatrix(QTableWidget):
    """Rows = true class, columns = predicted class. ``cell_chosen(true, pred)`` on click."""

    cell_chosen = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setItemDelegate(_OutlineSelection(self))
        self.cellClicked.connect(self._on_cell_clicked)
        self.setToolTip("Rows: the true class. Columns: what the model said. The diagonal (blue) are right "
                        "answers; red cells are mistakes. Click a cell to see its images (the chosen cell gets an amber "
                        "frame).")

    def set_matrix(self, confusion: list[list[int]], class_names: list[str],
                   unit: tuple[str, str] = ("image", "images")) -> None:
        """Show ``confusion`` (rows = true class, columns = predicted class) with its class names.

        ``unit`` names what is counted, singular and plural (the study view counts studies).
        """
        n = len(class_names)
        self.clear()
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([f"said {c}" for c in class_names])
        self.setVerticalHeaderLabels([f"is {c}" for c in class_names])
        for i in range(n):
            total = sum(confusion[i]) or 1
            for j in range(n):
                count = confusion[i][j]
                item = QTableWidgetItem(f"{count}\n{count / total:.0%}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                colour = _blend(count / total, i == j)
                item.setBackground(QBrush(colour))
                item.setForeground(QBrush(QColor("white" if colour.lightness() < 140 else "#111827")))
                item.setToolTip(f"{count} {unit[count != 1]} of '{class_names[i]}' "
                                f"{'was' if count == 1 else 'were'} classified as '{class_names[j]}'")
                self.setItem(i, j, item)

    def _on_cell_clicked(self, row: int, col: int) -> None:
        self.cell_chosen.emit(row, col)
