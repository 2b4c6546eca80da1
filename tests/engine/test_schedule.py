"""The automatic schedule (issue 22): early stopping per phase, the finder, the time budget, 'still improving'."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.core.fsutil import read_json
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split
from cnn_studio.training import schedule
from cnn_studio.training.config import TrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture
def easy_split(image_folder):
    return make_split(scan(image_folder(per_class=16, size=32)), val_fraction=0.25, seed=0)


@pytest.fixture
def noise_split(tmp_path):
    """Two classes of pure noise: nothing to learn, so the validation loss cannot keep improving."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "noise" / name).mkdir(parents=True)
        for i in range(16):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "noise" / name / f"{i}.png")
    return make_split(scan(tmp_path / "noise"), val_fraction=0.25, seed=0)


def _auto(tiny_config, **changes) -> TrainConfig:
    return tiny_config.replace(epochs=None, fine_tune_epochs=None, **changes)


def _state(run):
    return read_json(RunLayout(run).state)


def test_new_runs_default_to_the_automatic_schedule_and_old_configs_stay_fixed():
    assert TrainConfig().schedule == "auto"
    assert TrainConfig(epochs=5).schedule == "fixed" and TrainConfig(epochs=5).total_epochs == 5
    old = TrainConfig.from_dict({"backbone": "vgg16", "epochs": 5, "fine_tune_epochs": 0})
    assert old.schedule == "fixed" and old.total_epochs == 5
    assert TrainConfig(weights="none").total_epochs == schedule.SCRATCH_MAX_EPOCHS
    assert "until the validation loss stops improving" in schedule.describe(TrainConfig())
    assert "finder" in schedule.describe(TrainConfig())
    assert "for 5 epoch(s)" in schedule.describe(TrainConfig(epochs=5))
    assert schedule.parse_duration("10m") == 600 and schedule.parse_duration("1h30m") == 5400


def test_schedule_stops_a_run_whose_validation_loss_has_flattened(noise_split, tiny_config, tmp_path, monkeypatch):
    from cnn_studio.training.trainer import train

    monkeypatch.setattr(schedule, "SCRATCH_MAX_EPOCHS", 30)
    monkeypatch.setattr(schedule, "SCRATCH_PATIENCE", 2)
    result = train(_auto(tiny_config, learning_rate=3e-3), noise_split, tmp_path / "run")
    assert result.epochs_done < 30
    record = _state(result.run_dir)["schedule"]["scratch"]
    assert "no lower validation loss for 2 epochs" in record["how"], record
    assert record["end"] == result.epochs_done


def test_schedule_keeps_a_run_that_is_still_improving(easy_split, tiny_config, tmp_path, monkeypatch):
    from cnn_studio.training.trainer import train

    monkeypatch.setattr(schedule, "SCRATCH_MAX_EPOCHS", 5)
    monkeypatch.setattr(schedule, "SCRATCH_PATIENCE", 2)
    events = []
    result = train(_auto(tiny_config, learning_rate=3e-3), easy_split, tmp_path / "run", sink=events.append)
    assert result.epochs_done == 5
    assert "ran all 5" in _state(result.run_dir)["schedule"]["scratch"]["how"]
    assert any(isinstance(e, ev.LogMessage) and e.text.startswith("Schedule:") for e in events)


def test_fixed_run_ending_while_improving_says_so_and_continues(easy_split, tiny_config, tmp_path):
    from cnn_studio.training.trainer import resume, train

    events = []
    run = tmp_path / "run"
    train(tiny_config.replace(epochs=3, learning_rate=3e-3), easy_split, run, sink=events.append)
    said = [e for e in events if isinstance(e, ev.StillImproving)]
    assert len(said) == 1 and said[0].val_loss_after < said[0].val_loss_before
    assert any(isinstance(e, ev.LogMessage) and "still falling" in e.text for e in events)
    assert _state(run)["still_improving"] is True

    result = resume(run, more_epochs=2)
    assert result.epochs_done == 5
    assert [int(r["epoch"]) for r in result.history] == [0, 1, 2, 3, 4]
    assert read_json(RunLayout(run).config)["extra"]["extended"][0]["more_epochs"] == 2


def test_automatic_pretrained_schedule_uses_the_finder_then_fine_tunes(easy_split, tiny_config, tmp_path,
                                                                       monkeypatch):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.training.trainer import train

    monkeypatch.setattr(schedule, "HEAD_MAX_EPOCHS", 8)
    monkeypatch.setattr(schedule, "HEAD_PATIENCE", 2)
    monkeypatch.setattr(schedule, "FINE_TUNE_MAX_EPOCHS", 2)
    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    events = []
    result = train(_auto(tiny_config, weights=str(weights), fine_tune_depth="2 conv"), easy_split, tmp_path / "run",
                   sink=events.append)
    found = [e for e in events if isinstance(e, ev.LearningRateFound)]
    phases = [e for e in events if isinstance(e, ev.PhaseStarted)]
    assert len(found) == 1 and phases[0].learning_rate == found[0].suggestion
    record = _state(result.run_dir)["schedule"]
    assert record["head"]["lr_finder"]["suggestion"] == found[0].suggestion
    assert [p.name for p in phases] == ["head", "fine_tune"]
    assert phases[1].first_epoch == record["head"]["end"] <= 8  # fine-tuning starts where the head stopped
    assert result.epochs_done == record["fine_tune"]["end"] <= record["head"]["end"] + 2


def test_a_cosine_phase_ending_at_its_lowest_loss_is_not_called_cut_short(easy_split, tiny_config, tmp_path,
                                                                           monkeypatch):
    """The automatic fine-tune phase's rate falls to 0 along a cosine, so its last epoch is often its best: that
    is the schedule running its course, said in the log, not a StillImproving offer to continue (which fired on
    nearly every default run). The same curve in a fixed-epoch phase still says so."""
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.training.trainer import train

    monkeypatch.setattr(schedule, "HEAD_MAX_EPOCHS", 3)
    monkeypatch.setattr(schedule, "FINE_TUNE_MAX_EPOCHS", 2)
    monkeypatch.setattr(schedule, "still_improving", lambda losses, window=3: True)  # every curve "still falling"
    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    events = []
    train(_auto(tiny_config, weights=str(weights), fine_tune_depth="2 conv"), easy_split, tmp_path / "auto",
          sink=events.append)
    assert "ran all 2" in _state(tmp_path / "auto")["schedule"]["fine_tune"]["how"]  # patience 4 > 2 epochs
    assert not [e for e in events if isinstance(e, ev.StillImproving)]
    assert any(isinstance(e, ev.LogMessage) and "ran its course" in e.text for e in events)
    assert not _state(tmp_path / "auto").get("still_improving")
    fixed = []
    train(tiny_config.replace(epochs=2, learning_rate=3e-3), easy_split, tmp_path / "fixed", sink=fixed.append)
    assert [e for e in fixed if isinstance(e, ev.StillImproving)], "a fixed-epoch run still says so"


def test_time_budget_is_respected(easy_split, tiny_config, tmp_path):
    from cnn_studio.training.trainer import train

    budget = 15.0
    events = []
    result = train(tiny_config.replace(epochs=2000, learning_rate=3e-3, time_budget_s=budget), easy_split,
                   tmp_path / "run", sink=events.append)
    state = _state(result.run_dir)
    assert 1 <= result.epochs_done < 2000
    assert state["elapsed_s"] <= budget + 15, state["elapsed_s"]  # generous: one epoch and the check may overrun
    assert state["schedule"]["left_out"], state["schedule"]
    assert any(isinstance(e, ev.LogMessage) and "left out" in e.text for e in events)


def test_progress_with_an_estimate_during_feature_computation_and_the_check(easy_split, tiny_config, tmp_path):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.training.trainer import train

    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    events = []
    train(tiny_config.replace(weights=str(weights), epochs=1, batch_size=4), easy_split, tmp_path / "run",
          sink=events.append)
    progress = [e for e in events if isinstance(e, ev.TaskProgress)]
    features = [e for e in progress if "features (training" in e.task]
    check = [e for e in progress if e.task == "Checking the model on the validation images"]
    for part, total in ((features, 24), (check, 8)):
        assert part[0].done == 0 and part[0].total == total  # said before the first (slowest) batch
        assert part[-1].done == total
        assert len(part) >= 2 and all(e.seconds_left is not None for e in part[1:])  # an estimate once known
    assert any("left" in e.detail for e in features)


def test_cli_defaults_to_the_automatic_schedule_and_reads_a_time_budget():
    from cnn_studio.cli import build_parser
    from cnn_studio.cli.train import config_from_args
    from cnn_studio.core.errors import ConfigError

    parser = build_parser()

    def config(*extra):
        args = parser.parse_args(["train", "data", "--out", "run", *extra])
        return config_from_args(args, "vgg16", "imagenet")

    assert config().schedule == "auto" and config().learning_rate is None
    assert config().schedule == TrainConfig().schedule  # the app's default (model_page.default_config) too
    fixed = config("--epochs", "3")
    assert (fixed.schedule, fixed.total_epochs) == ("fixed", 3)
    assert config("--epochs", "3", "--fine-tune-epochs", "2").total_epochs == 5
    assert config("--time-budget", "10m").time_budget_s == 600
    with pytest.raises(ConfigError, match="Time budget"):
        config("--time-budget", "soon")


def test_a_stopped_automatic_run_resumes_in_its_fine_tune_phase(easy_split, tiny_config, tmp_path, monkeypatch):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.core.cancel import Cancelled, CancelToken
    from cnn_studio.training.trainer import resume, train

    monkeypatch.setattr(schedule, "HEAD_MAX_EPOCHS", 4)
    monkeypatch.setattr(schedule, "FINE_TUNE_MAX_EPOCHS", 3)
    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    token = CancelToken()

    def sink(e):
        if isinstance(e, ev.EpochEnded) and e.phase == "fine_tune":
            token.cancel()

    run = tmp_path / "run"
    with pytest.raises(Cancelled):
        train(_auto(tiny_config, weights=str(weights), fine_tune_depth="2 conv"), easy_split, run, sink=sink,
              cancel=token)
    head_end = _state(run)["schedule"]["head"]["end"]
    events = []
    result = resume(run, sink=events.append)
    phases = [e for e in events if isinstance(e, ev.PhaseStarted)]
    assert [(p.name, p.first_epoch) for p in phases] == [("fine_tune", head_end + 1)]  # the head is not trained again
    assert result.epochs_done <= head_end + 3
    assert [int(r["epoch"]) for r in result.history] == list(range(result.epochs_done))


def test_the_fine_tune_rate_warms_up_then_falls_along_a_cosine_to_zero():
    rate = schedule.fine_tune_rate(3e-4, epochs=4, steps_per_epoch=10)
    values = [float(rate(step)) for step in range(41)]
    assert values[0] == pytest.approx(3e-4 * schedule.WARMUP_START)
    assert values[5] == pytest.approx(3e-4 * (schedule.WARMUP_START + 1) / 2, rel=1e-3)  # halfway up the warm-up
    assert values[10] == pytest.approx(3e-4) and max(values) == pytest.approx(3e-4)
    assert all(a >= b for a, b in zip(values[10:-1], values[11:], strict=True)), "after the warm-up it only falls"
    assert values[40] == pytest.approx(0.0, abs=1e-9)
    resumed = schedule.fine_tune_rate(3e-4, epochs=2, steps_per_epoch=10, warm_up=False)  # part-way: no warm-up
    assert float(resumed(0)) == pytest.approx(3e-4) and float(resumed(20)) == pytest.approx(0.0, abs=1e-9)


def test_only_the_automatic_fine_tune_phase_uses_the_cosine_and_a_chosen_plateau_replaces_it():
    auto = TrainConfig(weights="imagenet", epochs=None, fine_tune_epochs=None)
    head, fine = schedule.plan(auto)
    assert schedule.uses_cosine(fine, auto) and not schedule.uses_cosine(head, auto)
    assert "cosine" in schedule.describe(auto)
    plateau = auto.replace(reduce_lr_patience=2)
    assert not schedule.uses_cosine(schedule.plan(plateau)[1], plateau) and "cosine" not in schedule.describe(plateau)
    fixed = auto.replace(epochs=2, fine_tune_epochs=2)
    assert not schedule.uses_cosine(schedule.plan(fixed)[1], fixed)


def test_automatic_fine_tuning_records_its_falling_rate_and_never_plateaus(easy_split, tiny_config, tmp_path,
                                                                          monkeypatch):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.runs.run_folder import read_history
    from cnn_studio.training.trainer import train

    monkeypatch.setattr(schedule, "HEAD_MAX_EPOCHS", 3)
    monkeypatch.setattr(schedule, "FINE_TUNE_MAX_EPOCHS", 3)
    monkeypatch.setattr(schedule, "FINE_TUNE_PATIENCE", 5)  # all three epochs run
    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    config = _auto(tiny_config, weights=str(weights), fine_tune_depth="1 block")
    result = train(config, easy_split, tmp_path / "run")
    begin = _state(result.run_dir)["schedule"]["fine_tune"]["start"]
    rates = [row["learning_rate"] for row in read_history(RunLayout(result.run_dir).history) if row["epoch"] >= begin]
    peak = config.fine_tune_learning_rate
    assert len(rates) == 3
    assert rates[0] == pytest.approx(peak, rel=1e-3), "the warm-up ends at the fine-tune rate after one epoch"
    assert rates[1] == pytest.approx(peak / 2, rel=1e-3) and rates[2] == pytest.approx(0.0, abs=1e-9)


def test_xla_compiles_fine_tuning_on_a_cpu_only_where_it_was_measured_faster(monkeypatch):
    from cnn_studio.training import fit_context

    monkeypatch.setattr(fit_context, "visible_gpus", lambda: [])
    vgg = TrainConfig(backbone="vgg16")
    assert fit_context.upper_jit_compile(vgg, 4) is True  # 64 px: 4×4 activations below block5
    assert fit_context.upper_jit_compile(vgg, 14) is False  # 224 px: 14×14, oneDNN's kernels are faster
    assert fit_context.upper_jit_compile(TrainConfig(backbone="xception"), 3) is False
    assert fit_context.upper_jit_compile(vgg.replace(jit="off"), 4) is False
    assert fit_context.upper_jit_compile(TrainConfig(backbone="xception", jit="on"), 3) is True
    monkeypatch.setattr(fit_context, "visible_gpus", lambda: ["GPU:0"])
    assert fit_context.upper_jit_compile(vgg, 4) == "auto"  # on a GPU Keras decides, as everywhere else
