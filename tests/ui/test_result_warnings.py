"""The Evaluate page tells how sure each figure is and warns like the engine does: intervals or "too few
images to tell", the chance-level and shortcut banners (examples clickable), the reliability diagram,
and a per-class table whose sort arrow matches its order. Metrics are made by the engine's own
functions from chosen predictions, so no model is needed."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from studio_testkit import make_class_image


def _metrics(y, p, names, paths, shortcuts=None, temperature=1.0):
    from cnn_studio.evaluation.evaluate import Metrics, calibration_summary
    from cnn_studio.evaluation.intervals import compare_with_guessing, metric_intervals

    y, p = np.asarray(y), np.asarray(p, float)
    pred = p.argmax(axis=1)
    per_class = []
    for i, name in enumerate(names):
        tp, t, q = int(((y == i) & (pred == i)).sum()), int((y == i).sum()), int((pred == i).sum())
        per_class.append({"name": name, "precision": tp / q if q else 0.0, "recall": tp / t if t else 0.0,
                          "f1": 2 * tp / (t + q) if t + q else 0.0, "support": t})
    confusion = [[int(((y == i) & (pred == j)).sum()) for j in range(len(names))] for i in range(len(names))]
    return Metrics(subset="val", class_names=list(names), n_images=len(y), accuracy=float((pred == y).mean()),
                   loss=0.0, per_class=per_class, confusion=confusion, roc_auc={}, top_k_accuracy={}, top_losses=[],
                   predictions=[{"path": str(paths[i]), "true": int(y[i]), "pred": int(pred[i]),
                                 "confidence": float(p[i].max())} for i in range(len(y))],
                   intervals=metric_intervals(y, p, list(names)), chance=compare_with_guessing(y, pred, list(names)),
                   calibration=calibration_summary(y, p, temperature, {"n_images": len(y), "ece_before": 0.3,
                                                                       "ece_after": 0.05, "applied": True}),
                   shortcuts=shortcuts or {})


@pytest.fixture
def page(qtbot):
    from cnn_studio.ui.pages.evaluate_page import EvaluatePage
    from cnn_studio.ui.session import StudioSession

    p = EvaluatePage(StudioSession())
    qtbot.addWidget(p)
    return p


def test_chance_level_too_few_images_and_a_shortcut_with_clickable_examples(qtbot, page, tmp_path):
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"img_{i}.png")
        make_class_image(i % 2, 32, seed=i).save(paths[-1])
    y = [0, 1, 0, 1, 0, 1]
    p = [[0.9, 0.1]] * 6  # always "cat": exactly the largest class, on 6 images
    shortcuts = {"suspected": True, "kind": "border", "region": "top-left corner",
                 "message": "Most of the model's attention (81%) is on the top-left corner.",
                 "hint": "Crop or mask the corner.", "examples": [str(paths[0]), str(paths[1])]}
    page._on_metrics_returned(_metrics(y, p, ["cat", "dog"], paths, shortcuts))

    summary = page.summary.text()
    assert "right 50% of the time" in summary and "too few images to tell" in summary
    assert not page.chance_banner.isHidden()
    banner = page.chance_banner.label.text()
    assert "Not better than guessing" in banner and "Try: more images per class" in banner
    assert page.chance_banner.severity == "warning"

    assert not page.shortcut_banner.isHidden()
    assert "top-left corner" in page.shortcut_banner.label.text() and "Crop or mask" in page.shortcut_banner.label.text()
    grid = page.shortcut_banner.examples
    assert grid.paths() == [str(paths[0]), str(paths[1])]
    page.show()
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=grid.visualItemRect(grid.item(1)).center())
    assert page.example_dialog is not None and page.example_dialog.isVisible()
    assert not page.example_picture.pixmap().isNull() and str(paths[1]) in page.example_caption.text()

    # per class: every figure with its interval or "too few images to tell"
    model = page.per_class.model()
    texts = [model.index(r, c).data() for r in range(2) for c in (1, 2, 3)]
    assert all(t.startswith("too few images to tell (") for t in texts), texts


def test_enough_images_give_intervals_and_no_banner(qtbot, page, tmp_path):
    y = np.array([0, 1, 2] * 40)
    p = np.full((120, 3), 0.05)
    p[np.arange(120), y] = 0.9
    p[:12] = [0.6, 0.3, 0.1]  # some mistakes
    paths = [tmp_path / f"{i}.png" for i in range(120)]
    page._on_metrics_returned(_metrics(y, p, ["a", "b", "c"], paths))
    assert page.chance_banner.isHidden() and page.shortcut_banner.isHidden()
    summary = page.summary.text()
    assert "accuracy 0.933 (95% CI 0.874–0.966, 120 images)" in summary, summary
    assert "Right class among its top two guesses: 0.967 (95% CI" in summary
    model = page.per_class.model()
    recall_b = model.index(1, 2).data()
    assert recall_b.startswith("1.00 (95% CI 0.91–1.00, 40 images)") or recall_b.startswith("0.90 (95% CI"), recall_b
    assert "(95% CI" in model.index(0, 1).data() and "images)" in model.index(0, 1).data()


def test_per_class_table_opens_in_class_order_and_its_arrow_matches_the_order(qtbot, page, tmp_path):
    names = ["ant", "bee", "cow", "dog"]
    y = np.repeat(np.arange(4), 10)
    p = np.full((40, 4), 0.1)
    p[np.arange(40), y] = 0.7
    p[:7] = [0.1, 0.7, 0.1, 0.1]  # ant: 3/10 right, bee takes 7 more
    page._on_metrics_returned(_metrics(y, p, names, [tmp_path / f"{i}.png" for i in range(40)]))
    view, header = page.per_class, page.per_class.horizontalHeader()
    model = view.model()
    assert [model.index(r, 0).data() for r in range(4)] == names  # the classes as the data has them
    assert header.sortIndicatorSection() == -1  # and no arrow claims otherwise
    page.show()
    for _click in range(2):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=_section_point(header, 2))
        values = [model.index(r, 2).data(Qt.ItemDataRole.UserRole) for r in range(4)]
        ascending = header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
        assert header.sortIndicatorSection() == 2
        assert values == sorted(values, reverse=not ascending), (header.sortIndicatorOrder(), values)


def _section_point(header, section):
    from PySide6.QtCore import QPoint

    return QPoint(header.sectionViewportPosition(section) + header.sectionSize(section) // 2, header.height() // 2)


def test_reliability_diagram_before_and_after_with_ece_and_temperature(qtbot, page, tmp_path):
    from cnn_studio.evaluation.calibration import with_temperature

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    logits = np.stack([np.where(y == 0, 1.0, -1.0), np.where(y == 0, -1.0, 1.0)], 1) + rng.normal(0, 1.5, (200, 2))
    raw = np.exp(logits * 4) / np.exp(logits * 4).sum(1, keepdims=True)  # over-confident
    calibrated = with_temperature(raw, 4.0)
    page._on_metrics_returned(_metrics(y, calibrated, ["no", "yes"], [tmp_path / f"{i}" for i in range(200)],
                                       temperature=4.0))
    assert page.tabs.tabText(3) == "Confidence (calibration)"
    view = page.reliability
    curves = view.curves()
    assert len(curves["before"][0]) >= 3 and len(curves["after"][0]) >= 3
    cal = page.metrics.calibration
    assert cal["ece_uncalibrated"] > cal["ece"]
    text = view.text.text()
    assert f"{cal['ece_uncalibrated']:.3f} before → {cal['ece']:.3f} after" in text and "T = 4" in text
    assert "Fitted on 200 validation images: ECE 0.300 → 0.050" in text
