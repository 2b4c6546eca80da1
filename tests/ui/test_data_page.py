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


def _cli_prepared(monkeypatch, argv):
    """Run ``cnn-studio`` with ``argv`` and return what its data.prepare call returned (and the exit code)."""
    import cnn_studio.cli as cli
    import cnn_studio.cli.scan as cli_scan
    import cnn_studio.cli.train as cli_train
    import cnn_studio.data.prepare as prep

    seen = []
    real = prep.prepare

    def recording(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    for module in (cli_scan, cli_train):  # the name each subcommand calls
        monkeypatch.setattr(module, "prepare", recording)
    monkeypatch.setattr(cli, "SUBCOMMANDS", {"scan": "scan", "train": "train", "resume": "train"})
    code = cli.main(argv)
    assert len(seen) == 1
    return seen[0], code


def test_gui_and_cli_prepare_the_same_split(qtbot, image_folder, tmp_path, monkeypatch, capsys):
    import json

    import cnn_studio.training.trainer as trainer

    root = image_folder(classes=("a", "b"), per_class=11)
    image_folder(classes=("c",), per_class=5, root=root)
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    page.val_spin.setValue(30)
    page.test_spin.setValue(10)
    page.seed_spin.setValue(5)
    assert _open(qtbot, page, root) is True
    gui = session.split.to_dict()
    settings = ["--val-fraction", "0.3", "--test-fraction", "0.1", "--seed", "5"]

    scanned, code = _cli_prepared(monkeypatch, ["scan", str(root), "--json", *settings])
    assert code == 0
    assert scanned.split.to_dict() == gui
    assert json.loads(capsys.readouterr().out)["split_counts"] == session.report.to_dict()["split_counts"]

    trained = []

    def fake_train(config, split, run_dir, *, sink, cancel):  # records what the CLI would train on
        trained.append((config, split))
        return trainer.TrainResult(run_dir, "completed", run_dir / "best.keras", run_dir / "last.keras", 1, ())

    import cnn_studio.cli.train as cli_train

    monkeypatch.setattr(cli_train, "train", fake_train)  # the name `cnn-studio train` calls
    _, code = _cli_prepared(monkeypatch, ["train", str(root), "--backbone", "small_cnn", "--weights", "none",
                                          "--out", str(tmp_path / "run"), *settings])
    assert code == 0
    assert trained[0][1].to_dict() == gui


def test_gui_and_cli_find_the_same_problems(qtbot, image_folder, monkeypatch, capsys):
    root = image_folder(classes=("a", "b"), per_class=8)
    image_folder(classes=("small",), per_class=2, root=root)  # enough for train+val, not for a test part too
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    page.test_spin.setValue(10)
    assert _open(qtbot, page, root) is False
    scanned, code = _cli_prepared(monkeypatch, ["scan", str(root), "--test-fraction", "0.1"])
    assert code == 2 and scanned.split is None and session.split is None
    assert [f.code for f in session.findings] == [f.code for f in scanned.findings]
    assert session.findings[0].code == "too_few_images"
    assert "small" in page.banner.text() and "at least 3" in page.banner.text()


def test_page_follows_the_session_when_another_project_opens(qtbot, image_folder, tmp_path):
    """New/opened projects reach the page through session.project_opened, not through its widgets."""
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    root = image_folder(classes=("cat", "dog"), per_class=8)
    assert _open(qtbot, page, root) is True
    page.val_spin.setValue(30)
    page.seed_spin.setValue(7)
    qtbot.waitUntil(lambda: session.split is not None and session.split.seed == 7, timeout=20000)
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
    path = session.save(tmp_path / "p")

    session.new_project()
    assert page.class_model.rowCount() == 0 and page.summary.text() == "No dataset yet."
    assert not page.next_button.isEnabled()
    page.val_spin.setValue(20)
    assert not page._resplit_timer.isActive()  # the old dataset is forgotten: nothing to re-split

    with qtbot.waitSignal(page.check_finished, timeout=20000):
        session.load(path)
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
    assert (page.val_spin.value(), page.seed_spin.value()) == (30, 7)
    assert page.class_model.rowCount() == 2 and session.index.root == str(root)


def test_shutdown_follows_session_closing(qtbot, image_folder):
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.check_finished, timeout=20000) as blocker:
        page.open_dataset(image_folder(classes=("cat", "dog"), per_class=8))
        session.close()  # the scan is cancelled at its next file
    assert blocker.args == [False] and "stopped" in page.banner.text()
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
