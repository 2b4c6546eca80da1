"""Probability bars paint the answer longest."""

from __future__ import annotations


def test_probability_bars_paint_the_answer_longest(qtbot):
    from cnn_studio.ui.widgets.probability_bars import ProbabilityBars

    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    bars.set_probabilities([("cat", 0.8), ("dog", 0.15), ("fox", 1.7)])
    assert bars.items()[2] == ("fox", 1.0)  # clipped
    bars.set_probabilities([("cat", 0.8), ("dog", 0.15)])
    bars.resize(300, bars.sizeHint().height())
    image = bars.grab().toImage()
    row = 6 + 10  # middle of the first bar
    blue = [x for x in range(image.width()) if image.pixelColor(x, row).name() == "#2563eb"]
    assert blue and 0.7 < len(blue) / (300 - 100 - 48 - 12) < 0.85
    bars.set_message("cannot be read")
    assert bars.items() == [] and bars.message() == "cannot be read"
