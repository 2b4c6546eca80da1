"""The image grid: thumbnails, placeholders and replacement."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor
from studio_testkit import make_class_image


def test_image_grid_thumbnails_placeholders_and_replacement(qtbot, tmp_path):
    from cnn_studio.ui.widgets.image_grid import ImageGrid, array_to_pixmap, thumbnail

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    make_class_image(1, 200).save(good)
    bad.write_bytes(b"nope")
    assert max(thumbnail(good, 64).width(), thumbnail(good, 64).height()) == 64
    tiny = tmp_path / "tiny.png"
    make_class_image(0, 20).save(tiny)  # a 20 px image in a 64 px cell: enlarged 3x with whole pixels
    t = thumbnail(tiny, 64).toImage()
    assert (t.width(), t.height()) == (60, 60)
    assert t.pixelColor(0, 0) == t.pixelColor(2, 2)  # one source pixel became a 3x3 block
    assert thumbnail(bad, 64).toImage().pixelColor(3, 3) == QColor("#d0d4da")
    grid = ImageGrid(64)
    qtbot.addWidget(grid)
    grid.add_image(good, "good")
    grid.add_image(bad, "bad")
    assert grid.paths() == [str(good), str(bad)]
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    grid.set_pixmap(str(good), array_to_pixmap(red))
    assert grid.items_for(str(good))[0].icon().pixmap(8).toImage().pixelColor(4, 4) == QColor(255, 0, 0)
    with qtbot.waitSignal(grid.image_activated) as blocker:
        grid.itemClicked.emit(grid.item(1))
    assert blocker.args == [str(bad)]
