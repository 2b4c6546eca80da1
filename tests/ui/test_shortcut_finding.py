"""A suspected shortcut is shown where it is: the Train and Evaluate steps frame the masked region in red
on each affected image (mapped through the run's resize policy) and say what the model answered before
and after masking."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from cnn_studio.core import events as ev

BOX = (0.0, 0.0, 0.25, 0.25)


def _grey(path, w=64, h=64):
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)
    return str(path)


def _is_red(img, x, y):
    c = img.pixelColor(x, y)
    return c.red() > 200 and c.green() < 90 and c.blue() < 90


def test_the_box_is_drawn_where_the_model_input_had_it(qtbot, tmp_path):
    from cnn_studio.ui.widgets.notice_banner import boxed_thumbnail

    square = boxed_thumbnail(_grey(tmp_path / "sq.png"), 128, BOX).toImage()
    assert square.width() == 128
    assert _is_red(square, 1, 16) and _is_red(square, 16, 1) and _is_red(square, 30, 16)  # the frame's sides
    assert not _is_red(square, 16, 16) and not _is_red(square, 64, 64) and not _is_red(square, 40, 8)

    wide = _grey(tmp_path / "wide.png", 200, 100)  # cropped to its central square by the pipeline
    crop = boxed_thumbnail(wide, 128, BOX, "crop").toImage()  # 128 × 64: the box is x 32–48, y 0–16
    assert _is_red(crop, 33, 8) and not _is_red(crop, 10, 8) and not _is_red(crop, 1, 8)
    stretch = boxed_thumbnail(wide, 128, BOX, "stretch").toImage()
    assert _is_red(stretch, 1, 8)


def test_train_step_frames_the_region_on_the_affected_images(qtbot, tmp_path):
    from cnn_studio.ui.pages.train_page import TrainPage
    from cnn_studio.ui.session import StudioSession

    page = TrainPage(StudioSession())
    qtbot.addWidget(page)
    images = [_grey(tmp_path / f"{i}.png") for i in range(3)]
    message = "The answers depend on the top-left corner: masking it changes 16 of 32 answers."
    page._on_train_event(ev.ShortcutSuspected(kind="occlusion", region="top-left corner", message=message,
                                              hint="Crop the corner.", examples=tuple(images), box=BOX,
                                              n_affected=16))
    page._on_train_event(ev.ChanceLevel(accuracy=0.5, baseline=0.5, n_images=12, verdict="not_better",
                                        message="Not better than guessing.", hint=""))
    grid = page.notice.examples
    assert not page.notice.isHidden() and message in page.notice.label.text()
    assert grid.paths() == images and page.notice.box == BOX, "a second finding keeps the shortcut's images"
    icon = grid.item(0).icon().pixmap(grid.iconSize()).toImage()
    assert _is_red(icon, 1, icon.height() // 8) and not _is_red(icon, 36, 36)
    assert "red frame" in grid.item(0).toolTip()


def test_evaluate_step_captions_the_changed_answers_and_enlarges_with_the_frame(qtbot, tmp_path):
    from cnn_studio.ui.pages.evaluate_page import EvaluatePage
    from cnn_studio.ui.session import StudioSession
    from test_result_warnings import _metrics

    page = EvaluatePage(StudioSession())
    qtbot.addWidget(page)
    paths = [_grey(tmp_path / f"{i}.png") for i in range(4)]
    affected = [{"key": paths[0], "answer": "shirt", "masked_answer": "t_shirt", "swapped_answer": "t_shirt",
                 "masked_changed": True, "swapped_changed": True},
                {"key": paths[1], "answer": "t_shirt", "masked_answer": "t_shirt", "swapped_answer": "shirt",
                 "masked_changed": False, "swapped_changed": True}]
    shortcuts = {"suspected": True, "kind": "occlusion", "region": "top-left corner", "box": list(BOX),
                 "resize": "stretch", "message": "Masking the top-left corner changes 2 of 4 answers.",
                 "hint": "Crop it.", "examples": paths[:2], "affected": affected}
    page._on_metrics_returned(_metrics([0, 1, 0, 1], [[0.9, 0.1], [0.1, 0.9]] * 2, ["shirt", "t_shirt"], paths,
                                       shortcuts))
    grid = page.shortcut_banner.examples
    assert grid.paths() == paths[:2]
    assert grid.item(0).text() == "0.png\nmasked: shirt → t_shirt"
    assert grid.item(1).text() == "1.png\nswapped: t_shirt → shirt"
    page.show()
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=grid.visualItemRect(grid.item(0)).center())
    big = page.example_picture.pixmap().toImage()
    assert _is_red(big, 3, big.height() // 8) and "framed in red" in page.example_caption.text()
