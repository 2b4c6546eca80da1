"""Metrics on hand-made predictions (checked by hand and against scikit-learn), and a real run evaluated."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.errors import DatasetError
from cnn_studio.core.fsutil import read_json
from cnn_studio.evaluation.evaluate import Metrics, MetricsOptions, compute_metrics, roc_auc_ovr

NAMES = ["a", "b", "c"]
# 6 images: true labels and probabilities made by hand
Y = [0, 0, 1, 1, 2, 2]
P = np.array([
    [0.7, 0.2, 0.1],  # a → a
    [0.2, 0.5, 0.3],  # a → b (wrong, p_true .2)
    [0.1, 0.8, 0.1],  # b → b
    [0.6, 0.3, 0.1],  # b → a (wrong, p_true .3)
    [0.1, 0.1, 0.8],  # c → c
    [0.05, 0.9, 0.05],  # c → b (wrong, p_true .05: the worst)
])


def test_hand_computed_metrics():
    m = compute_metrics(Y, P, NAMES, [f"img{i}.png" for i in range(6)], options=MetricsOptions(subset="test"))
    assert m.n_images == 6 and m.accuracy == pytest.approx(3 / 6)
    assert m.confusion == [[1, 1, 0], [1, 1, 0], [0, 1, 1]]
    a, b, c = m.per_class
    # a: tp 1, predicted 2, support 2 → p .5 r .5; b: tp 1, predicted 3 → p 1/3, r .5; c: p 1, r .5
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((1 / 3, 0.5, 0.4))
    assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert [row["support"] for row in m.per_class] == [sum(r) for r in m.confusion]
    # top-2: img1 (b,c: a missing), img3 (a,b ok), img5 (b,a: c missing) → 4/6
    assert m.top_k_accuracy == {"2": pytest.approx(4 / 6)}
    assert m.loss == pytest.approx(-np.mean(np.log([0.7, 0.2, 0.8, 0.3, 0.8, 0.05])))
    # class a's AUC: positives score .7,.2 vs negatives .1,.6,.1,.05 → pairs won 4 + 3 of 8 = 7/8
    assert m.roc_auc["a"] == pytest.approx(7 / 8)


def test_top_losses_are_wrong_and_sorted():
    m = compute_metrics(Y, P, NAMES, [f"img{i}.png" for i in range(6)], options=MetricsOptions(top_losses=2))
    assert [t["path"] for t in m.top_losses] == ["img5.png", "img1.png"]
    assert all(t["true"] != t["predicted"] for t in m.top_losses)
    losses = [t["loss"] for t in m.top_losses]
    assert losses == sorted(losses, reverse=True)
    assert m.top_losses[0]["confidence"] == pytest.approx(0.9)
    assert m.images_in_cell(2, 1) == ["img5.png"]


def test_matches_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    logits = rng.normal(size=(200, 4)) + 1.5 * np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p[10:20] = p[:10]  # some tied scores
    m = compute_metrics(y, p, list("wxyz"))
    pred = p.argmax(1)
    assert m.accuracy == pytest.approx(sk.accuracy_score(y, pred))
    assert m.confusion == sk.confusion_matrix(y, pred).tolist()
    prec, rec, f1, sup = sk.precision_recall_fscore_support(y, pred, zero_division=0)
    assert [r["precision"] for r in m.per_class] == pytest.approx(prec)
    assert [r["recall"] for r in m.per_class] == pytest.approx(rec)
    assert [r["f1"] for r in m.per_class] == pytest.approx(f1)
    assert roc_auc_ovr(y, p) == pytest.approx([sk.roc_auc_score(y == k, p[:, k]) for k in range(4)])
    assert m.roc_auc["macro"] == pytest.approx(sk.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    for k in (2, 3):
        assert m.top_k_accuracy[str(k)] == pytest.approx(sk.top_k_accuracy_score(y, p, k=k))
    assert m.loss == pytest.approx(sk.log_loss(y, p))


def test_auc_undefined_when_a_class_is_absent_and_json_round_trip():
    m = compute_metrics([0, 0], np.array([[0.9, 0.1], [0.4, 0.6]]), ["x", "y"])
    assert m.roc_auc == {"x": None, "y": None, "macro": None}
    again = Metrics.from_dict(m.to_dict())
    assert again == m
    assert "confusion matrix" in m.to_text()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from studio_testkit import make_class_image

    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    base = tmp_path_factory.mktemp("evaluation")
    for label, name in enumerate(("cat", "dog")):
        (base / "data" / name).mkdir(parents=True)
        for i in range(8):
            make_class_image(label, 32, seed=i).save(base / "data" / name / f"{name}_{i}.png")
    split = make_split(scan(base / "data"), val_fraction=0.25, test_fraction=0.25, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=2,
                      learning_rate=3e-3, seed=0)
    return train(cfg, split, base / "run").run_dir


@pytest.mark.slow
def test_evaluate_run_writes_metrics_json(run_dir):
    from cnn_studio.evaluation.evaluate import RunEvaluationOptions, evaluate_run, load_metrics
    from cnn_studio.runs.run_folder import open_run

    events = []
    m = evaluate_run(run_dir, sink=events.append)
    test_paths = sorted(r.path for r in open_run(run_dir).split.test)
    assert m.subset == "test" and m.n_images == 4
    assert sorted(p["path"] for p in m.predictions) == test_paths
    assert sum(map(sum, m.confusion)) == 4 and [r["support"] for r in m.per_class] == [2, 2]
    progress = [e for e in events if isinstance(e, ev.TaskProgress)]
    assert progress[-1].done == progress[-1].total == 4
    saved = read_json(run_dir / "metrics.json")
    assert saved["accuracy"] == m.accuracy and load_metrics(run_dir) == m

    val = evaluate_run(run_dir, RunEvaluationOptions(subset="val"))
    assert val.subset == "val" and val.n_images == 4


@pytest.mark.slow
def test_evaluate_on_another_folder_and_unknown_classes(run_dir, tmp_path, image_folder):
    from cnn_studio.evaluation.evaluate import RunEvaluationOptions, evaluate_run

    folder = image_folder(classes=("cat", "dog"), per_class=3)
    m = evaluate_run(run_dir, RunEvaluationOptions(data_dir=folder))
    assert m.subset == "folder" and m.n_images == 6 and [r["support"] for r in m.per_class] == [3, 3]
    assert m.source == str(folder)

    bad = image_folder(classes=("cat", "dog", "horse"), per_class=2, root=tmp_path / "bad")
    with pytest.raises(DatasetError, match="horse"):
        evaluate_run(run_dir, RunEvaluationOptions(data_dir=bad))


@pytest.mark.slow
def test_evaluate_skips_unreadable_files(run_dir, tmp_path):
    from cnn_studio.data.records import ImageRecord
    from cnn_studio.evaluation.evaluate import EvaluateOptions, evaluate
    from cnn_studio.runs.run_folder import load_model, open_run

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    records = [*open_run(run_dir).split.test, ImageRecord(str(broken), 0)]
    m = evaluate(load_model(run_dir), records, ["cat", "dog"], EvaluateOptions(image_size=32, batch_size=3))
    assert m.n_images == 4 and [s["path"] for s in m.skipped] == [str(broken)]
    with pytest.raises(DatasetError, match="could be read"):
        evaluate(load_model(run_dir), [ImageRecord(str(broken), 0)], ["cat", "dog"], EvaluateOptions(image_size=32))
