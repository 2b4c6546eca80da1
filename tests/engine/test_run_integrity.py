"""Issue 8: a run folder has one writer, survives damage and kills, and names every file it skips."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from studio_testkit import make_class_image

from cnn_studio.core.errors import RunError, StudioError
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.run_folder import (
    RunBusy,
    RunLock,
    lock_holder,
    open_run,
    read_state,
    resume_point,
)


@pytest.fixture
def run_copy(trained_run, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(trained_run, dest, ignore=shutil.ignore_patterns("run.lock"))
    return dest


def _split(root):
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split

    return make_split(scan(root), val_fraction=0.3, seed=0)


def _hold_lock(run_dir: Path, then: str = "sleep") -> subprocess.Popen:
    """A child process that takes the run folder's lock, says "ready", then sleeps or kills itself."""
    code = textwrap.dedent(f"""
        import os, signal, sys, time
        from cnn_studio.runs.run_folder import RunLock
        lock = RunLock({str(run_dir)!r}, "train").acquire()
        print("ready", flush=True)
        if {then!r} == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


# ---------------------------------------------------------------- one writer at a time


def test_a_second_writer_is_refused_with_who_holds_the_folder(tmp_path, image_folder, tiny_config):
    from cnn_studio.training.trainer import resume, train

    out = tmp_path / "run"
    out.mkdir()
    child = _hold_lock(out)
    try:
        holder = lock_holder(out)
        assert holder["pid"] == child.pid and holder["purpose"] == "train"
        with pytest.raises(RunBusy) as info:
            train(tiny_config, _split(image_folder()), out)
        assert f"process {child.pid}" in info.value.message and "in use" in info.value.message
        assert not RunLayout(out).config.exists()  # the refused writer wrote nothing
        with pytest.raises(RunBusy):
            RunLock(out, "resume").acquire()
    finally:
        child.kill()
        child.wait()
    with pytest.raises(RunError):  # free again: now the folder is simply not a run
        resume(out)


def test_resume_while_train_runs_is_refused(run_copy):
    from cnn_studio.training.trainer import resume

    child = _hold_lock(run_copy)
    try:
        with pytest.raises(RunBusy, match=f"process {child.pid}"):
            resume(run_copy)
    finally:
        child.kill()
        child.wait()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    child = _hold_lock(tmp_path, then="kill")
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert RunLayout(tmp_path).lock.exists()  # left behind by kill -9 ...
    assert lock_holder(tmp_path) is None  # ... but nobody holds it
    with RunLock(tmp_path, "train") as lock:
        assert lock.took_over["pid"] == child.pid
        assert lock_holder(tmp_path)["pid"] == os.getpid()
    assert not RunLayout(tmp_path).lock.exists()


def test_a_start_that_fails_before_the_first_epoch_does_not_block_a_retry(tmp_path, image_folder, tiny_config,
                                                                         monkeypatch):
    from cnn_studio.training import run_data
    from cnn_studio.training.trainer import train

    split = _split(image_folder())
    out = tmp_path / "run"

    def broken(*args, **kwargs):
        raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(run_data, "make_datasets", broken)  # the name the run's data preparation calls
    with pytest.raises(RunError) as info:
        train(tiny_config, split, out)
    assert "could not start" in info.value.message and "same command again" in info.value.hint
    assert read_state(RunLayout(out))["status"] == "failed"
    with pytest.raises(RunError) as opened:  # evaluate/predict: no model, and the hint says how to retry
        open_run(out)
    assert "train" in opened.value.hint and "resume" not in opened.value.hint
    monkeypatch.undo()
    events = []
    result = train(tiny_config, split, out, sink=events.append)  # the same --out works
    assert result.epochs_done == 1
    assert any("Reusing" in getattr(e, "text", getattr(e, "message", "")) for e in events)


def test_a_folder_with_a_finished_run_still_refuses_a_new_train(run_copy, image_folder, tiny_config):
    from cnn_studio.training.trainer import train

    with pytest.raises(RunError, match="not empty"):
        train(tiny_config, _split(image_folder()), run_copy)
    assert open_run(run_copy).model_path.exists()


# ---------------------------------------------------------------- checkpoints and state.json


def test_state_json_follows_last_keras_when_best_keras_cannot_be_written(tmp_path, image_folder, tiny_config,
                                                                         monkeypatch):
    from cnn_studio.core.fsutil import atomic_path
    from cnn_studio.training import callbacks
    from cnn_studio.training.trainer import train

    real_save = callbacks.save_model

    def disk_full_for_best(model, path, **k):
        if Path(path).name == "best.keras":
            with atomic_path(path):  # the disk fills while best.keras is written
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(model, path, **k)

    monkeypatch.setattr(callbacks, "save_model", disk_full_for_best)  # the name AtomicCheckpoints calls
    cfg = tiny_config.replace(epochs=2, extra={"checkpoint_interval_s": 0.0, "review": False})
    out = tmp_path / "run"
    with pytest.raises(StudioError, match="disk is full"):
        train(cfg, _split(image_folder()), out)
    layout = RunLayout(out)
    assert layout.last_model.exists() and not layout.best_model.exists()
    state = read_state(layout)
    assert state["checkpoint_epoch"] == 1 and state["epochs_done"] == 1  # what last.keras holds
    assert resume_point(out) == (1, 2)


# ---------------------------------------------------------------- temporaries


def test_temporaries_left_by_kill_9_are_removed_on_the_next_open(run_copy):
    layout = RunLayout(run_copy)
    leftovers = [run_copy / ".last.k3j_x9ab.keras", run_copy / ".model.ab12cd34.keras",
                 run_copy / ".state.q1w2e3r4.json"]
    for p in leftovers:
        p.write_bytes(b"partial")
    (layout.exports / ".saved_model.ab12cd34").mkdir(parents=True)
    (run_copy / ".notes").write_text("mine", encoding="utf-8")  # not ours: kept
    child = _hold_lock(run_copy)
    try:
        open_run(run_copy)
        assert all(p.exists() for p in leftovers)  # a live writer's temporaries are never touched
    finally:
        child.kill()
        child.wait()
    open_run(run_copy)
    assert not any(p.exists() for p in leftovers)
    assert not (layout.exports / ".saved_model.ab12cd34").exists()
    assert (run_copy / ".notes").exists()


# ---------------------------------------------------------------- damaged run metadata

DAMAGE = {
    "truncated": lambda b: b[: max(1, len(b) // 2)],
    "garbage": lambda b: bytes(range(256)) * 4,
    "empty": lambda b: b"",
}
FILES = ("config.json", "split.json", "labels.txt", "state.json", "history.csv", "last.keras", "best.keras")


def _damage(run_dir: Path, name: str, how: str) -> None:
    p = run_dir / name
    p.write_bytes(DAMAGE[how](p.read_bytes()))


@pytest.mark.parametrize("how", sorted(DAMAGE))
@pytest.mark.parametrize("name", FILES)
def test_damaged_metadata_gives_a_clear_error_naming_the_file_or_still_works(run_copy, name, how):
    from cnn_studio.predict.predictor import Classifier
    from cnn_studio.training.trainer import resume

    _damage(run_copy, name, how)
    image = run_copy.parent / "x.png"
    make_class_image(0, 32).save(image)
    outcomes = {}
    for command, call in (("predict", lambda: Classifier.load(run_copy).classify([image])),
                          ("resume", lambda: resume(run_copy)),
                          ("status", lambda: (open_run(run_copy).state, resume_point(run_copy)))):
        try:
            call()
            outcomes[command] = "ok"
        except StudioError as exc:  # never a JSONDecodeError, TypeError, UnicodeDecodeError, ValueError
            assert name in exc.message or command == "resume", (command, exc.message)
            assert exc.hint
            outcomes[command] = "error"
    if name in ("state.json", "history.csv", "split.json", "last.keras"):
        assert outcomes["predict"] == "ok"  # predict does not need these files


def test_a_labels_file_that_does_not_match_the_model_is_an_error(run_copy):
    from cnn_studio.predict.predictor import Classifier

    RunLayout(run_copy).split.unlink()  # with split.json, the labels are refused sooner (they disagree with it)
    RunLayout(run_copy).labels.write_text("cat\n", encoding="utf-8")
    with pytest.raises(RunError, match="1 class.*2 outputs"):
        Classifier.load(run_copy)


# ---------------------------------------------------------------- file names, skipped files, symlinks


def test_a_file_name_that_is_not_utf8_works_end_to_end(tmp_path, image_folder, tiny_config):
    from cnn_studio.predict.predictor import Classifier, write_csv
    from cnn_studio.training.trainer import train

    root = image_folder(per_class=6)
    odd = os.fsdecode(b"\xff\xfe-odd.png")
    make_class_image(0, 32, seed=99).save(root / "cat" / odd)
    out = tmp_path / "run"
    split = _split(root)
    assert any(r.path.endswith(odd) for part in (split.train, split.val) for r in part)
    train(tiny_config, split, out)
    raw = RunLayout(out).split.read_bytes()
    raw.decode("utf-8")  # still valid UTF-8 JSON
    stored = open_run(out).split
    assert any(r.path.endswith(odd) and Path(r.path).exists() for r in (*stored.train, *stored.val))
    predictions = Classifier.load(out).classify([root / "cat"])
    assert not any(p.error for p in predictions)
    csv_path = write_csv(predictions, tmp_path / "p.csv")
    assert b"\xff\xfe-odd.png" in csv_path.read_bytes()  # the row names the very file


def _corrupt_png(path: Path) -> None:
    """A PNG whose header and end marker are fine but whose pixel data is damaged in the middle."""
    make_class_image(1, 32, seed=7).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start:start + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))


def test_files_dropped_while_decoding_are_named_by_train_and_kept_in_the_run(tmp_path, image_folder, tiny_config):
    from cnn_studio.core import events as ev
    from cnn_studio.training.trainer import train

    root = image_folder(per_class=6)
    bad = root / "dog" / "dog_bad.png"
    _corrupt_png(bad)
    split = _split(root)
    if not any(r.path == str(bad) for part in (split.train, split.val) for r in part):
        pytest.skip("the scan already refused the damaged file")
    events = []
    result = train(tiny_config.replace(extra={"review": False}), split, tmp_path / "run", sink=events.append)
    assert str(bad) in result.skipped
    text = RunLayout(tmp_path / "run").skipped.read_text(encoding="utf-8")
    assert str(bad) in text
    assert any(isinstance(e, ev.LogMessage) and str(bad) in e.text for e in events)


def test_a_broken_symlink_in_a_folder_gives_a_row_error_not_a_stop(trained_run, tmp_path):
    from cnn_studio.predict.predictor import Classifier

    folder = tmp_path / "images"
    folder.mkdir()
    make_class_image(0, 32).save(folder / "a.png")
    (folder / "gone.png").symlink_to(tmp_path / "missing.png")
    predictions = Classifier.load(trained_run).classify([folder])
    by_name = {Path(p.path).name: p for p in predictions}
    assert by_name["a.png"].error is None and by_name["gone.png"].error


# ---------------------------------------------------------------- decoding is memory-bounded


def test_a_large_picture_is_reduced_while_it_is_read(tmp_path):
    from PIL import Image

    from cnn_studio.data.decode import decode_file

    arr = np.zeros((1600, 1200, 3), np.uint8)
    arr[:800] = 255
    for fmt in ("png", "jpg"):
        path = tmp_path / f"big.{fmt}"
        Image.fromarray(arr).save(path)
        full = decode_file(path)
        small = decode_file(path, reduce_to=100)
        assert full.shape == (1600, 1200, 3)
        assert small.shape[0] < 1600 and min(small.shape[:2]) >= 200  # still ≥ 2× the model input
        assert abs(small[: small.shape[0] // 2].mean() - 255) < 3 and small[-5:].mean() < 3
    rotated = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    Image.fromarray(arr).save(rotated, exif=exif)
    assert decode_file(rotated).shape[:2] == (1200, 1600)
    assert decode_file(rotated, reduce_to=100).shape[1] > decode_file(rotated, reduce_to=100).shape[0]


# ---------------------------------------------------------------- cross-checked run metadata (issue 23)


def _resumable(run_dir: Path, total_epochs: int = 3) -> None:
    """Make the finished 2-epoch run a stopped one that planned ``total_epochs``: ``resume`` would train on."""
    from cnn_studio.core.fsutil import read_json, write_json

    layout = RunLayout(run_dir)
    write_json(layout.config, {**read_json(layout.config), "epochs": total_epochs})
    state = read_json(layout.state)
    # as a stopped run records it: its phase did not finish (state.json "schedule", read by resume)
    schedule = {name: {**facts, "finished": False} if isinstance(facts, dict) else facts
                for name, facts in (state.get("schedule") or {}).items()}
    write_json(layout.state, {**state, "status": "cancelled", "total_epochs": total_epochs, "schedule": schedule})


def _config_damage(run_dir: Path, how: str) -> None:
    layout = RunLayout(run_dir)
    if how == "deleted":
        layout.config.unlink()
    else:
        layout.config.write_text(how, encoding="utf-8")


@pytest.mark.parametrize("how", ["{}", '{"backbone": "small_cnn", "epochs": "six", "fine_tune_epochs": 0}',
                                 "deleted"])
def test_a_config_that_lost_its_settings_is_refused_and_listed_as_damaged(run_copy, how, capsys):
    from cnn_studio.cli import main
    from cnn_studio.evaluation.evaluate import evaluate_run
    from cnn_studio.predict.predictor import Classifier
    from cnn_studio.runs.listing import list_runs
    from cnn_studio.training.trainer import resume

    _resumable(run_copy, 6)
    _config_damage(run_copy, how)
    for call in (lambda: open_run(run_copy), lambda: resume(run_copy), lambda: evaluate_run(run_copy),
                 lambda: Classifier.load(run_copy)):
        with pytest.raises(RunError) as info:  # never TrainConfig's defaults (mobilenet_v2, 5 epochs)
            call()
        assert "config.json" in info.value.message and info.value.hint
    listed = {r.name: r for r in list_runs(run_copy.parent)}
    assert listed["run"].status == "damaged" and "config.json" in listed["run"].problem
    assert listed["run"].backbone != "mobilenet_v2" and listed["run"].total_epochs == 6  # from state.json
    assert main(["resume", str(run_copy)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert main(["runs", str(run_copy.parent)]) == 0
    out = capsys.readouterr()
    assert "damaged" in out.out and "config.json" in out.err
    assert RunLayout(run_copy).best_model.exists()  # nothing deleted


@pytest.mark.parametrize("how", ["{}", '{"status": "completed", "epochs_done": "two"}', "deleted"])
def test_a_state_that_lost_its_progress_is_damaged_not_finished(run_copy, how):
    from cnn_studio.runs.listing import summarize
    from cnn_studio.training.trainer import resume

    _resumable(run_copy, 6)
    layout = RunLayout(run_copy)
    if how == "deleted":
        layout.state.unlink()
    else:
        layout.state.write_text(how, encoding="utf-8")
    summary = summarize(run_copy)
    assert summary.status == "damaged" and "state.json" in summary.problem
    assert (summary.epochs_done, summary.total_epochs) == (2, 6)  # epochs counted from history.csv, said so
    assert "history.csv" in summary.problem
    assert resume_point(run_copy) is None  # the app offers no Continue (and does not fail) ...
    with pytest.raises(RunError, match="state.json"):  # ... and resume says why
        resume(run_copy)
    assert layout.best_model.exists() and not layout.state.exists() or layout.state.read_text() == how


def test_labels_that_disagree_with_the_split_are_refused_by_every_command(run_copy, tmp_path):
    from cnn_studio.evaluation.evaluate import evaluate_run
    from cnn_studio.export.writer import export_model
    from cnn_studio.predict.predictor import Classifier
    from cnn_studio.runs.listing import summarize
    from cnn_studio.training.trainer import resume

    layout = RunLayout(run_copy)
    layout.labels.write_text("dog\ncat\n", encoding="utf-8")  # two names swapped
    _resumable(run_copy)
    calls = {"open": lambda: open_run(run_copy), "predict": lambda: Classifier.load(run_copy),
             "evaluate": lambda: evaluate_run(run_copy), "export": lambda: export_model(run_copy, "keras", tmp_path / "e"),
             "resume": lambda: resume(run_copy)}
    for name, call in calls.items():
        with pytest.raises(RunError) as info:
            call()
        assert "dog, cat" in info.value.message and "cat, dog" in info.value.message, name
        assert "labels.txt" in info.value.message and "split.json" in info.value.message
    assert layout.labels.read_text(encoding="utf-8") == "dog\ncat\n"  # nothing rewritten
    summary = summarize(run_copy)
    assert summary.status == "damaged" and "labels.txt" in summary.problem
    assert not (tmp_path / "e").exists()


def test_a_short_labels_file_is_refused_by_evaluate_and_export(run_copy, tmp_path):
    from cnn_studio.evaluation.evaluate import evaluate_run
    from cnn_studio.export.writer import export_model

    layout = RunLayout(run_copy)
    layout.labels.write_text("cat\n", encoding="utf-8")
    with pytest.raises(RunError, match=r"labels.txt lists the classes cat, but .*split.json.* lists cat, dog"):
        evaluate_run(run_copy)  # it gave a traceback
    layout.split.unlink()  # without split.json, the model's own output count tells
    with pytest.raises(RunError, match="1 class.*2 outputs"):
        export_model(run_copy, "keras", tmp_path / "e")  # it wrote "Classes (1)"
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("damage", ["first row cut", "random bytes", "not numbers"])
def test_a_damaged_history_stops_resume_with_a_clear_message(run_copy, damage):
    from cnn_studio.training.trainer import resume

    _resumable(run_copy)
    path = RunLayout(run_copy).history
    lines = path.read_text(encoding="utf-8").splitlines()
    if damage == "first row cut":
        path.write_text("\n".join([lines[0], *lines[2:]]) + "\n", encoding="utf-8")
    elif damage == "random bytes":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8)))
    else:
        path.write_text("\n".join([lines[0], lines[1].replace(",", ",x", 1), *lines[2:]]) + "\n", encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(RunError) as info:
        resume(run_copy)
    assert "history.csv" in info.value.message and "unaffected" in info.value.hint
    assert path.read_bytes() == before and read_state(RunLayout(run_copy))["status"] == "cancelled"


def test_a_missing_history_is_a_loss_said_in_words_not_a_refusal(run_copy):
    from cnn_studio.runs.checks import check_history

    path = RunLayout(run_copy).history
    assert check_history(path, 2) == ""
    path.unlink()
    assert "is missing" in check_history(path, 2) and "epochs 1–2" in check_history(path, 2)


def test_history_rows_lost_at_the_end_are_said_when_resume_goes_on(run_copy):
    from cnn_studio.core import events as ev
    from cnn_studio.training.trainer import resume

    _resumable(run_copy)
    path = RunLayout(run_copy).history
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")  # killed between last.keras and history.csv
    events = []
    result = resume(run_copy, sink=events.append)
    assert result.epochs_done == 3
    warnings = [e.text for e in events if isinstance(e, ev.LogMessage) and e.level == "warning"]
    assert any("history.csv" in w and "epoch 2" in w for w in warnings), warnings


def test_a_model_not_made_by_cnn_studio_is_refused_by_resume_and_predict(run_copy):
    import keras

    from cnn_studio.predict.predictor import Classifier
    from cnn_studio.training.trainer import resume

    _resumable(run_copy)
    layout = RunLayout(run_copy)
    foreign = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    foreign.compile(optimizer="adam", loss="mse")
    foreign.save(layout.last_model)
    with pytest.raises(RunError) as info:
        resume(run_copy)
    assert "last.keras" in info.value.message and "CNN Studio" in info.value.message
    shutil.copy(layout.last_model, layout.best_model)
    with pytest.raises(RunError, match="best.keras.*CNN Studio"):
        Classifier.load(run_copy)


def test_damaged_informational_files_are_set_aside_and_said(run_copy, tmp_path, capsys):
    from cnn_studio.cli import main
    from cnn_studio.evaluation.review import read_review
    from cnn_studio.export.writer import export_model
    from cnn_studio.runs.reproducibility import read_reproducibility

    layout = RunLayout(run_copy)
    assert read_review(run_copy)["calibration"] and read_reproducibility(run_copy)["dataset"]  # as training wrote them
    layout.review.write_text('{"calibration": "yes", "shortcuts": 5, "chance": []}', encoding="utf-8")
    layout.reproducibility.write_text('{"app_version": 3, "dataset": [1, 2], "libraries": "tf"}',
                                      encoding="utf-8")
    assert "review.json" in read_review(run_copy)["damaged"]
    with pytest.raises(RunError, match="reproducibility.json"):
        read_reproducibility(run_copy)
    assert main(["evaluate", str(run_copy)]) == 0
    assert "review.json" in capsys.readouterr().err
    record = export_model(run_copy, "keras", tmp_path / "e")
    card = (tmp_path / "e" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert record.verified and "reproducibility.json" in card


@pytest.mark.parametrize("content", ["{}", '{"n_images": 6, "chance": {}}'])
def test_a_review_emptied_or_cut_short_is_damaged_not_read_as_nothing_to_say(run_copy, content, capsys):
    """review.json emptied to {} read as a review without notes: evaluate then said "no temperature scaling"
    of a calibrated model, and a "not better than guessing" verdict was gone, with nothing said."""
    from cnn_studio.cli import main
    from cnn_studio.evaluation.review import read_review

    layout = RunLayout(run_copy)
    assert "damaged" not in read_review(run_copy)  # as training wrote it
    layout.review.write_text(content, encoding="utf-8")
    damaged = read_review(run_copy)["damaged"]
    assert "review.json" in damaged and "lacks" in damaged and "shortcuts" in damaged
    assert main(["evaluate", str(run_copy)]) == 0
    assert "review.json is damaged" in capsys.readouterr().err
    assert layout.review.read_text(encoding="utf-8") == content  # left as it was, not rewritten


def test_a_full_disk_while_taking_the_lock_is_a_clear_error(run_copy, monkeypatch):
    from cnn_studio.evaluation.evaluate import evaluate_run
    from cnn_studio.runs import lock as run_lock

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_lock.os, "pwrite", full)
    with pytest.raises(StudioError) as info:
        evaluate_run(run_copy)
    assert "disk is full" in info.value.message and str(run_copy) in info.value.message
    assert "Free some space" in info.value.hint
    monkeypatch.undo()
    assert lock_holder(run_copy) is None and not RunLayout(run_copy).lock.exists()


@pytest.mark.parametrize("content", [b"\x00\xff garbage", b'{"count": "four"}', b'{"stats": [1]}', b"[]"])
def test_a_damaged_bands_json_names_the_file(tmp_path, content):
    from cnn_studio.data.bands import read_band_info

    path = RunLayout(tmp_path).bands
    path.write_bytes(content)
    with pytest.raises(RunError, match="bands.json is damaged") as info:
        read_band_info(path)
    assert "put back" in info.value.hint and path.read_bytes() == content


def test_a_full_disk_before_the_temporary_file_exists_is_a_clear_error(tmp_path, monkeypatch):
    from cnn_studio.core import fsutil

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "state.json"
    target.write_text('{"status": "completed"}', encoding="utf-8")
    monkeypatch.setattr(fsutil.tempfile, "mkstemp", full)
    with pytest.raises(StudioError, match="disk is full") as info:
        fsutil.write_json(target, {"status": "running"})
    assert str(target) in info.value.message and target.read_text(encoding="utf-8") == '{"status": "completed"}'
    monkeypatch.setattr(fsutil.tempfile, "mkdtemp", full)
    with pytest.raises(StudioError, match="disk is full"):
        with fsutil.atomic_dir(tmp_path / "saved_model"):
            pass
