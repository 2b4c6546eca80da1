"""The review queue states what judged the labels and its chance verdict; at chance it shows nothing to
review and says why; the Data step's check uses the Model step's backbone and weights."""

from __future__ import annotations

import dataclasses

from cnn_studio.ui import label_check
from cnn_studio.ui.label_check import LabelCheck, label_check_choice
from cnn_studio.ui.review_queue import ReviewQueue
from studio_testkit import planted_issues

from cnn_studio.labels.checker import judge_checker
from cnn_studio.labels.corrections import Corrections
from cnn_studio.training.config import TrainConfig


def _judged(issues, probabilities):
    check = judge_checker(issues.labels, probabilities, issues.class_names, features=False)
    return dataclasses.replace(issues, probabilities=probabilities, check=check, checker="Small CNN, trained per fold")


def test_a_checker_at_chance_shows_an_empty_queue_with_why_and_what_helps(qtbot, tmp_path):
    import numpy as np

    issues = _judged(planted_issues(tmp_path / "data"), np.full((8, 2), 0.5))  # always "cat": 50% = chance
    assert not issues.trusted and issues.suspects  # even a result that carries suspects shows none
    dlg = ReviewQueue(issues, Corrections(path=tmp_path / "c.csv"))
    qtbot.addWidget(dlg)
    assert dlg.suspects == [] and dlg.list.count() == 0 and dlg.current is None
    text = dlg.intro.text()
    assert "No image is listed as wrong" in text and "not better than guessing" in text
    assert "What would help" in text and "pretrained backbone" in text
    assert "Nothing to review" in dlg.title.text()
    assert not dlg.relabel_button.isEnabled() and not dlg.keep_button.isEnabled() and not dlg.next_button.isEnabled()
    assert dlg.heatmaps.isHidden()


def test_a_trusted_checker_lists_its_suspects_with_its_verdict(qtbot, tmp_path):
    import numpy as np

    issues = planted_issues(tmp_path / "data")
    right = np.eye(2)[np.asarray(issues.labels)] * 0.9 + 0.05
    issues = _judged(dataclasses.replace(issues, labels=np.array([0] * 4 + [1] * 4)), right)
    assert issues.trusted
    dlg = ReviewQueue(issues, Corrections(path=tmp_path / "c.csv"))
    qtbot.addWidget(dlg)
    assert len(dlg.suspects) == 3 and "3 image(s) whose label looks wrong" in dlg.intro.text()
    assert "better than guessing" in dlg.intro.text() and "Small CNN" in dlg.intro.text()


def test_the_check_uses_the_model_steps_backbone_and_weights(qtbot, monkeypatch):
    from cnn_studio.ui.session import StudioSession
    from PySide6.QtWidgets import QWidget

    settings, note = label_check_choice(TrainConfig(backbone="vgg16", weights="imagenet", image_size=64))
    assert settings == {"backbone": "vgg16", "weights": "imagenet", "image_size": 64, "resize": "stretch"}
    assert note == ""
    small, _ = label_check_choice(TrainConfig(backbone="small_cnn", weights="none"))
    assert (small["backbone"], small["weights"]) == ("small_cnn", "none")
    scratch, why = label_check_choice(TrainConfig(backbone="vgg16", weights="none"))
    assert scratch["backbone"] != "vgg16" and "VGG16 from scratch" in why

    started = {}
    monkeypatch.setattr(label_check, "start_task", lambda fn, root, **kw: started.update(kw) or "task")
    session = StudioSession()
    session.set_config(TrainConfig(backbone="vgg16", weights="imagenet"))
    parent = QWidget()
    qtbot.addWidget(parent)
    check = LabelCheck(session, parent)
    assert check.start("/data") == "task"
    assert (started["backbone"], started["weights"]) == ("vgg16", "imagenet")
    assert check.describe == "VGG16, frozen ImageNet features"
