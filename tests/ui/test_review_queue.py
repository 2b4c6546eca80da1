"""Review queue: keys R/E/K/arrows/Ctrl+Z decide on suspects; decisions land in corrections.csv, files untouched;
the Data step's button runs the real finder off the GUI thread and reads the corrected dataset after the review."""

from __future__ import annotations

import csv

from cnn_studio.ui.review_queue import ReviewQueue
from PIL import Image
from PySide6.QtCore import Qt
from studio_testkit import make_class_image, planted_issues

from cnn_studio.labels.corrections import Corrections, default_path

CLASSES = ("cat", "dog")


def _rows(path):
    return {r["path"]: r for r in csv.DictReader(open(path, encoding="utf-8"))}


def test_keys_relabel_exclude_keep_navigate_and_undo(qtbot, tmp_path):
    issues = planted_issues(tmp_path / "data", seed=0)
    before = sorted(p.name for p in (tmp_path / "data").rglob("*.png"))
    corrections = Corrections(path=tmp_path / "corrections.csv")
    dlg = ReviewQueue(issues, corrections)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    s0, s1, s2 = issues.suspects
    assert dlg.row == 0 and "dog" in dlg.title.text() and dlg.target.currentText() == "dog"
    assert not dlg.image.pixmap().isNull()
    assert dlg.neighbours.count() == 2 * (1 + 3)  # a class name and three thumbnails per class

    with qtbot.waitSignal(dlg.decided):
        qtbot.keyClick(dlg, Qt.Key.Key_R)  # relabel cat_0 as dog, move on
    assert dlg.row == 1
    qtbot.keyClick(dlg, Qt.Key.Key_E)  # exclude dog_0
    assert dlg.row == 2
    qtbot.keyClick(dlg, Qt.Key.Key_Left)
    assert dlg.row == 1
    qtbot.keyClick(dlg, Qt.Key.Key_Right)
    qtbot.keyClick(dlg, Qt.Key.Key_K)  # keep cat_1
    rows = _rows(tmp_path / "corrections.csv")
    assert (rows[s0.path]["original_label"], rows[s0.path]["new_label"]) == ("cat", "dog")
    assert rows[s1.path]["new_label"] == "excluded" and rows[s2.path]["new_label"] == "kept"
    assert "3 of 3 reviewed · 1 relabelled, 1 excluded, 1 kept" in dlg.status.text()
    assert dlg.list.item(0).text().startswith("✎")

    qtbot.keyClick(dlg, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the keep
    assert s2.path not in _rows(tmp_path / "corrections.csv") and dlg.row == 2
    qtbot.keyClick(dlg, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the exclusion
    assert dlg.row == 1 and s1.path not in _rows(tmp_path / "corrections.csv")
    assert "1 of 3 reviewed" in dlg.status.text()
    dlg.target.setCurrentText("dog")
    qtbot.keyClick(dlg, Qt.Key.Key_R)  # "relabel" dog_0 to its own class = keep
    assert _rows(tmp_path / "corrections.csv")[s1.path]["new_label"] == "kept"
    assert dlg.changed
    assert sorted(p.name for p in (tmp_path / "data").rglob("*.png")) == before  # no file moved or deleted


def test_data_page_button_finds_issues_and_rereads_the_corrected_dataset(qtbot, tmp_path, studio_home, monkeypatch):
    """Real flow: scan, click "Find label issues…" (the finder runs in the app's process here, off the GUI
    thread), review with R, close: the Data step reads the dataset again with the label changed."""
    from cnn_studio.ui.label_check import LabelCheck
    from cnn_studio.ui.pages.data_page import DataPage
    from cnn_studio.ui.session import StudioSession

    monkeypatch.setenv("CNN_STUDIO_IN_PROCESS", "1")
    real_start = LabelCheck.start
    monkeypatch.setattr(LabelCheck, "start", lambda self, root: real_start(
        self, root, backbone="small_cnn", weights="none", image_size=32, folds=3, epochs=10))
    root = tmp_path / "data"
    for name in CLASSES:
        (root / name).mkdir(parents=True)
    for c, name in enumerate(CLASSES):
        for i in range(12):
            dest = CLASSES[1 - c] if i == 0 else name  # one wrong label per class
            make_class_image(c, 32, seed=i).save(root / dest / f"{name}_{i}.png")
    Image.open(root / "cat" / "cat_1.png").save(root / "cat" / "cat_1_copy.png")

    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.check_finished, timeout=20000):
        page.open_dataset(root)
    assert page.issues_button.isEnabled()
    qtbot.mouseClick(page.issues_button, Qt.MouseButton.LeftButton)
    check = page.label_tools.label_check
    with qtbot.waitSignal(check.opened, timeout=60000) as opened:
        pass
    dlg = opened.args[0]
    qtbot.addWidget(dlg)
    assert dlg.isVisible() and dlg.suspects
    found = {s.path for s in dlg.suspects}
    assert str(root / "dog" / "cat_0.png") in found or str(root / "cat" / "dog_0.png") in found
    first = dlg.current
    qtbot.keyClick(dlg, Qt.Key.Key_R)
    assert Corrections.for_dataset(root).get(first.path).new == first.suggested
    assert default_path(root).is_file() and str(studio_home) in str(default_path(root))
    with qtbot.waitSignal(page.check_finished, timeout=20000):
        dlg.close()
    label = {r.path: session.index.class_names[r.label] for r in session.index.records}
    assert label[first.path] == first.suggested  # the session's dataset has the corrected label
    assert session.split.info["corrections"]["relabelled"] == 1
    assert session.project.corrections["labels_changed"] == 1
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=20000)
