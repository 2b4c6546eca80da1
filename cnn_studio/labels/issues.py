"""Label-issue finder: images whose given label a model that never saw them finds unlikely; near-duplicates.

1. **Out-of-fold probabilities.** The dataset is cut into K stratified folds (group-aware: all images
   of a patient/source share a fold, so near-identical slices of one patient never judge each other);
   for each fold a model learns from the other K-1 and predicts the held-out images, so every image
   gets probabilities from a model that did not learn its (possibly wrong) label.

   * A pretrained backbone (``mobilenet_v2`` or ``vgg16`` with ImageNet weights or a file ...): the frozen backbone's pooled
     features are computed **once** (the trainer's feature-cache split,
     :func:`~cnn_studio.backbones.classifier.split_for_feature_cache`), and each fold fits a
     softmax regression on them in NumPy: K folds cost one pass over the images plus seconds.
   * The Small CNN (no pretrained weights, its features mean nothing untrained): a small CNN is
     trained per fold on the decoded images (kept in memory as uint8).

2. **Confident learning** (Northcutt et al., 2021). Per class ``j`` the threshold ``t_j`` is the
   mean probability of ``j`` over the images labelled ``j`` (the class's self-confidence). An image
   labelled ``y`` is a suspect when its probability of ``y`` is below ``t_y`` and another class ``j``
   reaches ``t_j``; the suggestion is the likeliest such ``j``. Suspects are ranked by the margin
   ``score = p(suggested) - p(given)`` (higher = more likely wrong).

3. **Near-duplicates by embedding distance** — not only identical bytes: cosine similarity of the
   backbone features (pretrained) or of standardised pixels (Small CNN) above a threshold, reported
   when the two images have different labels or sit in different parts of the split (leakage).

4. **The checker earns its say.** Its out-of-fold accuracy against the given labels is judged as the
   rest of the app judges a model (:func:`cnn_studio.labels.checker.judge_checker`: better than guessing
   and than the largest class, by its 95% Wilson interval). A checker that is not accuses no image
   (``LabelIssues.check`` says why and what would help; ``withheld`` counts what it would have listed).
   The backbone and weights are the user's, read by the one weights parser
   (:func:`cnn_studio.labels.checker.choose_checker`).

Images are paired with their records by the key the pipeline hands out with each image.
Each suspect carries its nearest neighbours from every class (for the review queue). The labels
used are the corrected ones (:mod:`cnn_studio.labels.corrections`, through :func:`~cnn_studio.data.prepare.prepare`);
images the review kept are not suggested again. No Qt here; TensorFlow only inside the functions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken
from cnn_studio.core.errors import DatasetError
from cnn_studio.core.fsutil import write_json as _write
from cnn_studio.data.bands import make_band_info
from cnn_studio.data.prepare import Prepared, PrepareOptions, prepare
from cnn_studio.data.split import SEED, TEST_FRACTION, VAL_FRACTION
from cnn_studio.labels.checker import (
    DEFAULT_FOLD_EPOCHS,
    DEFAULT_FOLDS,
    check_settings,
    choose_checker,
    judge_checker,
)
from cnn_studio.labels.corrections import resolve
from cnn_studio.labels.issue_maths import (
    MAX_DUPLICATES,
    NEIGHBOURS,
    confident_suspects,
    near_duplicate_pairs,
    nearest_by_class,
)
from cnn_studio.labels.out_of_fold import (
    FoldModel,
    feature_probabilities,
    fold_data,
    fold_model_probabilities,
    load_images,
)

DUPLICATE_SIMILARITY = {"features": 0.97, "pixels": 0.997}
"""Cosine similarity from which two images count as near-duplicates, per embedding kind."""


@dataclass(frozen=True)
class Suspect:
    """An image whose given label looks wrong: the label suggested instead and how sure (``score``)."""

    path: str
    given: str
    suggested: str
    score: float  # p(suggested) - p(given): higher = more likely mislabelled
    given_probability: float
    suggested_probability: float
    split: str = ""  # "train", "val", "test" or "" (no split)
    neighbours: dict[str, tuple[str, ...]] = field(default_factory=dict)  # class -> nearest images of it

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["neighbours"] = {k: list(v) for k, v in self.neighbours.items()}
        return d


@dataclass(frozen=True)
class NearDuplicate:
    """Two images closer than the duplicate threshold, with different labels or in different splits."""

    path_a: str
    path_b: str
    label_a: str
    label_b: str
    similarity: float
    split_a: str = ""
    split_b: str = ""

    @property
    def kind(self) -> str:
        """"cross_class" (different labels; may also cross splits) or "cross_split" (same label)."""
        return "cross_class" if self.label_a != self.label_b else "cross_split"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind}


@dataclass(frozen=True)
class LabelIssues:
    """What the finder found. ``probabilities`` are the out-of-fold ones, row ``i`` for ``paths[i]``."""

    root: str
    class_names: tuple[str, ...]
    backbone: str
    method: str  # "features" (frozen backbone + per-fold softmax regression) or "fold_models"
    folds: int
    paths: tuple[str, ...]
    labels: np.ndarray
    probabilities: np.ndarray
    thresholds: tuple[float, ...]
    suspects: tuple[Suspect, ...]
    duplicates: tuple[NearDuplicate, ...]
    kept: int = 0  # suspects the review had already kept (left out of ``suspects``)
    seconds: float = 0.0
    weights: str = ""  # the checker's weights setting as parsed: "imagenet", "none" or a file path
    checker: str = ""  # in words: "VGG16, frozen ImageNet features" / "Small CNN, trained per fold"
    check: dict[str, Any] = field(default_factory=dict)  # label_checker.judge_checker: the chance verdict
    withheld: int = 0  # suspects not listed because the checker is not better than guessing

    @property
    def trusted(self) -> bool:
        """Whether the checker beat guessing (its suspects are listed); True for a result without a verdict."""
        return bool(self.check.get("trusted", True))

    @property
    def accuracy(self) -> float:
        """Out-of-fold accuracy against the given labels (how well the finder's model learned)."""
        if not len(self.labels):
            return 0.0
        return float(np.mean(self.probabilities.argmax(1) == self.labels))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root, "backbone": self.backbone, "method": self.method, "folds": self.folds,
            "images": len(self.paths), "classes": list(self.class_names),
            "thresholds": dict(zip(self.class_names, self.thresholds, strict=True)),
            "out_of_fold_accuracy": round(self.accuracy, 4), "seconds": round(self.seconds, 2),
            "kept_by_review": self.kept, "weights": self.weights, "checker": self.checker,
            "check": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.check.items()},
            "suspects_withheld": self.withheld,
            "suspects": [s.to_dict() for s in self.suspects],
            "near_duplicates": [d.to_dict() for d in self.duplicates],
        }



@dataclass(frozen=True)
class LabelCheckSettings:
    """The label check's settings; :func:`find_label_issues` takes them whole or field by field.

    ``backbone``, ``weights``
        Read by :func:`~cnn_studio.labels.checker.choose_checker` (the one weights parser): pretrained
        weights ("imagenet" by default for a pretrained backbone, or a file) use the frozen-feature
        path; ``small_cnn`` (weights none) trains a small CNN per fold for ``epochs`` epochs; a
        pretrained backbone with weights "none"/"random" is refused. ``backbone`` None:
        :func:`~cnn_studio.labels.checker.default_checker` (pretrained features when any load offline).
    ``folds``
        K of the K-fold (at least 2).
    ``epochs``
        Epochs per fold for the fold models (at least 1).
    ``method``
        "features" or "fold_models" to choose the path yourself (default: by the weights).
    ``corrections``
        The review's decisions, applied by :func:`~cnn_studio.data.prepare.prepare` ("auto": the saved ones).
    ``val_fraction``, ``test_fraction``, ``split_seed``
        The split settings, only to say which part of the split each image and duplicate is in.
    ``duplicate_similarity``
        Cosine similarity from which two images are near-duplicates (default per embedding kind,
        :data:`DUPLICATE_SIMILARITY`).
    """

    backbone: str | None = None
    weights: str | None = None
    folds: int = DEFAULT_FOLDS
    image_size: int | None = None
    epochs: int = DEFAULT_FOLD_EPOCHS
    batch_size: int = 32
    resize: str = "stretch"
    learning_rate: float = 3e-3
    seed: int = 0
    corrections: Any = "auto"
    val_fraction: float | None = None
    test_fraction: float | None = None
    split_seed: int | None = None
    duplicate_similarity: float | None = None
    neighbours: int = NEIGHBOURS
    method: str | None = None


# ---------------------------------------------------------------------------- the finder


def find_label_issues(source, settings: LabelCheckSettings | None = None, *, sink: ev.EventSink = ev.null_sink,
                      cancel: CancelToken | None = None, **options: Any) -> LabelIssues:
    """Find likely mislabelled images and near-duplicates in a dataset (see the module docstring).

    ``source`` is a dataset folder, a CSV manifest or a scanned :class:`~cnn_studio.data.records.DatasetIndex`,
    prepared with :func:`~cnn_studio.data.prepare.prepare` (so the corrections are applied). ``settings``
    (default :class:`LabelCheckSettings`) with any of its fields given as keywords (``options``) instead.

    Returns
    -------
    LabelIssues
        Suspects best first, near-duplicates most similar first, the out-of-fold probabilities, and
        ``check``: the checker's chance verdict. A checker not better than guessing accuses no image
        (``suspects`` empty, ``withheld`` says how many it would have listed).

    Raises
    ------
    DatasetError
        Fewer than two classes, or a class with fewer images than two.
    ConfigError
        Folds below 2, epochs below 1, an unknown method, a pretrained backbone without its weights.
    Cancelled
        ``cancel`` was set (checked per batch and per fold).

    Events emitted
    --------------
    The scan's events, StageChanged, TaskProgress ("Reading the images", "Computing features", the folds).
    """

    t0 = time.perf_counter()
    s = replace(settings or LabelCheckSettings(), **options)
    check_settings(s.folds, s.epochs)
    checker = choose_checker(s.backbone, s.weights, s.method)
    spec = registry.get(checker.backbone)
    size = spec.image_size(s.image_size)
    prepared = _prepare(source, s, sink, cancel)
    index, n_classes = prepared.index, len(prepared.index.class_names)
    sink(ev.StageChanged("label_issues", "Loading TensorFlow"))
    images, records = load_images(list(index.records), size, s.resize, s.batch_size, sink=sink, cancel=cancel)
    # Multi-band tiles: the model takes every band, normalised by this dataset's statistics (as training does).
    bands = make_band_info(records, names=index.band_names) if index.bands else None
    labels = np.array([r.label for r in records], np.int64)
    data = fold_data(images, labels, [r.group or "" for r in records], s.folds, n_classes, s.seed)
    model = FoldModel(spec, n_classes, checker.weights.value, size, bands, s.batch_size, s.seed,
                      epochs=s.epochs, learning_rate=s.learning_rate)
    oof = feature_probabilities if checker.features else fold_model_probabilities
    probs, emb = oof(model, data, sink=sink, cancel=cancel)
    evidence = _Evidence(tuple(index.class_names), tuple(r.key for r in records),  # a slice: path#slice=AXIS:INDEX
                         labels, probs, emb, _split_parts(prepared))
    check = judge_checker(labels, probs, index.class_names, features=checker.features, backbone_label=spec.label)
    suspects, kept, withheld, thresholds = _suspects(evidence, check, resolve(s.corrections, index.root),
                                                     s.neighbours)
    kind = "features" if checker.features else "pixels"
    threshold = DUPLICATE_SIMILARITY[kind] if s.duplicate_similarity is None else s.duplicate_similarity
    return LabelIssues(root=str(index.root), class_names=evidence.names, backbone=spec.key,
                       method="features" if checker.features else "fold_models", folds=data.k,
                       paths=evidence.paths, labels=labels, probabilities=probs, thresholds=thresholds,
                       suspects=suspects, duplicates=tuple(_duplicates(evidence, threshold, cancel)), kept=kept,
                       seconds=time.perf_counter() - t0, weights=checker.weights.value,
                       checker=checker.describe(), check=check, withheld=withheld)


def _prepare(source, s: LabelCheckSettings, sink, cancel) -> Prepared:
    """The dataset with the review's corrections and its split; refused without two classes of two images."""
    prepared = prepare(source, PrepareOptions(
        val_fraction=VAL_FRACTION if s.val_fraction is None else s.val_fraction,
        test_fraction=TEST_FRACTION if s.test_fraction is None else s.test_fraction,
        seed=SEED if s.split_seed is None else s.split_seed, find_duplicates=False,
        corrections=s.corrections), sink=sink, cancel=cancel)
    counts = prepared.index.counts()
    if len(prepared.index.class_names) < 2 or min(counts.values(), default=0) < 2:
        raise DatasetError("The label check needs at least two classes with two images or more each "
                           f"(this dataset: {', '.join(f'{k} {v}' for k, v in counts.items()) or 'no images'}).",
                           "Add images to the small classes, then run the check again.")
    return prepared


def _split_parts(prepared: Prepared) -> dict[str, str]:
    """Record key → "train", "val" or "test" (empty without a split)."""
    part: dict[str, str] = {}
    if prepared.split is not None:
        for name in ("train", "val", "test"):
            part.update({r.key: name for r in prepared.split.subset(name)})
    return part


@dataclass(frozen=True)
class _Evidence:
    """What the checker saw and said: row ``i`` is ``paths[i]``, labelled ``labels[i]``, in split part
    ``part[paths[i]]``, with out-of-fold ``probs[i]`` and embedding ``emb[i]``."""

    names: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray
    probs: np.ndarray
    emb: np.ndarray
    part: dict[str, str]


def _suspects(e: _Evidence, check: dict[str, Any], fixes, neighbours: int):
    """Confident learning's suspects the review has not kept → ``(suspects, kept, withheld, thresholds)``;
    a checker no better than guessing accuses no one (all of them withheld)."""
    n_classes, names, paths, labels, probs = len(e.names), e.names, e.paths, e.labels, e.probs
    idx, suggested, scores, thresholds = confident_suspects(probs, labels, n_classes)
    chosen, kept = _not_kept(idx, suggested, scores, paths, fixes)
    withheld = 0
    if not check["trusted"]:
        withheld, chosen = len(chosen), []
    near = nearest_by_class(e.emb, labels, np.array([c[0] for c in chosen], np.int64), n_classes, neighbours)
    suspects = tuple(
        Suspect(path=paths[i], given=names[labels[i]], suggested=names[s], score=round(sc, 6),
                given_probability=round(float(probs[i, labels[i]]), 6),
                suggested_probability=round(float(probs[i, s]), 6), split=e.part.get(paths[i], ""),
                neighbours={names[c]: tuple(paths[j] for j in nn[c]) for c in range(n_classes)})
        for (i, s, sc), nn in zip(chosen, near, strict=True))
    return suspects, kept, withheld, tuple(float(t) for t in thresholds)


def _not_kept(idx, suggested, scores, paths, fixes) -> tuple[list[tuple[int, int, float]], int]:
    """The suspects the review has not kept (``[(row, suggested class, score)]``) and how many it kept."""
    kept, chosen = 0, []
    for i, s, sc in zip(idx, suggested, scores, strict=True):
        decision = fixes.get(paths[i]) if fixes is not None else None
        if decision is not None and decision.action == "keep":  # the review said the label is right
            kept += 1
            continue
        chosen.append((int(i), int(s), float(sc)))
    return chosen, kept


def _duplicates(e: _Evidence, threshold: float, cancel) -> list[NearDuplicate]:
    """Near-duplicate pairs with different labels or in different parts of the split, most similar first."""
    duplicates = []
    labels, paths, names = e.labels, e.paths, e.names
    for i, j, sim in near_duplicate_pairs(e.emb, threshold, cancel=cancel):
        a, b = e.part.get(paths[i], ""), e.part.get(paths[j], "")
        if labels[i] != labels[j] or a != b:
            duplicates.append(NearDuplicate(paths[i], paths[j], names[labels[i]], names[labels[j]],
                                            round(sim, 6), a, b))
        if len(duplicates) >= MAX_DUPLICATES:
            break
    return duplicates


def write_json(issues: LabelIssues, path: str | Path) -> Path:
    """Save :meth:`LabelIssues.to_dict` atomically (the review queue and the CLI read the same file)."""

    return _write(Path(path), issues.to_dict())
