"""Review queue: the given and the suggested label's Grad-CAM side by side, from the run's model held in its
own process; R/E/K/arrows/Ctrl+Z keep working while a map computes, and a late map of another image is not drawn."""

from __future__ import annotations

import numpy as np
from cnn_studio.ui.review_queue import ReviewQueue
from PySide6.QtCore import Qt
from studio_testkit import planted_issues

from cnn_studio.labels.corrections import Corrections


def test_heatmaps_for_given_and_suggested_while_the_keys_keep_working(qtbot, tmp_path, trained_run):
    issues = planted_issues(tmp_path / "data", seed=40)
    s0, s1, s2 = issues.suspects
    corrections = Corrections(path=tmp_path / "corrections.csv")
    dlg = ReviewQueue(issues, corrections, run_dir=trained_run)
    qtbot.addWidget(dlg)
    heat = dlg.heatmaps
    drawn = []  # (path drawn, path on screen then)
    heat.shown.connect(lambda p: drawn.append((p, dlg.current.path)))
    dlg.show()
    qtbot.waitExposed(dlg)
    assert heat.busy and "Computing" in heat.note.text()  # the model is loading in its own process

    qtbot.keyClick(dlg, Qt.Key.Key_Right)  # the queue answers while the first image's maps compute
    qtbot.keyClick(dlg, Qt.Key.Key_E)  # exclude dog_0 → moves to cat_1
    assert dlg.row == 2 and heat.busy and corrections.get(s1.path).new == "excluded"
    qtbot.keyClick(dlg, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert dlg.row == 1 and corrections.get(s1.path) is None
    qtbot.keyClick(dlg, Qt.Key.Key_Down)
    assert dlg.row == 2 and heat.current == s2.path

    qtbot.waitUntil(lambda: (s2.path, s2.path) in drawn, timeout=90000)
    assert all(p == on_screen for p, on_screen in drawn)  # cat_0's late maps were not drawn over cat_1
    assert s0.path in heat.maps  # but kept: going back shows them at once
    assert heat.captions[0].text() == "cat (given)" and heat.captions[1].text() == "dog (suggested)"
    assert not heat.pictures[0].pixmap().isNull() and not heat.pictures[1].pixmap().isNull()
    (pic_cat, heat_cat), (_, heat_dog) = heat.maps[s2.path]["cat"], heat.maps[s2.path]["dog"]
    assert pic_cat.shape[:2] == heat_cat.shape[:2] and not np.allclose(heat_cat, heat_dog, atol=1e-3)

    qtbot.keyClick(dlg, Qt.Key.Key_Up)
    qtbot.keyClick(dlg, Qt.Key.Key_Up)
    assert dlg.row == 0 and drawn[-1] == (s0.path, s0.path)  # from memory, at once
    qtbot.keyClick(dlg, Qt.Key.Key_R)  # relabel cat_0 as dog
    assert corrections.get(s0.path).new == "dog" and dlg.row == 1
    qtbot.waitUntil(lambda: (s1.path, s1.path) in drawn, timeout=30000)  # the loaded model answers the next

    model = heat.model
    assert model is not None and model.alive
    dlg.close()  # the model's process ends with the queue
    qtbot.waitUntil(lambda: not model.alive, timeout=30000)
    assert heat.model is None and not heat.busy


def test_without_a_trained_model_the_queue_says_how_to_get_heat_maps(qtbot, tmp_path):
    dlg = ReviewQueue(planted_issues(tmp_path / "data", seed=40), Corrections(path=tmp_path / "c.csv"))
    qtbot.addWidget(dlg)
    dlg.show()
    assert not dlg.heatmaps.busy and "Train a model" in dlg.heatmaps.note.text()
    qtbot.keyClick(dlg, Qt.Key.Key_K)
    assert dlg.row == 1 and not dlg.heatmaps.busy
