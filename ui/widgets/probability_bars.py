"""ProbabilityBars: horizontal bars of the model's top labels, painted (no pyqtgraph needed).

The first bar (the answer) is drawn in the accent colour, runners-up in grey, each with its
label and percentage, so "how sure was it?" is readable at a glance.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

BAR_HEIGHT = 20
GAP = 6


class ProbabilityBars(QWidget):
    """Show ``[(label, probability), ...]`` (best first) as labelled bars."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[tuple[str, float]] = []
        self._message = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("How likely the model thinks each label is (they add up to 100 % over all classes).")

    def set_probabilities(self, items: list[tuple[str, float]]) -> None:
        """Bars for ``items`` (label, probability in [0, 1]), best first."""
        self._items = [(str(label), max(0.0, min(1.0, float(p)))) for label, p in items]
        self._message = ""
        self.updateGeometry()
        self.update()

    def set_message(self, text: str) -> None:
        """No bars, a sentence instead (e.g. why a file could not be read)."""
        self._items, self._message = [], text
        self.updateGeometry()
        self.update()

    def items(self) -> list[tuple[str, float]]:
        return list(self._items)

    def message(self) -> str:
        return self._message

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        rows = max(1, len(self._items))
        return QSize(240, rows * (BAR_HEIGHT + GAP) + GAP)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(120, self.sizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w = self.width()
        text_colour = self.palette().text().color()
        if self._message:
            p.setPen(QColor("#b91c1c"))
            p.drawText(self.rect().adjusted(4, 0, -4, 0), Qt.TextFlag.TextWordWrap, self._message)
            return
        label_w = min(140, w // 3)
        pct_w = 48
        bar_w = max(10, w - label_w - pct_w - 12)
        for i, (label, prob) in enumerate(self._items):
            y = GAP + i * (BAR_HEIGHT + GAP)
            p.setPen(text_colour)
            p.drawText(QRectF(0, y, label_w - 4, BAR_HEIGHT),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       p.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, label_w - 4))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor("#e5e7eb"))
            p.drawRoundedRect(QRectF(label_w, y + 3, bar_w, BAR_HEIGHT - 6), 3, 3)
            p.setBrush(QColor("#2563eb" if i == 0 else "#9ca3af"))
            p.drawRoundedRect(QRectF(label_w, y + 3, bar_w * prob, BAR_HEIGHT - 6), 3, 3)
            p.setPen(text_colour)
            p.drawText(QRectF(label_w + bar_w + 6, y, pct_w, BAR_HEIGHT),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{prob:.0%}")
