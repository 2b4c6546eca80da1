"""The Train step says which device trains and, on a GPU, the memory in use (events fed by hand)."""

from __future__ import annotations

from cnn_studio.ui.pages.train_page import TrainPage
from cnn_studio.ui.session import StudioSession

from cnn_studio.core import events as ev


def test_device_line_under_the_plan_and_gpu_memory(qtbot):
    page = TrainPage(StudioSession())
    qtbot.addWidget(page)
    cpu = "Training on the CPU (no GPU found): large backbones will be slow."
    page._on_train_event(ev.TrainStarted("r", "small_cnn", 2, 3, 24, 8, device=cpu, batch_size=8))
    assert page.device.text() == cpu
    assert cpu in page.log.toPlainText()
    page._on_train_event(ev.BatchEnded("scratch", 0, 1, 3))  # no GPU: the line stays as it is
    assert page.device.text() == cpu
    gpu = "Training on the GPU: NVIDIA H200, 140 GiB."
    page._on_train_event(ev.TrainStarted("r", "small_cnn", 2, 3, 24, 8, device=gpu, batch_size=8))
    page._on_train_event(ev.BatchEnded("scratch", 0, 1, 3, gpu_memory_mib=3 * 1024.0))
    assert page.device.text() == f"{gpu} GPU memory in use: 3.0 GiB."


def test_the_device_lines_filled_in_when_training_starts_leave_the_curves_their_size(qtbot):
    """Issue 20, item 8: the empty lines grew when TrainStarted filled them, and the curves shrank: a relayout
    of both plots while training (one of the longest stalls of the window)."""
    from cnn_studio.ui.app import load_style_sheet
    from PySide6.QtWidgets import QApplication

    QApplication.instance().setStyleSheet(load_style_sheet())  # the app's fonts: the line height comes from them
    try:
        page = TrainPage(StudioSession())
        qtbot.addWidget(page)
        page.resize(1000, 760)
        page.show()
        qtbot.waitExposed(page)
        before = page.curves.geometry()
        page._on_train_event(ev.TrainStarted("r", "small_cnn", 2, 3, 24, 8, batch_size=8, device="Training on "
                                             "the GPU: NVIDIA H200, 140 GiB.", precision="Mixed precision."))
        QApplication.processEvents()
        assert page.device.isVisible() and page.curves.geometry() == before
    finally:
        QApplication.instance().setStyleSheet("")
