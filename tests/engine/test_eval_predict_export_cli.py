"""``cnn-studio evaluate / predict / export`` end to end, in-process through ``cnn_studio.cli.main``."""

from __future__ import annotations

import json

import pytest

from cnn_studio.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from studio_testkit import make_class_image

    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    base = tmp_path_factory.mktemp("cli")
    for label, name in enumerate(("cat", "dog")):
        (base / "data" / name).mkdir(parents=True)
        for i in range(8):
            make_class_image(label, 32, seed=i).save(base / "data" / name / f"{name}_{i}.png")
    split = make_split(scan(base / "data"), val_fraction=0.25, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=1, seed=0)
    return train(cfg, split, base / "run").run_dir


def test_evaluate_text_and_json(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "Evaluated on 4 images (val" in out and "confusion matrix" in out
    assert main(["evaluate", str(run_dir), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["subset"] == "val" and d["n_images"] == 4 and len(d["confusion"]) == 2
    assert (run_dir / "metrics.json").exists()


def test_evaluate_bad_input_exits_2_with_hint(run_dir, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a CNN Studio run folder" in err and "hint:" in err
    assert main(["evaluate", str(run_dir), "--subset", "test"]) == 2
    assert "test set is empty" in capsys.readouterr().err


def test_predict_prints_rows_writes_csv_and_flags_unreadable(run_dir, tmp_path, capsys):
    data = run_dir.parent / "data"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    csv_path = tmp_path / "preds.csv"
    code = main(["predict", str(run_dir), str(data / "cat"), str(broken), "--top-k", "1", "--csv", str(csv_path)])
    captured = capsys.readouterr()
    assert code == 1 and "1 of 9 file(s) could not be read" in captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 9 and lines[-1].startswith(f"{broken}\tERROR")
    assert csv_path.read_text().splitlines()[0] == "path,top1,p1,error"

    assert main(["predict", str(run_dir / "best.keras"), str(data / "dog" / "dog_0.png"), "--json"]) == 0
    (pred,) = json.loads(capsys.readouterr().out)
    assert pred["error"] is None and [t[0] for t in pred["top"]] in (["cat", "dog"], ["dog", "cat"])

    assert main(["predict", str(run_dir), str(tmp_path / "nope.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_prints_verification_per_format(run_dir, tmp_path, capsys):
    out = tmp_path / "exports"
    code = main(["export", str(run_dir), "--format", "keras", "--format", "tflite", "--quantization", "float16",
                 "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "keras      float32  verified" in text and "tflite     float16  verified" in text
    assert (out / "model.keras").exists() and (out / "model_float16.tflite").exists()
    assert (out / "labels.txt").exists() and (out / "MODEL_CARD.md").exists()

    assert main(["export", str(run_dir), "--format", "onnx", "--quantization", "int8", "--out", str(out)]) == 2
    assert "tflite format only" in capsys.readouterr().err
