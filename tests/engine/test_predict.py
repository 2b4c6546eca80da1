"""Prediction: folders expand to images, a corrupt file gives an error row (not a crash), CSV, .keras + labels."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import DatasetError
from cnn_studio.predict.predictor import Prediction, expand_paths, write_csv


def test_expand_paths_walks_folders_keeps_images_sorted(image_folder, tmp_path):
    root = image_folder(per_class=2)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(b"")
    single = root / "dog" / "dog_001.png"
    got = expand_paths([root, single])
    assert [p.relative_to(root).as_posix() for p in got] == [
        "cat/cat_000.png", "cat/cat_001.png", "dog/dog_000.png", "dog/dog_001.png"]
    with pytest.raises(DatasetError, match="does not exist"):
        expand_paths([tmp_path / "missing"])


def test_write_csv_is_atomic_and_complete(tmp_path):
    preds = [Prediction("a.png", [("cat", 0.9), ("dog", 0.1)], [0.9, 0.1]),
             Prediction("b.png", error="the file is damaged")]
    out = write_csv(preds, tmp_path / "sub" / "preds.csv")
    rows = list(csv.reader(out.open()))
    assert rows == [["path", "top1", "p1", "top2", "p2", "error"],
                    ["a.png", "cat", "0.900000", "dog", "0.100000", ""],
                    ["b.png", "", "", "", "", "the file is damaged"]]
    assert [p.name for p in out.parent.iterdir()] == ["preds.csv"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from studio_testkit import make_class_image

    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    base = tmp_path_factory.mktemp("predict")
    for label, name in enumerate(("cat", "dog")):
        (base / "data" / name).mkdir(parents=True)
        for i in range(8):
            make_class_image(label, 32, seed=i).save(base / "data" / name / f"{name}_{i}.png")
    split = make_split(scan(base / "data"), val_fraction=0.25, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=1, seed=0)
    return train(cfg, split, base / "run").run_dir


@pytest.mark.slow
def test_classify_folder_with_a_corrupt_file(run_dir, image_folder, tmp_path):
    from cnn_studio.predict.predictor import ClassifyOptions, classify

    root = image_folder(per_class=3, size=48)  # another size: resized like in training
    (root / "cat" / "cat_zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    events = []
    preds = classify(run_dir, [root], ClassifyOptions(top_k=5, batch_size=4), sink=events.append)
    assert len(preds) == 7
    broken = [p for p in preds if p.error]
    assert [p.path for p in broken] == [str(root / "cat" / "cat_zz_broken.png")]
    assert broken[0].top == [] and broken[0].label is None
    good = [p for p in preds if not p.error]
    for p in good:
        assert len(p.top) == 2 and {name for name, _ in p.top} == {"cat", "dog"}  # top_k capped at 2 classes
        assert p.top[0][1] >= p.top[1][1] and sum(p.probabilities) == pytest.approx(1, abs=1e-5)
    progress = [e for e in events if isinstance(e, ev.TaskProgress)]
    assert progress[0].done == 0 and progress[-1].done == progress[-1].total == 7

    rows = list(csv.DictReader(write_csv(preds, tmp_path / "p.csv").open()))
    assert len(rows) == 7 and sum(1 for r in rows if r["error"]) == 1


@pytest.mark.slow
def test_bare_keras_file_with_labels_beside_gives_same_answers(run_dir, tmp_path):
    from cnn_studio.predict.predictor import Classifier

    shutil.copy(run_dir / "best.keras", tmp_path / "model.keras")
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    img = sorted((run_dir.parent / "data" / "dog").iterdir())[:2]
    from_run = Classifier.load(run_dir).classify(img)
    bare = Classifier.load(tmp_path / "model.keras")
    assert bare.class_names == ("cat", "dog") and bare.image_size == 32
    from_file = bare.classify(img)
    assert np.allclose([p.probabilities for p in from_run], [p.probabilities for p in from_file], atol=1e-6)


@pytest.mark.slow
def test_classify_cancel(run_dir, image_folder):
    from cnn_studio.predict.predictor import Classifier

    clf = Classifier.load(run_dir)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        clf.classify(expand_paths([image_folder(per_class=2)]), cancel=token)
