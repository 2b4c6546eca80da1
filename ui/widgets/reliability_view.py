"""ReliabilityView: the reliability diagram (is an answer given with 80% confidence right 80% of the
time?) before and after temperature scaling, with the expected calibration error (ECE) and T.

Fed with ``metrics.json["calibration"]`` (:func:`cnn_studio.evaluation.evaluate.calibration_summary`):
``bins`` / ``bins_uncalibrated`` rows ``{low, high, count, confidence, accuracy}``, ``ece``,
``ece_uncalibrated``, ``temperature`` and the validation fit ``fitted_on_validation``.
Plot items are made once and updated with ``setData`` (style rule 9).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

BEFORE_COLOUR = "#9ca3af"
AFTER_COLOUR = "#2563eb"


def bin_points(bins: list[dict]) -> tuple[list[float], list[float]]:
    """(mean confidence, accuracy) of the non-empty bins, in bin order."""
    rows = [b for b in bins or [] if b.get("count") and b.get("confidence") is not None]
    return [float(b["confidence"]) for b in rows], [float(b["accuracy"]) for b in rows]


def calibration_text(cal: dict) -> str:
    """The calibration in plain words (rich text): ECE before/after and the temperature."""
    if not cal:
        return "Evaluate the model to see whether its confidence can be trusted."
    t = float(cal.get("temperature", 1.0))
    n = cal.get("n_images", 0)
    ece, raw = float(cal.get("ece", 0.0)), float(cal.get("ece_uncalibrated", cal.get("ece", 0.0)))
    text = (f"<b>Expected calibration error (ECE): {raw:.3f} before → {ece:.3f} after</b> temperature scaling "
            f"on these {n} images (0 = the confidence is exactly how often the model is right). ")
    if t != 1.0:
        text += f"Temperature <b>T = {t:.3g}</b> is built into the saved model and every export. "
    else:
        text += "No temperature scaling is applied (T = 1). "
    fit = cal.get("fitted_on_validation") or {}
    if fit:
        text += (f"Fitted on {fit.get('n_images', 0)} validation images: ECE {float(fit.get('ece_before', 0)):.3f}"
                 f" → {float(fit.get('ece_after', 0)):.3f}" + (f" ({fit['reason']})" if fit.get("reason") else "")
                 + ".")
    return text


class ReliabilityView(QWidget):
    """Confidence (x) against how often the model is right (y), per confidence bin; the diagonal is perfect."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel(calibration_text({}))
        self.text.setWordWrap(True)
        self.plot = pg.PlotWidget(title="Reliability: is a 80% answer right 80% of the time?")
        self.plot.setLabel("bottom", "confidence of the answer (mean of the bin)")
        self.plot.setLabel("left", "share of right answers")
        self.plot.setXRange(0, 1)
        self.plot.setYRange(0, 1)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(10, 10))
        self.plot.setMinimumHeight(220)
        self.diagonal = self.plot.plot([0, 1], [0, 1], name="perfectly calibrated",
                                       pen=pg.mkPen("#6b7280", width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.before = self.plot.plot([], [], name="before calibration", pen=pg.mkPen(BEFORE_COLOUR, width=2),
                                     symbol="s", symbolSize=7, symbolBrush=BEFORE_COLOUR)
        self.after = self.plot.plot([], [], name="after calibration", pen=pg.mkPen(AFTER_COLOUR, width=2),
                                    symbol="o", symbolSize=8, symbolBrush=AFTER_COLOUR)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.text)
        lay.addWidget(self.plot, 1)

    def set_calibration(self, cal: dict | None) -> None:
        """Show ``metrics.json["calibration"]`` (or nothing for ``None``/``{}``)."""
        cal = cal or {}
        self.text.setText(calibration_text(cal))
        self.before.setData(*bin_points(cal.get("bins_uncalibrated") or cal.get("bins") or []))
        self.after.setData(*bin_points(cal.get("bins") or []))

    def curves(self) -> dict[str, tuple[list[float], list[float]]]:
        """The plotted points, by series (for tests and screenshots)."""
        out = {}
        for name, item in (("before", self.before), ("after", self.after)):
            xs, ys = item.getData()
            out[name] = ([] if xs is None else [float(v) for v in xs], [] if ys is None else [float(v) for v in ys])
        return out
