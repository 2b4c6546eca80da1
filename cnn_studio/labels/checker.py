"""Which model judges the labels, and whether it has earned a say.

The label-issue finder (:mod:`cnn_studio.labels.issues`) accuses an image when a model that never saw
it finds its given label unlikely. That is only worth something when the model is better than a
guess: a checker at chance "finds" wrong labels among correct ones at random. So:

* :func:`choose_checker` reads the backbone and weights the user chose through the one weights
  parser (:func:`~cnn_studio.backbones.weights.parse_weights`): pretrained weights give frozen
  features and a classifier per fold; the Small CNN (no weights) is trained per fold. A pretrained
  backbone with no weights ("none", "random") is refused: its random features judge nothing, and
  training it from scratch per fold on a dataset's images would be slow and at chance.
* :func:`default_checker` is what the check uses when nothing was chosen: pretrained features when
  any backbone's ImageNet weights load offline (the app's weights store, Keras' cache), MobileNetV2
  first; else the Small CNN. It never downloads.
* :func:`judge_checker` is the chance verdict the rest of the app uses
  (:func:`~cnn_studio.evaluation.intervals.compare_with_guessing`, Wilson interval) on the checker's
  out-of-fold accuracy, worded for the check, with what would help when it is not better than guessing.

No TensorFlow, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_studio.backbones import registry
from cnn_studio.backbones.weights import WeightsChoice, parse_weights
from cnn_studio.core.errors import ConfigError
from cnn_studio.evaluation.intervals import compare_with_guessing

DEFAULT_FOLDS = 5
DEFAULT_FOLD_EPOCHS = 12  # epochs per fold for the fold models (the Small CNN)
ENOUGH_PER_CLASS = 30
"""Images in the smallest class below which "more images per class" is the first advice."""


@dataclass(frozen=True)
class CheckerChoice:
    """The checker: a backbone, its weights (parsed once) and whether its frozen features are used."""

    backbone: str
    weights: WeightsChoice
    features: bool

    def describe(self) -> str:
        """"VGG16, frozen ImageNet features" / "Small CNN, trained per fold"."""
        label = registry.get(self.backbone).label
        if self.features:
            source = "ImageNet" if self.weights.kind == "imagenet" else "pretrained"
            return f"{label}, frozen {source} features"
        return f"{label}, trained per fold"


def check_settings(folds: int, epochs: int) -> None:
    """Refuse fewer than 2 folds or fewer than 1 epoch per fold (before any image is read)."""
    if folds < 2:
        raise ConfigError(f"Folds: expected at least 2, received {folds}.", f"Use --folds {DEFAULT_FOLDS} (the default).")
    if epochs < 1:
        raise ConfigError(f"Epochs per fold: expected at least 1, received {epochs}.",
                          "A model trained for no epoch only guesses, and its guesses would accuse correct "
                          f"labels; use --epochs {DEFAULT_FOLD_EPOCHS} (the default).")


def choose_checker(backbone: str | None, weights: str | None, method: str | None = None) -> CheckerChoice:
    """Read the user's backbone/weights (``weights`` None: ImageNet for a pretrained backbone) and the method.

    Both None: :func:`default_checker`. ``backbone`` None with weights: MobileNetV2 for pretrained
    weights, else the Small CNN. ``method`` None decides by the weights: pretrained → "features",
    none → "fold_models".

    Raises
    ------
    ConfigError
        An unknown method, or a pretrained backbone without pretrained weights and no method
        ("--weights random": no pretrained features to judge by).
    """
    if method not in (None, "features", "fold_models"):
        raise ConfigError(f"Method: expected features or fold_models, received {method!r}.")
    if backbone is None and weights is None:
        found = default_checker()
        backbone, weights = found.backbone, found.weights.value
    if backbone is None:
        pretrained = parse_weights(weights).pretrained
        backbone = registry.DEFAULT_BACKBONE if pretrained else registry.FALLBACK_BACKBONE
    spec = registry.get(backbone)
    if weights is None:
        weights = spec.default_weights
    choice = parse_weights(weights)
    if method is None and not choice.pretrained and spec.has_pretrained_weights:
        raise ConfigError(
            f"The label check cannot judge with {spec.label} {choice.describe()} (weights: {weights}): a network "
            "that has learned nothing has no features to judge labels by, and training it anew for every fold "
            "would be slow and most likely at chance.",
            f"Use {spec.label}'s ImageNet weights (--weights imagenet) or a weights file for its frozen features, "
            "or --backbone small_cnn to train a small CNN per fold.")
    features = choice.pretrained if method is None else method == "features"
    return CheckerChoice(spec.key, choice, features)


def default_checker() -> CheckerChoice:
    """Pretrained features when any backbone's ImageNet weights load offline (MobileNetV2 first), else the
    Small CNN trained per fold. Never downloads."""
    from cnn_studio.backbones.weights_store import offline_status  # noqa: PLC0415 - reads the store's index

    specs = sorted(registry.all_specs(), key=lambda s: s.key != registry.DEFAULT_BACKBONE)
    for spec in specs:
        if not spec.has_pretrained_weights:
            continue
        try:
            if offline_status(spec).available:
                return CheckerChoice(spec.key, parse_weights(spec.default_weights), True)
        except Exception:  # noqa: BLE001 - an unreadable cache file: try the next backbone
            continue
    fallback = registry.get(registry.FALLBACK_BACKBONE)
    return CheckerChoice(fallback.key, parse_weights(fallback.default_weights), False)


def judge_checker(labels: np.ndarray, probabilities: np.ndarray, class_names, *, features: bool,
                  backbone_label: str = "") -> dict[str, Any]:
    """Is the checker better than guessing? ``compare_with_guessing`` on its out-of-fold answers.

    Returns its dict (``verdict`` "better" / "unproven" / "not_better", ``accuracy``, ``low``, ``high``,
    ``n``, ``chance``, ``majority``) with ``trusted`` (verdict "better": only then are images
    accused), and ``message``/``hint`` in the check's words.
    """
    labels = np.asarray(labels, np.int64)
    names = list(class_names)
    pred = np.asarray(probabilities).argmax(1) if len(labels) else np.zeros(0, np.int64)
    out = compare_with_guessing(labels, pred, names)
    c = max(1, len(names))
    what = (f"guessing ({out['chance']:.0%} with {c} classes)" if out["majority"] <= out["chance"] + 1e-9 else
            f"always answering the largest class, {out['majority_class']!r} ({out['majority']:.0%} of the images)")
    figures = (f"out-of-fold accuracy {out['accuracy']:.1%} (95% interval {out['low']:.0%}–{out['high']:.0%}, "
               f"{out['n']} images)")
    out["trusted"] = out["verdict"] == "better"
    if out["trusted"]:
        out["message"] = f"The check is better than {what}: {figures}."
        out["hint"] = ""
        return out
    head = ("The check is not better than" if out["verdict"] == "not_better"
            else "The check cannot be told apart from")
    out["message"] = (f"{head} {what}: {figures}. Its suggestions would be guesses, so no image is "
                      "listed as wrong.")
    out["hint"] = _what_would_help(labels, c, features=features, backbone_label=backbone_label)
    return out


def _what_would_help(labels: np.ndarray, n_classes: int, *, features: bool, backbone_label: str) -> str:
    smallest = int(np.bincount(labels, minlength=n_classes).min()) if len(labels) else 0
    tips = []
    if smallest < ENOUGH_PER_CLASS:
        tips.append(f"more images per class (the smallest has {smallest}; tens at least)")
    if features:
        tips.append(f"another pretrained backbone than {backbone_label or 'this one'}, or a larger image size")
    else:
        tips.append("a pretrained backbone with ImageNet weights (Model step, or --backbone vgg16 --weights "
                    "imagenet; `cnn-studio weights import FILE` brings weights to a computer offline)")
        tips.append("more epochs per fold (--epochs)")
    tips.append("checking that the classes differ in the pictures themselves, not only in their folder names")
    return "What would help: " + "; ".join(tips) + "."
