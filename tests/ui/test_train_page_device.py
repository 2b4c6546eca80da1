"""The Train step says which device trains and, on a GPU, the memory in use (events fed by hand)."""

from __future__ import annotations

from cnn_studio.ui.pages.train_page import TrainPage
from cnn_studio.ui.session import StudioSession

from cnn_studio import events as ev


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
