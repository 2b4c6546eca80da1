"""Suggestion queue (issue 19 item 3): number keys label, S skips, Ctrl+Z undoes; the labels land in the
file beside the corrections, the next ``prepare`` reads them, and no image file is touched."""

from __future__ import annotations

import hashlib

from cnn_studio.ui.suggest_queue import SuggestQueue
from PySide6.QtCore import Qt
from studio_testkit import make_class_image

from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.labels.added_labels import AddedLabels, default_path
from cnn_studio.labels.suggest import Suggestion, Suggestions


def _files(folder):
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _suggestions(root, pool):
    pool.mkdir()
    items = []
    for i in range(3):
        p = pool / f"new_{i}.png"
        make_class_image(i % 2, 32, seed=50 + i).save(p)
        items.append(Suggestion(str(p), i + 1, (("cat", 0.55), ("dog", 0.45)), 0.1, 0.69))
    return Suggestions(root=str(root), pool=str(pool), class_names=("cat", "dog"), strategy="margin+diversity",
                       model="a quick classifier on grey pixels at 16×16 of the 16 labelled images",
                       items=tuple(items), pool_size=3, labelled=16, candidates=3,
                       labels_file=str(default_path(root)))


def test_keys_label_skip_undo_and_prepare_reads_the_labels(qtbot, image_folder, tmp_path):
    root = image_folder(("cat", "dog"), per_class=4)
    s = _suggestions(root, tmp_path / "pool")
    before = {**_files(root), **_files(tmp_path / "pool")}
    dlg = SuggestQueue(s, AddedLabels.for_dataset(root))
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert "Strategy margin+diversity (the default)" in dlg.why.text() and "quick classifier" in dlg.why.text()
    assert dlg.row == 0 and not dlg.image.pixmap().isNull() and "cat: 55%" in dlg.title.text()
    assert [b.text() for b in dlg.class_buttons] == ["1  cat", "2  dog"]
    assert dlg.width() <= 1280 and dlg.height() <= 800

    with qtbot.waitSignal(dlg.labelled):
        qtbot.keyClick(dlg, Qt.Key.Key_2)  # new_0 is a dog; on to the next
    assert dlg.row == 1
    qtbot.keyClick(dlg, Qt.Key.Key_S)  # new_1 skipped: nothing written
    assert dlg.row == 2
    qtbot.keyClick(dlg, Qt.Key.Key_1)  # new_2 is a cat
    qtbot.keyClick(dlg, Qt.Key.Key_9)  # no ninth class: nothing happens
    labels = AddedLabels.load(default_path(root))
    assert {(a.path, a.label) for a in labels.labels} == {(s.items[0].path, "dog"), (s.items[2].path, "cat")}
    assert "2 of 3 labelled · 1 skipped" in dlg.status.text()

    qtbot.keyClick(dlg, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # take back new_2
    assert dlg.row == 2 and "✓" not in dlg.list.item(2).text()
    assert [a.label for a in AddedLabels.load(default_path(root)).labels] == ["dog"]
    assert dlg.changed

    prepared = prepare(root, PrepareOptions(val_fraction=0.25, test_fraction=0.0))
    labelled = {r.path: prepared.index.class_names[r.label] for r in prepared.index.records}
    assert labelled[s.items[0].path] == "dog" and s.items[2].path not in labelled
    assert prepared.index.counts() == {"cat": 4, "dog": 5}
    assert {**_files(root), **_files(tmp_path / "pool")} == before  # image files never touched


def test_data_page_offers_suggestions_once_a_dataset_is_loaded(qtbot, image_folder):
    from cnn_studio.ui.pages.data_page import DataPage
    from cnn_studio.ui.session import StudioSession
    from studio_testkit import open_dataset

    page = DataPage(StudioSession())
    qtbot.addWidget(page)
    assert not page.suggest_button.isEnabled()
    assert open_dataset(qtbot, page, image_folder(("cat", "dog"), per_class=4))
    assert page.suggest_button.isEnabled() and "unlabelled" in page.suggest_button.toolTip()


def test_data_page_ranks_a_pool_and_rereads_the_dataset_with_the_new_labels(qtbot, image_folder, tmp_path,
                                                                             studio_home, monkeypatch):
    """Real flow: scan, rank a pool (the engine in the app's process here, off the GUI thread), label the
    first image with a key, close: the Data step reads the dataset again with that image in its class."""
    from cnn_studio.ui.pages.data_page import DataPage
    from cnn_studio.ui.session import StudioSession

    monkeypatch.setenv("CNN_STUDIO_IN_PROCESS", "1")
    root = image_folder(("cat", "dog"), per_class=4)
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(6):
        make_class_image(i % 2, 32, seed=70 + i).save(pool / f"u{i}.png")
    before = _files(pool)
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.check_finished, timeout=20000):
        page.open_dataset(root)
    run = page.suggest_images(pool, backbone="pixels", n=3)
    with qtbot.waitSignal(run.opened, timeout=60000) as opened:
        pass
    dlg = opened.args[0]
    qtbot.addWidget(dlg)
    assert len(dlg.items) == 3 and "grey pixels" in dlg.why.text()
    first = dlg.current.path
    qtbot.keyClick(dlg, Qt.Key.Key_2)
    with qtbot.waitSignal(page.check_finished, timeout=20000):
        dlg.close()
    label = {r.path: session.index.class_names[r.label] for r in session.index.records}
    assert label[first] == "dog" and len(session.index.records) == 9
    assert session.split.info["added_labels"]["added"] == 1
    assert _files(pool) == before
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
