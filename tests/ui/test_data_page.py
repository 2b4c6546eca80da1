"""Data page: scanning a generated folder shows classes, counts and thumbnails; one class blocks continuing."""

from __future__ import annotations

from cnn_studio.ui.pages.data_page import DataPage
from cnn_studio.ui.session import StudioSession
from PySide6.QtCore import Qt, QThread


def _open(qtbot, page, path):
    with qtbot.waitSignal(page.check_finished, timeout=20000) as blocker:
        page.open_dataset(path)
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
    return blocker.args[0]


def test_scan_shows_classes_counts_and_split(qtbot, image_folder):
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    root = image_folder(classes=("cat", "dog"), per_class=8)
    with qtbot.waitSignal(session.split_changed, timeout=20000):
        ok = _open(qtbot, page, root)
    assert ok is True
    model = page.class_model
    assert model.rowCount() == 2
    assert [model.index(r, 0).data() for r in range(2)] == ["cat", "dog"]
    assert [model.index(r, 1).data() for r in range(2)] == ["8", "8"]
    train, val = int(model.index(0, 2).data()), int(model.index(0, 3).data())
    assert train + val == 8 and val >= 1
    assert not model.index(0, 5).data(Qt.ItemDataRole.DecorationRole).isNull()  # thumbnails from the worker
    assert page.next_button.isEnabled()
    assert session.index is not None and session.index.class_names == ("cat", "dog")
    assert session.split is not None and len(session.split.train) + len(session.split.val) == 16
    assert "16 images" in page.summary.text()


def test_single_class_shows_error_and_blocks(qtbot, image_folder):
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    ok = _open(qtbot, page, image_folder(classes=("only",), per_class=4))
    assert ok is False
    assert page.banner.isVisibleTo(page)
    assert "class" in page.banner.text().lower() and "What to do" in page.banner.text()
    assert not page.next_button.isEnabled()
    assert session.split is None


def test_changing_validation_share_resplits(qtbot, image_folder):
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    _open(qtbot, page, image_folder(classes=("a", "b"), per_class=10))
    before = len(session.split.val)
    with qtbot.waitSignal(page.check_finished, timeout=20000):
        page.val_spin.setValue(50)
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
    assert len(session.split.val) > before
    assert QThread.currentThread() is page.thread()


def test_drop_zone_drop_scans(qtbot, image_folder):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    root = image_folder()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(root))])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(page.check_finished, timeout=20000):
        page.drop_zone.dropEvent(event)
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
    assert session.index is not None and session.index.root == str(root)
