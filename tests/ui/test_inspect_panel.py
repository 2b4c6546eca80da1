"""Inspect panel: Grad-CAM up close, class choice, layer table in plain words, feature maps."""

from __future__ import annotations

import pytest
from studio_testkit import make_class_image

from cnn_studio.explain.views import CLASSIFY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classifier(trained_run):
    """The run's model in its own process, as the Classify step holds it."""
    from cnn_studio.explain.views import open_model

    model = open_model(trained_run)
    yield model
    model.close()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "look.png"
    make_class_image(1, 48, seed=5).save(path)  # not the model's size: the heat map follows the original
    return path


def _done(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.busy(), timeout=60000)


def test_gradcam_bars_layers_and_feature_maps(qtbot, classifier, image):
    from cnn_studio.ui.pages.inspect_panel import InspectPanel

    panel = InspectPanel()
    qtbot.addWidget(panel)
    [prediction] = classifier.call(CLASSIFY, [str(image)], top_k=3)
    panel.inspect(classifier, str(image), prediction=prediction)
    _done(qtbot, panel)
    result = panel.result
    assert result is not None and result["original"].shape[:2] == (48, 48)
    assert result["heat"].shape == (48, 48)
    assert result["class_index"] == classifier.info.class_names.index(prediction.label)
    assert panel.bars.items() == [(label, pytest.approx(p)) for label, p in prediction.top]
    assert not panel.heatmap.pixmap().isNull()
    assert classifier.info.class_names[result["class_index"]] in panel.title.text()

    # the opacity slider re-blends on the GUI thread: 0 shows the untouched picture
    panel.heatmap.opacity.setValue(0)
    assert (panel.heatmap.blended() == result["original"]).all()
    panel.heatmap.opacity.setValue(80)
    assert (panel.heatmap.blended() != result["original"]).any()

    n = panel.layer_table.rowCount()
    assert n == len(result["layers"]) > 1
    panel.layer_table.setCurrentCell(0, 0)  # like a click on the first layer
    _done(qtbot, panel)
    assert "feature maps" in panel.maps_caption.text() and not panel.maps.pixmap().isNull()
    assert "feature maps of" in panel.layer_text.text()
    conv = next(r for r in range(n) if "conv" in panel.layer_table.item(r, 1).text().lower())
    assert "patch" in panel.layer_table.item(conv, 0).toolTip()
    assert "Stride" in panel.layer_table.item(conv, 0).toolTip()


def test_explaining_another_class(qtbot, classifier, image):
    from cnn_studio.ui.pages.inspect_panel import InspectPanel

    panel = InspectPanel()
    qtbot.addWidget(panel)
    panel.inspect(classifier, str(image))
    _done(qtbot, panel)
    other = 1 - panel.result["class_index"]
    panel.class_box.setCurrentIndex(other)
    panel._on_class_box_activated(other)
    _done(qtbot, panel)
    assert panel.result["class_index"] == other
    assert classifier.info.class_names[other] in panel.title.text()


def test_describe_layer_in_plain_words():
    from cnn_studio.ui.pages.inspect_panel import describe_layer

    from cnn_studio.explain.feature_maps import LayerInfo

    conv = describe_layer(LayerInfo("conv1", "conv", (None, 16, 16, 32), (2, 2), "same", (3, 3)))
    assert "32 feature maps of 16×16" in conv and "3×3 patch" in conv and "learned weights" in conv
    assert "2× smaller" in conv and "zeros are added" in conv
    pool = describe_layer(LayerInfo("pool", "pool", (None, 8, 8, 32), (1, 1), "valid", (2, 2)))
    assert "pools" in pool and "one pixel at a time" in pool and "no border" in pool
    resize = describe_layer(LayerInfo("resize", "resize", (None, 32, 32, 3)))
    assert "resized" in resize and "Stride" not in resize
