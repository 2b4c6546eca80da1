"""Which images to label next (issue 19 item 3): the ranking strategies, the added-labels file that
``prepare`` reads (image files never touched), the engine end to end and ``cnn-studio suggest``."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from studio_testkit import make_class_image

from cnn_studio.core.errors import ConfigError
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.labels.added_labels import AddedLabels, default_path
from cnn_studio.labels.corrections import default_path as corrections_path
from cnn_studio.labels.suggest import entropies, margins, rank


def _fingerprint(folder):
    """Every file below ``folder``: its bytes' hash and its modification time (to prove nothing changed)."""
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _pool(folder, labels, start=100):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, label in enumerate(labels):
        p = folder / f"p{i:02d}.png"
        make_class_image(label, 32, seed=start + i).save(p)
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------- ranking


def test_margin_and_entropy_put_the_least_sure_first():
    probs = np.array([[0.98, 0.01, 0.01], [0.5, 0.45, 0.05], [0.34, 0.33, 0.33], [0.7, 0.2, 0.1]])
    assert np.allclose(margins(probs), [0.97, 0.05, 0.01, 0.5])
    assert list(rank(probs, None, 4, "margin")) == [2, 1, 3, 0]
    assert list(rank(probs, None, 2, "entropy")) == [2, 1]
    assert entropies(probs)[2] == pytest.approx(np.log(3), abs=1e-3)


def test_diversity_does_not_fill_a_batch_with_near_copies():
    rng = np.random.default_rng(0)
    # 10 near-copies of one confusing picture (the least sure of all), and 10 other unsure pictures spread out
    copies = np.ones((10, 8)) + rng.normal(0, 1e-3, (10, 8))
    spread = rng.normal(0, 1, (10, 8))
    feats = np.concatenate([copies, spread])
    probs = np.array([[0.5 + 0.001 * i, 0.5 - 0.001 * i] for i in range(10)]
                     + [[0.6 + 0.01 * i, 0.4 - 0.01 * i] for i in range(10)])
    by_margin = rank(probs, feats, 5, "margin")
    diverse = rank(probs, feats, 5, "margin+diversity", candidates=4)
    assert all(i < 10 for i in by_margin)  # margin alone: five copies of the same picture
    assert sum(i < 10 for i in diverse) == 1 and diverse[0] == 0  # one copy (the least sure), then others
    assert len(set(diverse.tolist())) == 5


def test_random_order_is_a_seeded_permutation_and_unknown_strategies_are_refused():
    probs = np.full((30, 2), 0.5)
    a, b = rank(probs, None, 30, "random", seed=1), rank(probs, None, 30, "random", seed=1)
    assert sorted(a.tolist()) == list(range(30)) and list(a) == list(b)
    assert list(rank(probs, None, 30, "random", seed=2)) != list(a)
    with pytest.raises(ConfigError, match="Strategy"):
        rank(probs, None, 3, "smart")


# ---------------------------------------------------------------------------- the labels file and prepare


def test_labels_given_in_the_queue_are_read_by_prepare_and_no_image_file_changes(image_folder, tmp_path):
    root = image_folder(("cat", "dog"), per_class=4)
    pool = _pool(tmp_path / "pool", [0, 1, 1, 0])
    (tmp_path / "pool" / "gone.png").write_bytes(b"")  # labelled, then emptied: not added
    before = {**_fingerprint(root), **_fingerprint(tmp_path / "pool")}
    added = AddedLabels.for_dataset(root)
    added.label(pool[1], "dog")
    added.label(pool[0], "cat")
    added.label(pool[2], "cat")
    added.label(pool[2], "dog")  # changed mind: the latest counts
    added.label(pool[3], "horse")  # a class the dataset does not have
    added.label(tmp_path / "pool" / "gone.png", "cat")
    written = added.save()
    assert written == default_path(root) and written.parent == corrections_path(root).parent  # beside corrections

    prepared = prepare(root, PrepareOptions(val_fraction=0.25, test_fraction=0.0))
    by_path = {r.path: prepared.index.class_names[r.label] for r in prepared.index.records}
    assert by_path[str(pool[0])] == "cat" and by_path[str(pool[1])] == "dog" and by_path[str(pool[2])] == "dog"
    assert str(pool[3]) not in by_path and len(prepared.index.records) == 8 + 3
    info = prepared.split.info["added_labels"]
    assert (info["added"], info["unmatched"], info["missing"]) == (3, 1, 1)
    split_paths = {r.path for part in ("train", "val", "test") for r in prepared.split.subset(part)}
    assert {str(p) for p in pool[:3]} <= split_paths  # the next training uses them
    assert any("Labelled in CNN Studio: 3 image(s)" in n for n in prepared.report.notes)
    again = prepare(prepared.index, PrepareOptions(val_fraction=0.25, test_fraction=0.0))  # re-split: not added twice
    assert len(again.index.records) == 11
    assert prepare(root, PrepareOptions(added_labels="none")).index.counts() == {"cat": 4, "dog": 4}
    assert {**_fingerprint(root), **_fingerprint(tmp_path / "pool")} == before


def test_added_labels_undo_and_round_trip(tmp_path):
    p = tmp_path / "a, b.png"
    make_class_image(0).save(p)
    added = AddedLabels(path=tmp_path / "labels.csv")
    added.label(p, "cat")
    added.label(p, "dog")
    assert added.undo().label == "dog" and added.get(p).label == "cat"
    added.save()
    back = AddedLabels.load(tmp_path / "labels.csv")
    assert [(a.path, a.label) for a in back.labels] == [(str(p), "cat")]
    assert added.undo().label == "cat" and len(added) == 0 and added.undo() is None


# ---------------------------------------------------------------------------- the engine and the CLI


@pytest.mark.slow
def test_suggest_ranks_the_pool_without_labelled_or_unreadable_images(image_folder, tmp_path):
    from cnn_studio.labels.suggest import suggest

    root = image_folder(("cat", "dog", "fox"), per_class=3)
    pool = _pool(tmp_path / "pool", [i % 3 for i in range(12)])
    (tmp_path / "pool" / "broken.png").write_bytes(b"\x89PNG not really")
    Image.open(root / "cat" / "cat_000.png").save(tmp_path / "pool" / "copy_in_dataset.png")
    added = AddedLabels.for_dataset(root)
    added.label(pool[0], "cat")
    added.save()
    result = suggest(root, tmp_path / "pool", n=4, backbone="pixels")
    paths = [s.path for s in result.items]
    assert len(paths) == 4 and len(set(paths)) == 4 and str(pool[0]) not in paths
    assert result.already_labelled == 1 and result.labelled == 10  # 9 in the folders + 1 labelled in CNN Studio
    assert [u[0] for u in result.unreadable] == [str(tmp_path / "pool" / "broken.png")]
    assert result.strategy == "margin+diversity" and "Strategy margin+diversity (the default)" in result.why
    assert "quick classifier on grey pixels" in result.why
    assert all(s.top[0][1] >= s.top[1][1] for s in result.items)
    assert json.loads(json.dumps(result.to_dict()))["labels_file"] == str(default_path(root))
    baseline = suggest(root, tmp_path / "pool", n=4, backbone="pixels", strategy="random", seed=3)
    assert baseline.strategy == "random" and "honest baseline" in baseline.why


@pytest.mark.slow
def test_suggest_with_a_run_uses_its_predictions(trained_run, tmp_path):
    from cnn_studio.labels.suggest import suggest
    from cnn_studio.predict.predictor import classify

    _pool(tmp_path / "pool", [0, 1, 0, 1, 0, 1])
    result = suggest(trained_run.parent / "data", tmp_path / "pool", run=trained_run, n=3, strategy="margin")
    assert "the run run" in result.why and result.labelled == 0
    expected = {p.path: p.probabilities for p in classify(trained_run, [tmp_path / "pool"])}
    for s in result.items:  # each image paired with its own prediction
        assert dict(s.top)[s.top[0][0]] == pytest.approx(max(expected[s.path]), abs=1e-5)
    least_sure = sorted(expected, key=lambda k: abs(expected[k][0] - expected[k][1]))[:3]
    assert [s.path for s in result.items] == least_sure


@pytest.mark.slow
def test_cli_suggest_json_and_clear_errors(image_folder, tmp_path, capsys):
    from cnn_studio.cli import main

    root = image_folder(("cat", "dog"), per_class=3)
    _pool(tmp_path / "pool", [0, 1, 0, 1, 1])
    assert main(["suggest", str(root), "--pool", str(tmp_path / "pool"), "--backbone", "pixels", "--n", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["suggestions"]) == 3 and out["strategy"] == "margin+diversity" and out["why"]
    (tmp_path / "empty").mkdir()
    assert main(["suggest", str(root), "--pool", str(tmp_path / "empty"), "--backbone", "pixels"]) == 2
    assert "nothing to suggest" in capsys.readouterr().err
