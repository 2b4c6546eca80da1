"""Layer shapes in the architecture table drop the batch axis."""

from __future__ import annotations


def test_shape_text_drops_the_batch_axis():
    from cnn_studio.ui.pages.evaluate_page import shape_text

    assert shape_text((None, 32, 32, 16)) == "32 × 32 × 16"
    assert shape_text((None, 4)) == "4"
    assert shape_text([(None, None, 8), (None, 2)]) == "? × 8"
