"""Quantized exports are judged by their answers (top-1 agreement with the trained model and the
accuracy change on the validation images), refused only when those change materially; a
full-integer TFLite export takes and gives uint8, calibrated on training images."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.core.errors import ExportError
from cnn_studio.core.fsutil import read_json


def _probs(answers, n_classes=2):
    p = np.full((len(answers), n_classes), 0.1)
    p[np.arange(len(answers)), answers] = 0.9
    return p


def test_one_changed_answer_on_a_tiny_set_is_not_material():
    from cnn_studio.export.verify import compare_answers, material_change

    labels = np.array([0, 1, 0, 1])
    judged = compare_answers(_probs([0, 1, 0, 1]), _probs([0, 1, 0, 0]), labels)
    assert judged["agreement"] == 0.75 and judged["changed"] == 1
    assert judged["accuracy_trained"] == 1.0 and judged["accuracy_export"] == 0.75 and judged["wrong_more"] == 1
    assert material_change(judged) == ""


def test_accuracy_drop_beyond_two_points_is_material():
    from cnn_studio.export.verify import compare_answers, describe_answers, material_change

    labels = np.zeros(300, int)
    ref = _probs(np.zeros(300, int))
    three_points = np.zeros(300, int)
    three_points[:9] = 1  # 9 of 300 more wrong: -3 points
    judged = compare_answers(ref, _probs(three_points), labels)
    assert "accuracy falls from 100.0% to 97.0%" in material_change(judged)
    one_point = np.zeros(300, int)
    one_point[:3] = 1
    ok = compare_answers(ref, _probs(one_point), labels)
    assert material_change(ok) == ""
    assert describe_answers(ok) == ("same top answer on 99.0% of 300 validation images; accuracy 100.0% → 99.0% "
                                    "(-1.0 points)")


def test_answers_that_move_without_changing_accuracy_are_material_past_ten_percent():
    from cnn_studio.export.verify import compare_answers, material_change

    labels = np.array([0, 1] * 50)
    ref = _probs([0, 0] * 50)  # 50% right
    swapped = np.array([1, 1] * 50)  # 50% right too, but every answer changed
    judged = compare_answers(ref, _probs(swapped), labels)
    assert judged["accuracy_change"] == 0.0 and judged["changed"] == 100
    assert "differs from the trained model's on 100 of 100" in material_change(judged)
    few = np.array([0, 0] * 50)
    few[:10] = 1  # 10 of 100 changed (5 more right, 5 more wrong): 10% is still allowed
    assert material_change(compare_answers(ref, _probs(few), labels)) == ""
    few[10] = 1  # 11%
    assert "on 11 of 100" in material_change(compare_answers(ref, _probs(few), labels))
    nan = compare_answers(ref, np.full_like(ref, np.nan), labels)
    assert material_change(nan)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from studio_testkit import make_class_image

    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    base = tmp_path_factory.mktemp("quantized")
    for label, name in enumerate(("cat", "dog")):
        (base / "data" / name).mkdir(parents=True)
        for i in range(12):
            make_class_image(label, 32, seed=i).save(base / "data" / name / f"{name}_{i}.png")
    split = make_split(scan(base / "data"), val_fraction=0.25, test_fraction=0.0, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=2, seed=0)
    return train(cfg, split, base / "run").run_dir


@pytest.mark.slow
def test_full_integer_tflite_takes_and_gives_uint8_and_is_judged_on_validation(run_dir, tmp_path):
    from cnn_studio.export.formats import FORMATS, _interpreter
    from cnn_studio.export.writer import export_model
    from cnn_studio.runs.run_folder import open_run

    run = open_run(run_dir)
    rec = export_model(run_dir, "tflite", tmp_path, quantization="int8_full")
    assert rec.path.endswith("model_int8_full.tflite")
    interp = _interpreter(rec.path)
    assert interp.get_input_details()[0]["dtype"] == np.uint8
    assert interp.get_output_details()[0]["dtype"] == np.uint8
    assert rec.judged_on == "validation" and rec.n_judged == len(run.split.val) == rec.n_checked
    assert 0.0 <= rec.agreement <= 1.0 and rec.accuracy_trained is not None and rec.accuracy_export is not None
    assert rec.notes[0].startswith("same top answer on") and "uint8" in rec.notes[1]
    card = read_json(tmp_path / "model_card.json")
    entry = card["exports"][0]
    assert entry["representative_images"] == len(run.split.train)
    md = (tmp_path / "MODEL_CARD.md").read_text()
    assert "same top answer on" in md and "judged by their answers" in md and ".astype(np.uint8)" in md
    # the reloader dequantizes: probabilities come back as floats in [0, 1]
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    got = FORMATS["tflite"].reload(tmp_path / "model_int8_full.tflite")(x)
    assert got.shape == (2, 2) and got.min() >= 0 and got.max() <= 1 and abs(got.sum(axis=1) - 1).max() < 0.05
    print(f"int8_full: agreement {rec.agreement:.3f}, accuracy {rec.accuracy_trained:.3f} -> "
          f"{rec.accuracy_export:.3f}, max |diff| {rec.max_abs_diff:.3g}")


@pytest.mark.slow
def test_int8_that_changes_answers_is_refused_and_leaves_nothing(run_dir, tmp_path, monkeypatch):
    from cnn_studio.export import formats
    from cnn_studio.export.writer import export_model

    spec = formats.FORMATS["tflite"]
    flipped = formats.ExportFormat(**{**spec.__dict__,
                                      "reload": lambda p: (lambda x: spec.reload(p)(x)[:, ::-1].copy())})
    monkeypatch.setitem(formats.FORMATS, "tflite", flipped)
    with pytest.raises(ExportError, match="changes the model's answers too much") as info:
        export_model(run_dir, "tflite", tmp_path, quantization="int8")
    assert "float16" in info.value.hint
    assert not (tmp_path / "model_int8.tflite").exists()


@pytest.mark.slow
def test_cli_prints_agreement_for_a_quantized_export(run_dir, tmp_path, capsys):
    from cnn_studio.cli import main

    assert main(["export", str(run_dir), "--format", "tflite", "--quantization", "int8", "--out",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "same top answer on" in out and "validation images" in out
