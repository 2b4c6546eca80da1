"""Fine-tuning on the frozen layers' activations: the cut is exact, shares the classifier's weights, and runs train on it."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev

pytestmark = pytest.mark.slow  # builds and trains networks

X = np.random.default_rng(0).uniform(0, 255, (3, 40, 36, 3)).astype("float32")


def _classifier(key="small_cnn", size=32, depth="1 block"):
    from cnn_studio.backbones.classifier import build_classifier, unfreeze_depth

    model = build_classifier(registry.get(key), 3, image_size=size)
    unfreeze_depth(model, depth)
    return model


def test_the_cut_gives_the_classifier_own_output_and_trains_its_own_weights():
    from cnn_studio.backbones.activation_split import split_below_trainable

    model = _classifier()
    split = split_below_trainable(model)
    assert split is not None and split.cut_layer == "block4_conv"
    np.testing.assert_allclose(np.asarray(split.upper(split.lower(X))), np.asarray(model(X)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(split.pooled(split.lower(X))), np.asarray(_pooled(model)(X)),
                               rtol=1e-5, atol=1e-6)
    assert {id(v) for v in split.upper.trainable_weights} == {id(v) for v in model.trainable_weights}
    assert split.lower.trainable_weights == [], "nothing below the cut trains"
    assert split.shape == tuple(split.lower.output.shape[1:])


def _pooled(model):
    import keras

    return keras.Model(model.inputs[0], model.get_layer("pool").output)


def test_no_cut_when_nothing_is_frozen_below_or_nothing_trains():
    from cnn_studio.backbones.activation_split import split_below_trainable
    from cnn_studio.backbones.classifier import freeze_backbone

    assert split_below_trainable(_classifier(depth="all")) is None, "the cut would be the backbone's input"
    frozen = _classifier()
    freeze_backbone(frozen)
    assert split_below_trainable(frozen) is None


def test_no_cut_across_a_skip_connection():
    """ResNet50's last block adds its input back: a cut inside the block would miss that path."""
    from cnn_studio.backbones.activation_split import split_below_trainable

    inside = split_below_trainable(_classifier("resnet50", 32, "2 conv"))  # conv5_block3_2 and _3: inside a block
    assert inside is None
    whole = split_below_trainable(_classifier("resnet50", 32, "1 block"))  # the block's input is a clean cut
    assert whole is not None and whole.cut_layer.startswith("conv5_block1")


def test_fine_tuning_trains_on_kept_activations_and_saves_the_whole_model(image_folder, tiny_config, tmp_path,
                                                                         monkeypatch):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.core.paths import RunLayout
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.runs.run_folder import load_model
    from cnn_studio.training.trainer import train

    split = make_split(scan(image_folder(per_class=12, size=32)), val_fraction=0.25, seed=0)
    weights = tmp_path / "pretrained.weights.h5"  # a weights file makes the schedule pretrained: head, then fine-tune
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    events = []
    cfg = tiny_config.replace(weights=str(weights), epochs=2, fine_tune_epochs=2, fine_tune_depth="1 block",
                              fine_tune_learning_rate=1e-2)
    from cnn_studio.evaluation import review

    decoded_for_check = []
    real_batches = review.iter_image_batches
    monkeypatch.setattr(review, "iter_image_batches", lambda paths, *a: decoded_for_check.append(paths) or
                        real_batches(paths, *a))
    result = train(cfg, split, tmp_path / "run", sink=events.append)

    assert result.epochs_done == 4
    phases = [e for e in events if isinstance(e, ev.PhaseStarted)]
    assert [(p.name, p.uses_feature_cache) for p in phases] == [("head", True), ("fine_tune", True)]
    logs = [e.text for e in events if isinstance(e, ev.LogMessage)]
    assert any(t.startswith("Activation cache (") and "block4_conv" in t for t in logs), logs
    assert any(t.startswith("Fine-tuning trains from block4_conv up") for t in logs), logs
    # the images ran through the frozen layers once (train + val), never again in the fine-tune epochs
    computing = [e for e in events if isinstance(e, ev.TaskProgress) and e.task.startswith("Computing features")]
    assert {e.task for e in computing} == {"Computing features (training images)",
                                           "Computing features (validation images)"}
    saved = backbone_of(load_model(RunLayout(result.run_dir).last_model))
    start = backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32))
    start.load_weights(weights)
    for name in ("block1_conv", "block3_conv"):  # frozen: exactly the weights file's
        np.testing.assert_array_equal(saved.get_layer(name).get_weights()[0], start.get_layer(name).get_weights()[0])
    moved = np.abs(saved.get_layer("block4_conv").get_weights()[0] - start.get_layer("block4_conv").get_weights()[0])
    assert moved.max() > 0, "the fine-tuned layer trained (on the activations) and the saved model has it"
    assert not (RunLayout(result.run_dir).feature_cache / "activations").exists()
    # the check after training answered from the kept validation activations: no image decoded again for it
    checking = [e for e in events if isinstance(e, ev.TaskProgress) and e.task.startswith("Checking the model")]
    assert checking and checking[-1].done == len(split.val)
    assert decoded_for_check == [], "the check decoded the validation images again"
    from cnn_studio.evaluation.review import read_review

    cam = read_review(result.run_dir)["shortcuts"]["gradcam"]
    assert cam.get("cells"), f"Grad-CAM ran in the shortcut check after the check from activations: {cam}"
    from cnn_studio.core.fsutil import read_json
    from cnn_studio.training.devices import bfloat16_frozen_pass

    extra = read_json(RunLayout(result.run_dir).config)["extra"]
    assert "feature_cache_reason" in extra, "recording the frozen pass kept what config.json said before"
    if bfloat16_frozen_pass(cfg):  # this CPU has AMX: the training images' frozen pass ran in bfloat16, and says so
        assert extra["frozen_pass"] == "bfloat16 (training images)"
        assert any("in bfloat16" in t for t in logs)
    else:
        assert "frozen_pass" not in extra


def _trained_run(image_folder, tiny_config, tmp_path):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.trainer import train

    split = make_split(scan(image_folder(per_class=12, size=32)), val_fraction=0.25, seed=0)
    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    cfg = tiny_config.replace(weights=str(weights), epochs=1, fine_tune_epochs=1, fine_tune_depth="1 block",
                              extra={"review": False})
    return train(cfg, split, tmp_path / "run").run_dir


def test_the_check_from_kept_activations_answers_as_the_images_do(image_folder, tiny_config, tmp_path):
    """The check after training runs best.keras from the cut up on the validation activations training kept;
    its answers are those of the whole model on the decoded images. Activations that do not line up with the
    validation records (a row missing, labels in another order) are not used: the images are."""
    from cnn_studio.backbones.activation_split import KeptActivations, split_at
    from cnn_studio.evaluation import review
    from cnn_studio.runs.run_folder import load_model, open_run

    run = open_run(_trained_run(image_folder, tiny_config, tmp_path))
    model = load_model(run.model_path)
    records = list(run.split.val)
    from_images, y, keys = review._validation_answers(model, records, run, None, ev.null_sink, None)
    assert len(keys) == len(records)
    split = split_at(model, "block4_conv")
    images = np.stack([_image(run, r.key) for r in records])
    kept = KeptActivations("block4_conv", np.asarray(split.lower(images)), y)
    seen = []
    from_acts, y2, keys2 = review._validation_answers(model, records, run, kept, seen.append, None)
    np.testing.assert_allclose(from_acts, from_images, atol=1e-5)
    assert list(y2) == list(y) and keys2 == keys
    assert seen[-1].done == len(records)

    shuffled = KeptActivations("block4_conv", kept.values[::-1], kept.labels[::-1])
    short = KeptActivations("block4_conv", kept.values[1:], kept.labels[1:])
    assert not np.array_equal(shuffled.labels, y), "the test needs both classes in the validation set"
    for wrong in (shuffled, short, KeptActivations("no_such_layer", kept.values, kept.labels)):
        answers, _, _ = review._validation_answers(model, records, run, wrong, ev.null_sink, None)
        np.testing.assert_allclose(answers, from_images, atol=1e-5)


def _image(run, key):
    from cnn_studio.data.pipeline import load_image

    return load_image(key, run.image_size, resize=run.config.resize)


def test_the_bfloat16_twin_gives_the_lower_part_activations_closely():
    """The frozen pass's bfloat16 twin: same layers and weights, the backbone computing in bfloat16 (within a
    few percent of float32), the preprocessing in float32, float32 out; the original is left as it was."""
    from cnn_studio.backbones.activation_split import split_below_trainable
    from cnn_studio.backbones.low_precision import bfloat16_twin

    split = split_below_trainable(_classifier())
    twin = bfloat16_twin(split.lower)
    exact, fast = np.asarray(split.lower(X)), np.asarray(twin(X))
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert np.abs(fast - exact).mean() / np.abs(exact).mean() < 0.02
    assert not np.array_equal(fast, exact), "the twin really computes in bfloat16"
    inner = twin.layers[-2].get_layer("block1_conv") if hasattr(twin.layers[-2], "get_layer") else None
    assert inner is not None and inner.compute_dtype == "bfloat16"
    assert split.lower.get_layer("frozen_lower").get_layer("block1_conv").compute_dtype == "float32"
    assert twin.get_layer("resize").compute_dtype == "float32"


def test_bfloat16_frozen_pass_only_where_it_was_measured_faster():
    from cnn_studio.training.devices import bfloat16_frozen_pass

    amx = {"avx512f", "amx_bf16", "amx_tile"}
    assert bfloat16_frozen_pass("auto", [], amx)
    assert not bfloat16_frozen_pass("float32", [], amx), "float32 chosen in the settings is float32"
    assert not bfloat16_frozen_pass("auto", ["GPU:0"], amx), "a GPU run has its own precision rule"
    assert not bfloat16_frozen_pass("auto", [], {"avx512f", "avx512_bf16"}), "not measured there: float32"
    assert not bfloat16_frozen_pass("auto", [], set())


def test_augmentation_fine_tunes_on_the_images(image_folder, tiny_config, tmp_path):
    from cnn_studio.backbones.classifier import backbone_of, build_classifier
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.trainer import train

    split = make_split(scan(image_folder(per_class=8, size=32)), val_fraction=0.25, seed=0)
    weights = tmp_path / "pretrained.weights.h5"
    backbone_of(build_classifier(registry.get("small_cnn"), 2, image_size=32)).save_weights(weights)
    events = []
    cfg = tiny_config.replace(weights=str(weights), epochs=1, fine_tune_epochs=1, augment=("flip",))
    train(cfg, split, tmp_path / "run", sink=events.append)
    assert [p.uses_feature_cache for p in events if isinstance(p, ev.PhaseStarted)] == [False, False]
    assert not any(isinstance(e, ev.LogMessage) and e.text.startswith("Activation cache") for e in events)
