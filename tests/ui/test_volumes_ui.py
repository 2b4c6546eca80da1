"""MRI volumes in the GUI: the Data step says "12 studies, 216 slices, 4 patients", the slice settings rescan
and reach the TrainConfig, the generated sample opens from File → Open sample, and a folder of NIfTI studies
goes Data → Model → Train → Evaluate → Classify (an answer per study) → Export (verified) like a user does it.
"""

from __future__ import annotations

import pytest
from cnn_studio.ui.main_window import STEPS, MainWindow
from cnn_studio.ui.pages.data_page import DataPage
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.settings import StudioSettings
from PySide6.QtCore import QSettings, Qt
from studio_testkit import click_backbone, drop_files, export_keras_verified, open_dataset


def _studies(tmp_path, **kw):
    from cnn_studio.synthetic.volumes import make_volume_dataset

    return make_volume_dataset(tmp_path / "mri", seed=5, **kw).root


def test_data_step_names_studies_slices_patients_and_rescans_slices(qtbot, tmp_path, image_folder):
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    page.show()
    assert open_dataset(qtbot, page, _studies(tmp_path)) is True
    index = session.index
    n_slices, n_studies = len(index.records), len(index.studies)
    assert n_studies == 12
    summary = page.summary.text()
    assert f"12 studies, {n_slices:,} slices, 4 patients" in summary and "2 classes" in summary
    assert "studies) to train on" in summary
    # every slice of a study, and every study of a patient, on one side of the split
    train = {r.group for r in session.split.train}
    assert train and not train & {r.group for r in session.split.val}
    assert "studies" in session.report.to_text() and session.report.study_counts == {"healthy": 6, "lesion": 6}
    # examples: a slice of each study is shown, not a blank
    assert not page.class_model.index(0, 5).data(Qt.ItemDataRole.DecorationRole).isNull()

    slices = page.slice_settings
    assert slices.isVisible() and slices.value() == (2, "content")
    assert not page.band_picker.isVisible()
    # "the middle slices", 4 of them: the page reads the volumes again
    with qtbot.waitSignal(page.check_finished, timeout=30000):
        slices.choose(slices="middle:4")
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=30000)
    assert session.config.slices == "middle:4" and session.config.slice_axis == 2
    assert len(session.index.records) == 12 * 4
    assert "12 studies, 48 slices, 4 patients" in page.summary.text()
    assert slices.middle.isEnabled() and slices.value() == (2, "middle:4")
    with qtbot.waitSignal(page.check_finished, timeout=30000):
        slices.choose(axis=0, slices="all")
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=30000)
    assert (session.config.slice_axis, session.config.slices) == (0, "all")
    assert {r.slice_axis for r in session.index.records} == {0}

    # pictures afterwards: no slice settings shown
    assert open_dataset(qtbot, page, image_folder(classes=("a", "b"), per_class=6)) is True
    assert not slices.isVisible() and "12 images" in page.summary.text()


def test_open_sample_menu_makes_the_mri_sample_once(qtbot, tmp_path, studio_home):
    from cnn_studio.data.sample import generated_sample, generated_sample_path, is_generated

    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.data_page.check_finished, timeout=60000):
        w.generated_sample_actions["volumes"].trigger()
    qtbot.waitUntil(lambda: not w.data_page.busy and w.data_page._thumb_task is None, timeout=30000)
    folder = generated_sample_path("volumes")
    assert is_generated("volumes") and w.session.index.root == str(folder)
    assert "32 studies" in w.data_page.summary.text() and "8 patients" in w.data_page.summary.text()
    stamp = max(p.stat().st_mtime_ns for p in folder.rglob("*.nii.gz"))
    assert generated_sample("volumes") == folder  # made once: a second call writes nothing
    assert max(p.stat().st_mtime_ns for p in folder.rglob("*.nii.gz")) == stamp


@pytest.mark.slow
def test_nifti_studies_from_the_data_step_to_a_verified_export(qtbot, tmp_path):
    from cnn_studio.synthetic.volumes import StudyFormat

    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    root = _studies(tmp_path, studies_per_class=6, patients=4, form=StudyFormat(slices=16, size=16))
    with qtbot.waitSignal(w.data_page.check_finished, timeout=30000):
        w.open_path(root)
    qtbot.waitUntil(lambda: not w.data_page.busy and w.data_page._thumb_task is None, timeout=30000)

    assert w.go_to(STEPS.index("Model"))
    mp = w.model_page
    click_backbone(qtbot, mp, "small_cnn")
    mp.image_size.setValue(16)
    mp.batch_size.setValue(16)
    mp.epochs.setValue(1)
    mp.fine_tune_epochs.setValue(0)
    assert "Slices of 12 studies in" in mp.details.text()

    with qtbot.waitSignal(w.train_page.training_finished, timeout=180000) as done:
        w.start_training()
    assert done.args == ["completed"]

    ep = w.evaluate_page
    assert w.go_to(STEPS.index("Evaluate"))
    qtbot.waitUntil(lambda: ep.metrics is not None and not ep._busy(), timeout=120000)
    assert int(sum(map(sum, ep.metrics.confusion))) == len(w.session.split.val)
    study = getattr(ep.metrics, "study", {})
    if study:  # helper B's study-level metrics
        assert study["count"] == len({r.study for r in w.session.split.val})

    # Classify: a NIfTI study dropped on the window gets one answer, with the slices that drove it
    assert w.go_to(STEPS.index("Classify"))
    volume = next((root / "lesion").glob("*.nii.gz"))
    drop_files(w, [volume])
    cp = w.classify_page
    qtbot.waitUntil(lambda: str(volume) in cp.predictions and not cp.busy(), timeout=120000)
    pred = cp.predictions[str(volume)]
    assert not pred.error and pred.label in ("healthy", "lesion")
    study = cp.studies[str(volume)]
    assert study.slices >= 1 and study.top_slices and study.top_slices[0][0].startswith(str(volume) + "#slice=2:")
    item = cp.grid.items_for(str(volume))[0]
    assert "One answer for the whole study" in item.toolTip() and "slices that drove it most" in item.toolTip()
    assert f"{study.slices} slices" in item.text()
    assert str(volume) in cp.previews  # the slice that drove the answer is the picture shown
    assert cp.status.text() == "1 study (one answer each) classified."
    # a DICOM series folder is one study too
    from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset

    dicom = make_volume_dataset(tmp_path / "dicom", studies_per_class=1, patients=1, seed=5,
                                form=StudyFormat(slices=16, size=16, dicom=True)).root
    series = next(p.parent for p in dicom.rglob("*.dcm"))
    drop_files(w, [series])
    qtbot.waitUntil(lambda: len(cp.studies) == 2 and not cp.busy(), timeout=120000)
    (other,) = [s for s in cp.studies if s != str(volume)]
    assert not cp.predictions[other].error and cp.studies[other].slices >= 1
    assert len(cp.predictions) == 2  # one answer per study, not one per DICOM file

    export_keras_verified(qtbot, w, tmp_path / "exported", STEPS)
    from cnn_studio.ui.workers import live_tasks

    qtbot.waitUntil(lambda: not live_tasks(), timeout=60000)
    w.session.dirty = False
