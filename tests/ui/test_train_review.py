"""After training, the Train step shows the review: a model not better than guessing or a suspected
shortcut makes it finish in amber with what to try (never the green "Finished"); calibration is
logged; the Classify step answers "uncertain" below its "not sure" setting and does not count an
unreadable file as classified."""

from __future__ import annotations

from types import SimpleNamespace

from cnn_studio.core import events as ev


def _page(qtbot):
    from cnn_studio.ui.pages.train_page import TrainPage
    from cnn_studio.ui.session import StudioSession

    page = TrainPage(StudioSession())
    qtbot.addWidget(page)
    return page


def _log(page):
    return page.log.toPlainText()


def test_chance_level_and_shortcut_finish_in_amber_with_what_to_try(qtbot, tmp_path):
    from cnn_studio.ui.messages import severity_colour

    page = _page(qtbot)
    chance = ("The model is not better than guessing (50% with 2 classes): accuracy 50% on 12 validation images.")
    hint = "Try: more images per class (tens at least), pretrained weights instead of training from scratch."
    shortcut = "Most of the attention (80%) is in the border strip."
    for e in (ev.Calibrated(temperature=1.8, applied=True, ece_before=0.21, ece_after=0.06, n_images=40),
              ev.ChanceLevel(accuracy=0.5, baseline=0.5, n_images=12, verdict="not_better", message=chance, hint=hint),
              ev.LogMessage("warning", f"{chance} {hint}"),
              ev.ShortcutSuspected(kind="border", region="border strip", message=shortcut, hint="Crop the border."),
              ev.LogMessage("warning", f"{shortcut} Crop the border."),
              ev.TrainFinished(str(tmp_path), "completed", message=f"{chance} {hint} {shortcut} Crop the border.")):
        page._on_train_event(e)
    log = _log(page)
    assert "calibration error (ECE) 0.210 → 0.060" in log and "temperature 1.8" in log
    assert log.count(chance) == 1 and log.count(shortcut) == 1  # each warning once, not three times
    assert not page.notice.isHidden() and "Do not trust this model yet" in page.notice.label.text()
    assert chance in page.notice.label.text() and shortcut in page.notice.label.text()

    result = SimpleNamespace(run_dir=str(tmp_path), epochs_done=2, best_model=str(tmp_path / "best.keras"),
                             warnings=[f"{chance} {hint}", f"{shortcut} Crop the border."])
    page._on_train_returned(result)
    status = page.status.text()
    assert status.startswith("Finished with warnings") and "see the warning below" in status
    assert "Try: more images per class" in page.notice.label.text()
    assert severity_colour("warning").name() in page.status.styleSheet()
    assert severity_colour("ok").name() not in page.status.styleSheet()


def test_a_clean_run_still_finishes_in_green(qtbot, tmp_path):
    from cnn_studio.ui.messages import severity_colour

    page = _page(qtbot)
    page._on_train_event(ev.Calibrated(temperature=1.0, applied=False, ece_before=0.03, ece_after=0.03, n_images=8,
                                       reason="too few validation images to calibrate (8; needs 20)"))
    assert "not recalibrated: too few validation images" in _log(page)
    page._on_train_returned(SimpleNamespace(run_dir=str(tmp_path), epochs_done=1, best_model="b", warnings=[]))
    assert page.status.text().startswith("Finished — the best model is saved")
    assert severity_colour("ok").name() in page.status.styleSheet() and page.notice.isHidden()


def _prediction(path, top, error=None):
    from cnn_studio.predict.predictor import Prediction

    return Prediction(str(path), top=top, probabilities=[p for _, p in top], error=error)


def test_classify_not_sure_setting_gives_uncertain_rows_and_a_text_file_is_not_classified(qtbot, tmp_path):
    from cnn_studio.ui.pages.classify_page import ClassifyPage
    from cnn_studio.ui.session import StudioSession

    page = ClassifyPage(StudioSession())
    qtbot.addWidget(page)
    assert page.threshold() is None and page.not_sure.text() == "off"
    sure, unsure = tmp_path / "sure.png", tmp_path / "unsure.png"
    text = tmp_path / "notes.txt"
    fake = SimpleNamespace(info=SimpleNamespace(class_names=("cat", "dog")))
    preds = [_prediction(sure, [("cat", 0.95), ("dog", 0.05)]), _prediction(unsure, [("dog", 0.55), ("cat", 0.45)]),
             _prediction(text, [], error="not an image file (.txt)")]
    page._on_classified((fake, preds, {}, {}))  # classifier, predictions, previews, studies
    assert page.status.text().startswith("2 images classified;") and "1 file could not be read" in page.status.text()

    page.not_sure.setValue(0.6)
    assert page.threshold() == 0.6
    assert page.predictions[str(unsure)].uncertain and not page.predictions[str(sure)].uncertain
    model = page.table_model
    labels = {model.index(r, 0).data(): model.index(r, 1).data() for r in range(model.rowCount())}
    assert labels == {"sure.png": "cat", "unsure.png": "uncertain", "notes.txt": "—"}
    captions = {page.grid.item(i).data(0x100): page.grid.item(i).text() for i in range(page.grid.count())}
    assert captions[str(unsure)].startswith("uncertain (dog 55%)")
    assert "(1 uncertain: below 60%)" in page.status.text()
    page.not_sure.setValue(0.0)
    assert not page.predictions[str(unsure)].uncertain and "uncertain" not in page.status.text()
