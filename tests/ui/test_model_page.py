"""Model page: every backbone is listed; picking one and editing settings updates session.config; bad values are flagged."""

from __future__ import annotations

from cnn_studio.ui.pages.model_page import ModelPage
from cnn_studio.ui.qmodels.backbone_list import KeyRole
from cnn_studio.ui.session import StudioSession
from PySide6.QtCore import Qt

from cnn_studio.backbones import registry
from cnn_studio.training.config import TrainConfig


def _page(qtbot):
    session = StudioSession()
    page = ModelPage(session)
    qtbot.addWidget(page)
    return session, page


def test_lists_all_backbones_and_defaults_sensibly(qtbot):
    session, page = _page(qtbot)
    model = page.backbone_model
    keys = [model.index(r).data(KeyRole) for r in range(model.rowCount())]
    assert keys == list(registry.keys())
    text = model.index(keys.index("mobilenet_v2")).data()
    assert "MobileNetV2" in text and "224" in text
    # the default is trainable here: either ImageNet weights are cached, or the small CNN from scratch
    assert (session.config.backbone, session.config.weights) in (("mobilenet_v2", "imagenet"), ("small_cnn", "none"))
    assert page.default_note.text() and not session.dirty


def test_clicking_a_backbone_and_editing_updates_config(qtbot):
    session, page = _page(qtbot)
    row = page.backbone_model.row_of("efficientnet_b0")
    page.show()
    page.backbone_view.scrollTo(page.backbone_model.index(row))
    rect = page.backbone_view.visualRect(page.backbone_model.index(row))
    with qtbot.waitSignal(session.config_changed, timeout=2000):
        qtbot.mouseClick(page.backbone_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert session.config.backbone == "efficientnet_b0"
    assert "EfficientNetB0" in page.details.text()

    page.batch_size.selectAll()
    qtbot.keyClicks(page.batch_size, "16")
    assert session.config.batch_size == 16
    page.augment_boxes["flip"].setChecked(True)
    assert "flip" in session.config.augment
    assert session.dirty


def test_invalid_combination_is_flagged_inline(qtbot):
    session, page = _page(qtbot)
    page.epochs.setValue(0)
    page.fine_tune_epochs.setValue(0)
    assert page.validation.isVisibleTo(page)
    assert "epoch" in page.validation.text().lower()
    assert not page.next_button.isEnabled()
    assert session.config.epochs + session.config.fine_tune_epochs > 0  # the invalid value never reached the session
    page.epochs.setValue(3)
    assert page.is_valid and session.config.epochs == 3


def test_session_change_refills_the_form(qtbot):
    session, page = _page(qtbot)
    session.set_config(TrainConfig(backbone="resnet50", weights="none", batch_size=8, epochs=4))
    assert page.selected_backbone() == "resnet50"
    assert page.batch_size.value() == 8 and page.epochs.value() == 4
    assert page.weights_combo.currentData() == "none"


def test_local_weights_file_is_used(qtbot, tmp_path):
    session, page = _page(qtbot)
    session.set_config(TrainConfig(backbone="mobilenet_v2", weights="none"))
    f = tmp_path / "mnv2_notop.h5"
    f.write_bytes(b"x")
    page.use_weights_file(str(f))
    assert session.config.weights == str(f)
    assert "mnv2_notop.h5" in page.details.text()


def test_fine_tune_fields_are_off_for_a_network_that_starts_from_scratch(qtbot):
    session, page = _page(qtbot)
    page.backbone_view.setCurrentIndex(page.backbone_model.index(page.backbone_model.row_of("small_cnn")))
    fields = (page.fine_tune_epochs, page.fine_tune_layers, page.fine_tune_lr)
    assert not any(f.isEnabled() for f in fields)
    assert "from scratch" in page.fine_tune_epochs.toolTip()
    page.backbone_view.setCurrentIndex(page.backbone_model.index(page.backbone_model.row_of("mobilenet_v2")))
    page.weights_combo.setCurrentIndex(page.weights_combo.findData("imagenet"))
    assert session.config.weights == "imagenet"
    assert all(f.isEnabled() for f in fields)
    assert "from scratch" not in page.fine_tune_epochs.toolTip()
    page.weights_combo.setCurrentIndex(page.weights_combo.findData("none"))
    assert session.config.weights == "none" and not any(f.isEnabled() for f in fields)


def test_cache_offers_auto_by_default_and_explains_it(qtbot):
    session, page = _page(qtbot)
    items = [page.cache.itemText(i) for i in range(page.cache.count())]
    assert items == ["auto", "memory", "disk", "none"]
    assert page.cache.currentText() == "auto" == session.config.cache
    tip = page.cache.toolTip()
    assert "auto" in tip and "half of the memory" in tip and "Train step says which and why" in tip
    page.cache.setCurrentText("disk")
    assert session.config.cache == "disk"
