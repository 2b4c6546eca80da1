"""Model step: fine-tune depth with its live plan (layers and weights), the learning-rate schedule, and the
"Download ImageNet weights" button (progress, Cancel, the short offline message) served by a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import threading
import urllib.request

import pytest
from studio_testkit import select_backbone

from cnn_studio.backbones import registry, weights_store
from cnn_studio.training.config import TrainConfig


@pytest.fixture
def page(offline_model_page):
    return offline_model_page


def test_fine_tune_depth_shows_layers_and_weights_live(page):
    page.session.set_config(TrainConfig(backbone="vgg16", weights="imagenet", fine_tune_epochs=2,
                                        fine_tune_depth="1 block"))
    assert page.fine_tune_plan.text() == "Retrains 3 conv layers (block5), 7.08 M of 14.71 M weights."
    assert "block5_conv3" in page.fine_tune_plan.toolTip()
    page.fine_tune_depth.setCurrentText("6 conv")
    assert page.session.config.fine_tune_depth == "6 conv"
    assert page.fine_tune_plan.text() == "Retrains 6 conv layers (block4, block5), 12.98 M of 14.71 M weights."
    select_backbone(page, "resnet50")
    assert "of 23.59 M weights" in page.fine_tune_plan.text()
    page.fine_tune_depth.setCurrentText("lots")
    assert not page.is_valid and "N blocks" in page.validation.text()
    assert page.session.config.fine_tune_depth == "6 conv", "an invalid depth is not taken"
    page.fine_tune_depth.setCurrentText("all")
    assert page.is_valid and page.fine_tune_plan.text().endswith("23.48 M of 23.59 M weights."), "BatchNorm never trains"


def test_old_config_keeps_its_meaning_and_schedule_sets_patience(page):
    page.session.set_config(TrainConfig(backbone="vgg16", weights="imagenet", fine_tune_layers=20))
    assert page.fine_tune_depth.currentText() == "20 layers"
    page.dropout.setValue(0.3)
    assert page.session.config.fine_tune_depth is None and page.session.config.dropout == 0.3
    page.lr_schedule.setCurrentIndex(page.lr_schedule.findData("plateau"))
    assert page.session.config.reduce_lr_patience == 2 and page.session.config.lr_schedule == "plateau"
    page.lr_schedule.setCurrentIndex(page.lr_schedule.findData("constant"))
    assert page.session.config.reduce_lr_patience == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    data = b""
    gate: threading.Event | None = None

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        half = len(self.data) // 2
        self.wfile.write(self.data[:half])
        self.wfile.flush()
        if self.gate is not None:
            self.gate.wait(10)
        try:
            self.wfile.write(self.data[half:])
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(weights_store, "weights_origin",
                        lambda spec, image_size=None: f"http://127.0.0.1:{httpd.server_port}/weights.h5")
    monkeypatch.setattr(urllib.request, "_opener", urllib.request.build_opener(urllib.request.ProxyHandler({})))
    yield _Handler
    _Handler.gate = None
    httpd.shutdown()
    httpd.server_close()


def test_download_shows_progress_and_selects_imagenet(page, qtbot, server, monkeypatch):
    server.data = b"w" * (2 << 20)
    server.gate = threading.Event()
    monkeypatch.setitem(weights_store.KERAS_NOTOP_HASHES, "vgg16", hashlib.md5(server.data).hexdigest())
    page.session.set_config(TrainConfig(backbone="vgg16", weights="none"))
    assert page.download_button.isVisibleTo(page) and page.download_button.isEnabled()
    page.download_button.click()
    assert page.download_progress.isVisibleTo(page) and page.download_cancel.isVisibleTo(page)
    qtbot.waitUntil(lambda: page.download_progress.value() > 0, timeout=10_000)
    assert "of 2.1 MB" in page.download_progress.text()
    assert not page.download_button.isEnabled()
    server.gate.set()
    qtbot.waitUntil(lambda: page._download_task is None, timeout=10_000)
    assert weights_store.stored(registry.get("vgg16")) is not None
    assert page.session.config.weights == "imagenet" and "available offline" in page.details.text()
    assert "Downloaded" in page.import_status.text() and not page.download_progress.isVisibleTo(page)
    assert not page.download_button.isEnabled(), "nothing left to download"


def test_download_can_be_cancelled_and_keeps_nothing(page, qtbot, server, tmp_path):
    server.data = b"w" * (4 << 20)
    server.gate = threading.Event()
    page.session.set_config(TrainConfig(backbone="vgg19", weights="none"))
    page.download_button.click()
    qtbot.waitUntil(lambda: page.download_progress.value() > 0, timeout=10_000)
    page.download_cancel.click()
    server.gate.set()
    qtbot.waitUntil(lambda: page._download_task is None, timeout=10_000)
    assert "cancelled" in page.import_status.text()
    assert weights_store.stored(registry.get("vgg19")) is None
    assert not list((tmp_path / "app").rglob("*.h5"))
    assert page.download_button.isEnabled()


def test_offline_download_says_file_address_and_import(page, qtbot, monkeypatch):
    proxy = urllib.request.ProxyHandler({"http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9"})
    monkeypatch.setattr(urllib.request, "_opener", urllib.request.build_opener(proxy))
    page.session.set_config(TrainConfig(backbone="xception", weights="none"))
    page.download_button.click()
    qtbot.waitUntil(lambda: page._download_task is None, timeout=20_000)
    text = page.import_status.text()
    assert "xception_weights_tf_dim_ordering_tf_kernels_notop.h5" in text
    assert "https://storage.googleapis.com/tensorflow/keras-applications/xception/" in text
    assert "Import weights file…" in text and "Errno" not in text and "URL fetch" not in text
    assert not page.download_progress.isVisibleTo(page) and page.download_button.isEnabled()
