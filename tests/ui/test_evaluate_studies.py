"""Evaluate step for volumes: study-level figures next to the slice-level ones, the study confusion matrix,
the table of studies, and the slices that drove a study (metrics computed from real scanned NIfTI studies)."""

from __future__ import annotations

import numpy as np
import pytest
from cnn_studio.ui.pages.evaluate_page import EvaluatePage
from cnn_studio.ui.session import StudioSession
from PySide6.QtCore import Qt

from cnn_studio.core.fsutil import write_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.evaluation.evaluate import MetricsOptions, compute_metrics
from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset


def _run_with_metrics(folder, metrics):
    """A folder holding only metrics.json: what the Evaluate step reads back for an evaluated run."""
    folder.mkdir(parents=True)
    write_json(RunLayout(folder).metrics, metrics.to_dict())
    return folder


@pytest.fixture
def volume_metrics(tmp_path):
    """Metrics over the slices of 12 generated NIfTI studies; every slice of one healthy study leans wrong."""
    ds = make_volume_dataset(tmp_path / "mri", studies_per_class=6, patients=4, seed=0,
                             form=StudyFormat(slices=12, size=16))
    records = scan(ds.root).records
    names = ("healthy", "lesion")
    healthy = sorted({r.study for r in records if r.label == 0})
    wrong = healthy[2]
    rng = np.random.default_rng(0)
    y = np.array([r.label for r in records])
    p_true = np.where([r.study == wrong for r in records], rng.uniform(0.2, 0.45, len(y)),
                      rng.uniform(0.55, 0.95, len(y)))
    probs = np.stack([np.where(y == 0, p_true, 1 - p_true), np.where(y == 1, p_true, 1 - p_true)], axis=1)
    metrics = compute_metrics(y, probs, names, [r.key for r in records], options=MetricsOptions(subset="test"),
                              studies=[r.study for r in records])
    return metrics, records, probs, wrong


def test_study_results_beside_the_slice_results(qtbot, tmp_path, volume_metrics):
    metrics, records, probs, wrong = volume_metrics
    assert len({r.study for r in records}) == 12 and metrics.study["count"] == 12
    session = StudioSession()
    session.set_run(_run_with_metrics(tmp_path / "run", metrics))
    page = EvaluatePage(session)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page.metrics is not None and not page._busy(), timeout=20000)

    headline = "Per study (mean of slice probabilities): 11 of 12 studies right (92 %, 95 % CI 65–99 %)"
    assert headline in page.summary.text() and "right" in page.summary.text().split("<br>")[0]
    view = page.study_view
    assert headline in view.headline.text()
    assert "balanced accuracy too few studies to tell (12 studies)" in view.headline.text()  # 6 a class
    tab = page.tabs.indexOf(view)
    assert page.tabs.tabText(tab) == "Per study" and page.tabs.tabText(tab - 1) == "Confusion matrix"
    page.tabs.setCurrentIndex(tab)
    assert view.table.rowCount() == 12
    assert "1 study of 'healthy' was" in view.matrix.item(0, 1).toolTip()
    assert [[view.matrix.item(i, j).text().split("\n")[0] for j in range(2)] for i in range(2)] == [["5", "1"],
                                                                                                  ["0", "6"]]

    cell = view.matrix.visualItemRect(view.matrix.item(0, 1)).center()
    qtbot.mouseClick(view.matrix.viewport(), Qt.MouseButton.LeftButton, pos=cell)  # the study it got wrong
    assert view.table.rowCount() == 1 and "1 study of 'healthy' classified as 'lesion'" in view.table_label.text()
    assert view.table.item(0, 0).toolTip() == wrong
    rows = [i for i, r in enumerate(records) if r.study == wrong]
    mean = probs[rows].mean(0)  # the study's answer is the mean of its slices' probabilities
    assert [view.table.item(0, c).text() for c in range(1, 5)] == ["healthy", "lesion", f"{mean[1]:.2f}",
                                                                   str(len(rows))]

    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.table.visualItemRect(view.table.item(0, 0)).center())
    driving = sorted(rows, key=lambda i: -probs[i, 1])[:3]  # its slices most sure of "lesion", first
    assert [view.slices.item(i).toolTip() for i in range(view.slices.count())] == [records[i].key for i in driving]
    assert view.slices.count() == 3 < len(rows)
    assert all(not view.slices.item(i).icon().isNull() for i in range(3))  # the slices' pictures, decoded
    assert view.slices.item(0).text().startswith("slice ") and "said lesion" in view.slices.item(0).text()
    assert "lesion" in view.slices_label.text() and f"{len(rows)} slices" in view.slices_label.text()
    qtbot.mouseClick(view.all_button, Qt.MouseButton.LeftButton)
    assert view.table.rowCount() == 12

    # a run of pictures (no studies): no study tab, no study line
    plain = compute_metrics([0, 1, 0, 1], np.array([[.8, .2], [.3, .7], [.6, .4], [.1, .9]]), ("a", "b"))
    session.set_run(_run_with_metrics(tmp_path / "plain", plain))
    qtbot.waitUntil(lambda: page.metrics is not None and not page._busy(), timeout=20000)
    assert page.tabs.indexOf(view) < 0 and "Per study" not in page.summary.text()


def _few_studies(n_per_class: int, wrong: int):
    """Metrics over 3 slices of each of 2 × ``n_per_class`` studies; ``wrong`` studies of class 0 answered 'b'."""
    keys, studies, y, rows = [], [], [], []
    for s in range(2 * n_per_class):
        label, misread = s % 2, s % 2 == 0 and s // 2 < wrong
        for i in range(3):
            keys.append(f"/data/s{s}.nii#slice=2:{i}")
            studies.append(f"/data/s{s}.nii")
            y.append(label)
            rows.append([0.2, 0.8] if (label == 1) != misread else [0.8, 0.2])
    return compute_metrics(y, np.array(rows), ("a", "b"), keys, studies=studies, options=MetricsOptions(subset="test"))


def test_per_study_figures_say_too_few_studies_and_when_they_cannot_beat_guessing(qtbot):
    from cnn_studio.ui.widgets.study_results import StudyResults

    view = StudyResults()
    qtbot.addWidget(view)
    view.set_metrics(_few_studies(4, wrong=0))  # 8 studies, all right: "100 %" is no certainty
    text = view.headline.text()
    assert "8 of 8 studies right (100 %: too few studies to tell, a figure needs 10)" in text
    assert "balanced accuracy too few studies to tell (8 studies)" in text and "Warning" not in text
    view.set_metrics(_few_studies(5, wrong=2))  # 10 studies, 8 right: cannot be told from guessing
    text = view.headline.text()
    assert "8 of 10 studies right (80 %, 95 % CI 49–94 %)" in text
    assert "<b>Warning:</b> 10 studies cannot show that the model beats guessing" in text
