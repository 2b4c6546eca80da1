"""Export: every format reloads in its own runtime and matches the Keras model; atomic replace;
a verification failure leaves nothing behind; labels.txt and the model card sit beside it."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import ExportError
from cnn_studio.core.fsutil import read_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real (tiny) run folder: small_cnn at 32x32, 2 classes x 8 images, 1 epoch, with a test split."""
    from studio_testkit import make_class_image

    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    base = tmp_path_factory.mktemp("export")
    for label, name in enumerate(("cat", "dog")):
        (base / "data" / name).mkdir(parents=True)
        for i in range(8):
            make_class_image(label, 32, seed=i).save(base / "data" / name / f"{name}_{i}.png")
    split = make_split(scan(base / "data"), val_fraction=0.25, test_fraction=0.25, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=1, seed=0)
    return train(cfg, split, base / "run").run_dir


def _real_images(run_dir, n=4):
    from cnn_studio.data.pipeline import load_images
    from cnn_studio.runs.run_folder import open_run

    run = open_run(run_dir)
    return load_images([r.path for r in run.split.val[:n]], 32)


@pytest.mark.parametrize("fmt,quantization", [("keras", "float32"), ("savedmodel", "float32"),
                                              ("tflite", "float32"), ("tflite", "float16"), ("tflite", "int8"),
                                              ("onnx", "float32")])
def test_every_format_reloads_and_matches(run_dir, tmp_path, fmt, quantization):
    from cnn_studio.export.formats import FORMATS
    from cnn_studio.export.writer import export_model
    from cnn_studio.runs.run_folder import load_model

    events = []
    rec = export_model(run_dir, fmt, tmp_path / "out", quantization=quantization, sink=events.append)
    assert rec.verified and rec.n_checked == 4 and rec.max_abs_diff <= rec.tolerance
    stages = [e.stage for e in events if isinstance(e, ev.ExportProgress)]
    assert stages == ["writing", "verifying", "done"]
    out = tmp_path / "out"
    assert (out / "labels.txt").read_text().split() == ["cat", "dog"]
    card = read_json(out / "model_card.json")
    assert card["exports"][0]["fmt"] == fmt and card["classes"] == ["cat", "dog"]
    assert "How to run it" in (out / "MODEL_CARD.md").read_text()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temporary files left"

    # independent check: reload in the format's runtime and compare with Keras on real images
    x = _real_images(run_dir)
    ref = np.asarray(load_model(run_dir).predict_on_batch(x))
    got = FORMATS[fmt].reload(out / FORMATS[fmt].file_name(quantization))(x)
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= FORMATS[fmt].tolerance(quantization)
    print(f"{fmt}/{quantization}: max |diff| {np.max(np.abs(got - ref)):.3g}")


def test_export_into_existing_folder_replaces_atomically(run_dir, tmp_path):
    from cnn_studio.export.writer import export_model

    out = tmp_path / "out"
    (out / "saved_model").mkdir(parents=True)
    (out / "saved_model" / "stale.txt").write_text("old export")
    rec = export_model(run_dir, "savedmodel", out)
    assert (out / "saved_model" / "saved_model.pb").exists()
    assert not (out / "saved_model" / "stale.txt").exists()
    assert rec.path == str(out / "saved_model")
    # a second format keeps the first one in the card
    export_model(run_dir, "keras", out)
    assert sorted(e["fmt"] for e in read_json(out / "model_card.json")["exports"]) == ["keras", "savedmodel"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_failed_verification_raises_and_keeps_the_old_export(run_dir, tmp_path, monkeypatch):
    from cnn_studio.export import formats
    from cnn_studio.export.writer import export_model

    out = tmp_path / "out"
    export_model(run_dir, "keras", out)
    before = (out / "model.keras").read_bytes()
    spec = formats.FORMATS["keras"]
    perturbed = formats.ExportFormat(**{**spec.__dict__, "reload": lambda p: (lambda x: spec.reload(p)(x) + 0.01)})
    monkeypatch.setitem(formats.FORMATS, "keras", perturbed)
    events = []
    with pytest.raises(ExportError, match="does not give the same answers"):
        export_model(run_dir, "keras", out, sink=events.append)
    assert events[-1].stage == "failed"
    assert (out / "model.keras").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "labels.txt", "model.keras", "model_card.json"]


def test_cancel_leaves_nothing(run_dir, tmp_path):
    from cnn_studio.export.writer import export_model

    token = CancelToken()

    def sink(event):
        if isinstance(event, ev.ExportProgress) and event.stage == "writing":
            token.cancel()

    with pytest.raises(Cancelled):
        export_model(run_dir, "keras", tmp_path / "out", sink=sink, cancel=token)
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_format_and_quantization_say_what_is_valid(run_dir, tmp_path):
    from cnn_studio.export.writer import export_model

    with pytest.raises(ExportError, match="keras, savedmodel, tflite, onnx"):
        export_model(run_dir, "pytorch", tmp_path)
    with pytest.raises(ExportError, match="float32 only"):
        export_model(run_dir, "onnx", tmp_path, quantization="int8")


def test_model_card_includes_metrics_when_evaluated(run_dir, tmp_path):
    from cnn_studio.evaluation.evaluate import evaluate_run
    from cnn_studio.export.writer import export_model

    metrics = evaluate_run(run_dir)
    export_model(run_dir, "keras", tmp_path / "out")
    card = read_json(tmp_path / "out" / "model_card.json")
    assert card["metrics"]["accuracy"] == pytest.approx(metrics.accuracy)
    assert card["dataset"]["test"] == {"cat": 2, "dog": 2}
    assert card["input_size"] == 32 and "any size" in card["input_spec"]
    md = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    assert f"accuracy {metrics.accuracy:.4f}" in md and "keras.saving.load_model" in md
