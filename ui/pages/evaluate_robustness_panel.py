"""The Evaluate step's Robustness tab: accuracy as images get noisier, blurred, darker, compressed or changed on
purpose (FGSM), as a table, a plot and the adversarial examples."""

from __future__ import annotations

import pyqtgraph as pg
from cnn_studio.ui.pages.result_tables import fill_table, results_table
from cnn_studio.ui.widgets.image_grid import ImageGrid
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

PLOT_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")
# the widgets the Evaluate step drives (each is also an attribute of the page)
FIELDS = ("robust_button", "robust_text", "robust_table", "robust_plot", "robust_examples")


def robustness_curves(report: dict) -> dict[str, tuple[list[float], list[float]]]:
    """{perturbation: (strength steps 0..n, accuracies)}; step 0 is the unchanged images' accuracy.

    Levels have different units per change (noise sigma, blur radius, JPEG quality...), so the
    plot's x axis is the step number, not the raw level.
    """
    clean = float(report.get("clean_accuracy", 0.0))
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for row in report.get("rows", []):
        xs, ys = curves.setdefault(row["perturbation"], ([0.0], [clean]))
        xs.append(float(len(xs)))
        ys.append(float(row["accuracy"]))
    return curves


class RobustnessPanel(QWidget):
    """The check's button (the page starts the check), its summary, table, plot and examples."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.robust_button = QPushButton("Run robustness check")
        self.robust_button.setToolTip("Measure accuracy when images get noisy, blurred, darker, compressed, or "
                                      "are changed on purpose to fool the network (FGSM). Takes a minute.")
        self.robust_text = QLabel("How much does accuracy drop when images are a little different from "
                                  "the training images? Run the check to find out.")
        self.robust_text.setWordWrap(True)
        self.robust_table = results_table(["Change", "Strength", "Accuracy"])
        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.robust_plot = pg.PlotWidget(title="Accuracy as the change gets stronger")
        self.robust_plot.setLabel("bottom", "strength step (0 = unchanged)")
        self.robust_plot.setLabel("left", "accuracy")
        self.robust_plot.setYRange(0, 1)
        self.robust_plot.showGrid(x=True, y=True, alpha=0.25)
        self.robust_plot.addLegend(offset=(-10, -10))
        self.robust_plot.setMinimumHeight(200)
        self.robust_examples = ImageGrid(200)
        rlay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.robust_text, 1)
        top.addWidget(self.robust_button)
        rlay.addLayout(top)
        mid = QSplitter(Qt.Orientation.Horizontal)
        mid.addWidget(self.robust_table)
        mid.addWidget(self.robust_plot)
        mid.setStretchFactor(0, 0)
        mid.setStretchFactor(1, 1)
        self.robust_table.setMinimumWidth(430)
        rlay.addWidget(mid, 2)
        rlay.addWidget(QLabel("Adversarial examples: original | changed | the change, magnified"))
        rlay.addWidget(self.robust_examples, 1)

    def clear(self) -> None:
        self.robust_table.setRowCount(0)
        self.robust_plot.clear()
        self.robust_examples.clear()

    def show_report(self, report: dict) -> None:
        """A robustness report (robustness.json as a dict): its summary, rows, curves and examples."""
        units = report.get("units", {})
        clean = report.get("clean_accuracy", 0.0)
        worst = min(report.get("rows", []), key=lambda r: r["accuracy"], default=None)
        text = f"Accuracy on {report.get('n_images', 0)} unchanged images: <b>{clean:.0%}</b>."
        if worst is not None:
            text += (f" Worst case: {worst['perturbation']} at {worst['level']} "
                     f"{units.get(worst['perturbation'], '')} → {worst['accuracy']:.0%}.")
        self.robust_text.setText(text + " " + report.get("epsilon_note", ""))
        fill_table(self.robust_table, [[r["perturbation"], f"{r['level']} {units.get(r['perturbation'], '')}".strip(),
                                        float(r["accuracy"])] for r in report.get("rows", [])])
        self.robust_plot.clear()
        for i, (name, (xs, ys)) in enumerate(robustness_curves(report).items()):
            colour = PLOT_COLOURS[i % len(PLOT_COLOURS)]
            self.robust_plot.plot(xs, ys, name=name, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6,
                                  symbolBrush=colour)
        self.robust_examples.clear()
        for ex in report.get("examples", []):
            image = ex.get("image") or ex.get("path")
            self.robust_examples.add_image(image, f"{ex['clean_pred']} → {ex['adv_pred']} (ε {ex['epsilon']:g})",
                                           f"A '{ex['true']}' image: changing each pixel by at most "
                                           f"{ex['epsilon']:g} × 255 made the network change its answer from "
                                           f"'{ex['clean_pred']}' to '{ex['adv_pred']}'.")
