"""Issue 8, items 4-5 and the remaining defects: compare runs, the reproducibility record, slim
best.keras, checked readers of metrics/robustness, and the lock taken by evaluate/export/review."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest

from cnn_studio.cli import main
from cnn_studio.core.errors import RunError
from cnn_studio.core.paths import RunLayout
from cnn_studio.evaluation.evaluate import evaluate_run, load_metrics
from cnn_studio.evaluation.review import review_model
from cnn_studio.export.model_card import build_card
from cnn_studio.export.writer import export_model
from cnn_studio.runs.compare import compare_runs
from cnn_studio.runs.listing import list_runs
from cnn_studio.runs.lock import RunLock as LockFromItsModule
from cnn_studio.runs.reproducibility import read_reproducibility
from cnn_studio.runs.run_folder import RunBusy, open_run
from cnn_studio.training.config import TrainConfig


@pytest.fixture
def two_runs(trained_run, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        shutil.copytree(trained_run, d, ignore=shutil.ignore_patterns("run.lock"))
    cfg = json.loads((b / "config.json").read_text(encoding="utf-8"))
    cfg["learning_rate"] = 0.01
    (b / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return a, b


def test_the_lock_lives_in_its_own_module_and_the_old_import_still_works():
    from cnn_studio.runs import run_folder

    assert run_folder.RunLock is LockFromItsModule
    assert LockFromItsModule.__module__ == "cnn_studio.runs.lock"


# ---------------------------------------------------------------- reproducibility record


def test_training_writes_a_reproducibility_record_with_versions_seed_and_file_hashes(trained_run):
    rec = read_reproducibility(trained_run)
    assert rec is not None
    assert rec["app_version"] and rec["libraries"]["tensorflow"] and rec["libraries"]["numpy"]
    assert rec["seed"] == 0 and rec["split_seed"] == 0
    files = rec["dataset"]["files"]
    assert rec["dataset"]["n_files"] == len(files) == 20
    assert {f["path"].split("/")[0] for f in files} == {"cat", "dog"}
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in files)
    assert len(rec["dataset"]["sha256"]) == 64


def test_the_model_card_carries_the_reproducibility_record(trained_run):
    card = build_card(open_run(trained_run), [], 32)
    rec = read_reproducibility(trained_run)
    assert card.reproducibility["dataset_sha256"] == rec["dataset"]["sha256"]
    assert card.reproducibility["seed"] == 0
    md = card.to_markdown()
    assert "## Reproducibility" in md and rec["dataset"]["sha256"] in md


# ---------------------------------------------------------------- checkpoints


def test_best_keras_has_no_optimizer_state_and_last_keras_keeps_it(trained_run):
    import keras

    layout = RunLayout(trained_run)
    assert layout.best_model.stat().st_size < layout.last_model.stat().st_size
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Skipping variable loading for optimizer"
        best = keras.saving.load_model(layout.best_model)
    assert getattr(best, "optimizer", None) is None
    last = keras.saving.load_model(layout.last_model)
    assert last.optimizer is not None and last.optimizer.iterations.numpy() > 0
    run = list_runs(trained_run)[0]
    assert run.best_model_bytes == layout.best_model.stat().st_size
    assert run.last_model_bytes == layout.last_model.stat().st_size


# ---------------------------------------------------------------- compare


def test_compare_runs_marks_the_differing_settings_and_puts_metrics_side_by_side(two_runs):
    a, b = two_runs
    c = compare_runs(a, b)
    assert [r.name for r in c.runs] == ["a", "b"]
    settings = dict(c.settings)
    assert settings["learning_rate"] == (TrainConfig(learning_rate=3e-3).learning_rate, 0.01)
    assert "learning_rate" in c.differing and "backbone" not in c.differing
    assert "dataset fingerprint" in settings and "dataset fingerprint" not in c.differing
    metrics = dict(c.metrics)
    assert metrics["best val accuracy"][0] == metrics["best val accuracy"][1] is not None
    assert metrics["best.keras"][0].endswith(("KB", "MB"))
    assert [len(h) for h in c.histories] == [2, 2]


def test_compare_needs_two_runs_and_survives_a_damaged_file(two_runs, tmp_path):
    a, b = two_runs
    with pytest.raises(RunError, match="at least two"):
        compare_runs(a)
    with pytest.raises(RunError, match="not a run folder"):
        compare_runs(a, tmp_path)
    (b / "metrics.json").write_text("{not json", encoding="utf-8")
    c = compare_runs(a, b)
    assert any("metrics.json is damaged" in n for n in c.notes)


def test_cli_runs_compare_prints_both_runs_and_json(two_runs, capsys):
    a, b = two_runs
    assert main(["runs", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "* learning_rate" in out and "  backbone" in out and "VAL ACCURACY" in out
    assert main(["runs", "--compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in data["runs"]] == ["a", "b"]
    assert {s["name"] for s in data["settings"] if s["differs"]} >= {"learning_rate"}
    assert main(["runs", "--compare", str(a)]) == 2


def test_cli_runs_lists_checkpoint_sizes(two_runs, capsys):
    a, _b = two_runs
    assert main(["runs", str(a.parent)]) == 0
    out = capsys.readouterr().out
    assert "BEST.KERAS" in out and "LAST.KERAS" in out


# ---------------------------------------------------------------- checked readers


@pytest.mark.parametrize("content", ["{truncated", "[1, 2]", '{"per_class": 5}'])
def test_a_damaged_metrics_json_is_a_clear_error_naming_it(two_runs, content):
    a, _ = two_runs
    (a / "metrics.json").write_text(content, encoding="utf-8")
    with pytest.raises(RunError) as info:
        load_metrics(a)
    assert "metrics.json" in info.value.message and "evaluate" in info.value.hint


def test_the_model_card_leaves_out_a_damaged_robustness_json_with_a_note(two_runs):
    a, _ = two_runs
    (a / "robustness.json").write_bytes(b"\xff\xfe garbage")
    card = build_card(open_run(a), [], 32)
    assert card.robustness == {}
    assert any("robustness.json" in n for n in card.notes)
    assert "robustness.json" in card.to_markdown()


# ---------------------------------------------------------------- writers take the lock


def _holder(run_dir):
    code = textwrap.dedent(f"""
        import time
        from cnn_studio.runs.lock import RunLock
        RunLock({str(run_dir)!r}, "train").acquire()
        print("ready", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def test_evaluate_export_and_review_are_refused_while_another_process_writes_the_run(two_runs, tmp_path):
    a, _ = two_runs
    child = _holder(a)
    try:
        with pytest.raises(RunBusy, match="train"):
            evaluate_run(a)
        with pytest.raises(RunBusy, match="train"):
            export_model(a, "keras", tmp_path / "out")
        with pytest.raises(RunBusy, match="train"):
            review_model(a, shortcut_check=False)
        assert main(["evaluate", str(a)]) == 2
    finally:
        child.kill()
        child.wait()
    assert not (a / "metrics.json").exists() or load_metrics(a) is not None
    evaluate_run(a)  # free again: it works
    assert load_metrics(a).n_images > 0
