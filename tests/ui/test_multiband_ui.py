"""Multi-band tiles in the GUI: the Data step says "24 tiles, 13 bands, uint16", shows a band picker with the
files' band names whose choice reaches the TrainConfig, the generated sample opens from File → Open sample,
and a 13-band folder goes Data → Model → Train → Evaluate → Classify → Export (verified) like a user does it.
"""

from __future__ import annotations

import pytest
from cnn_studio.ui.main_window import STEPS, MainWindow
from cnn_studio.ui.pages.data_page import DataPage
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.settings import StudioSettings
from cnn_studio.ui.widgets.image_grid import thumbnail
from PySide6.QtCore import QSettings, Qt
from studio_testkit import click_backbone, drop_files, export_keras_verified, open_dataset


def _tiles(tmp_path, per_class=8, size=16):
    from cnn_studio.synthetic.multiband import make_multiband_dataset

    return make_multiband_dataset(tmp_path / "tiles", per_class=per_class, size=size, seed=3)


def test_data_step_names_tiles_and_bands_and_the_picker_sets_the_config(qtbot, tmp_path, image_folder):
    session = StudioSession()
    page = DataPage(session)
    qtbot.addWidget(page)
    page.show()
    assert open_dataset(qtbot, page, _tiles(tmp_path)) is True
    summary = page.summary.text()
    assert "24 tiles, 13 bands, uint16" in summary and "3 classes" in summary
    report = session.report
    assert report.headline() == "24 tiles, 13 bands, uint16" and len(report.band_ranges) == 13
    assert all(r["max"] > r["min"] for r in report.band_ranges)
    assert "B08" in report.to_text() and "Bands (uint16)" in report.to_text()

    picker = page.band_picker
    assert picker.isVisible() and picker.band_count == 13
    assert picker.boxes[3].text().startswith("4 · B04   ") and "values" in picker.boxes[3].toolTip()
    lo, hi = report.band_ranges[3]["min"], report.band_ranges[3]["max"]
    assert picker.boxes[3].text().endswith(f"{int(lo):,}–{int(hi):,}")
    assert all(b.isChecked() for b in picker.boxes)
    assert picker.rgb_bands() == (4, 3, 2)  # named red, green, blue: Sentinel-2's B04, B03, B02
    assert session.config.bands == () and session.config.rgb_bands == (4, 3, 2)
    # thumbnails are RGB composites of the chosen bands
    assert not page.class_model.index(0, 5).data(Qt.ItemDataRole.DecorationRole).isNull()

    # untick band 1 (coastal aerosol) as a click does: the model uses 2..13
    qtbot.mouseClick(picker.boxes[0], Qt.MouseButton.LeftButton)
    assert session.config.bands == tuple(range(2, 14))
    # show near-infrared, red, green (false colour)
    picker.set_rgb((8, 4, 3))
    assert session.config.rgb_bands == (8, 4, 3)
    qtbot.waitUntil(lambda: page._thumb_task is None, timeout=20000)
    # no band ticked: the page says so and does not go on
    picker.set_checked(())
    assert not page.next_button.isEnabled() and "at least one band" in picker.problem.text()
    assert "at least one band" in page.next_button.toolTip()
    picker.select_all()
    assert page.next_button.isEnabled() and session.config.bands == ()

    # a folder of pictures afterwards: no picker, no band choice left in the config
    assert open_dataset(qtbot, page, image_folder(classes=("a", "b"), per_class=6)) is True
    assert not picker.isVisible() and session.config.bands == () and session.config.rgb_bands == ()
    assert "12 images" in page.summary.text()


def test_open_sample_menu_makes_the_multispectral_sample_once(qtbot, tmp_path, studio_home):
    from cnn_studio.data.sample import generated_sample_path, is_generated

    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    assert not is_generated("multiband")
    titles = [a.text() for a in w.sample_menu.actions()]
    assert titles == ["&Digits (bundled)", "Multispectral tiles (generated)", "MRI volumes (generated)"]
    with qtbot.waitSignal(w.data_page.check_finished, timeout=60000):
        w.generated_sample_actions["multiband"].trigger()
    qtbot.waitUntil(lambda: not w.data_page.busy and w.data_page._thumb_task is None, timeout=30000)
    assert is_generated("multiband") and w.session.index.root == str(generated_sample_path("multiband"))
    assert str(studio_home) in w.session.index.root
    assert "240 tiles, 13 bands, uint16" in w.data_page.summary.text()
    assert w.data_page.dialog_folder() == str(type(tmp_path).home())  # a sample is not "the last folder"


@pytest.mark.slow
def test_thirteen_band_tiles_from_the_data_step_to_a_verified_export(qtbot, tmp_path):
    settings = StudioSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    root = _tiles(tmp_path, per_class=10, size=16)
    with qtbot.waitSignal(w.data_page.check_finished, timeout=30000):
        w.open_path(root)
    qtbot.waitUntil(lambda: not w.data_page.busy and w.data_page._thumb_task is None, timeout=30000)
    w.data_page.band_picker.set_rgb((8, 4, 3))

    assert w.go_to(STEPS.index("Model"))
    mp = w.model_page
    click_backbone(qtbot, mp, "small_cnn")
    mp.image_size.setValue(16)
    mp.batch_size.setValue(8)
    mp.epochs.setValue(1)
    mp.fine_tune_epochs.setValue(0)
    assert "13 bands in" in mp.details.text()
    cfg = w.session.config
    assert (cfg.backbone, cfg.image_size, cfg.rgb_bands) == ("small_cnn", 16, (8, 4, 3))

    with qtbot.waitSignal(w.train_page.training_finished, timeout=180000) as done:
        w.start_training()
    assert done.args == ["completed"]
    run = w.session.run_dir
    assert (run / "bands.json").exists()

    ep = w.evaluate_page
    assert w.go_to(STEPS.index("Evaluate"))
    qtbot.waitUntil(lambda: ep.metrics is not None and not ep._busy(), timeout=120000)
    assert int(sum(map(sum, ep.metrics.confusion))) == len(w.session.split.val)
    # the cell view draws tiles with the run's red, green, blue bands (B08, B04, B03), not the file's default
    assert ep.cell_images.rgb == (8, 4, 3) and ep.top_losses.rgb == (8, 4, 3)
    conf = ep.metrics.confusion
    true, pred = max(((t, p) for t in range(len(conf)) for p in range(len(conf))), key=lambda c: conf[c[0]][c[1]])
    qtbot.mouseClick(ep.matrix.viewport(), Qt.MouseButton.LeftButton,
                     pos=ep.matrix.visualItemRect(ep.matrix.item(true, pred)).center())
    key = ep.cell_images.item(0).data(0x100)
    drawn = ep.cell_images._sharp(key).toImage()  # what the grid draws for an item
    assert drawn == thumbnail(key, drawn.width(), (8, 4, 3)).toImage()
    assert drawn != thumbnail(key, drawn.width()).toImage()  # the default composite (B04, B03, B02) differs

    # Classify: a 13-band tile dropped on the window shows its RGB composite and the answer
    assert w.go_to(STEPS.index("Classify"))
    tile = next((root / "maize").glob("*.tif"))
    drop_files(w, [tile])
    cp = w.classify_page
    qtbot.waitUntil(lambda: str(tile) in cp.predictions and not cp.busy(), timeout=120000)
    pred = cp.predictions[str(tile)]
    assert not pred.error and pred.label in ("barley", "maize", "wheat")
    icon = cp.grid.items_for(str(tile))[0].icon().pixmap(64, 64).toImage()
    assert len({icon.pixelColor(x, y).name() for x in range(0, 64, 8) for y in range(0, 64, 8)}) > 4

    export_keras_verified(qtbot, w, tmp_path / "exported", STEPS)
    from cnn_studio.ui.workers import live_tasks

    qtbot.waitUntil(lambda: not live_tasks(), timeout=60000)
    w.session.dirty = False
