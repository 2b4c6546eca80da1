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

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.backbones import registry
from cnn_studio.backbones.classifier import build_classifier, split_for_feature_cache
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import DatasetError, StudioError
from cnn_studio.core.fsutil import write_json as _write
from cnn_studio.data.bands import make_band_info
from cnn_studio.data.pipeline import SkipLog, make_dataset
from cnn_studio.data.prepare import prepare
from cnn_studio.data.split import SEED, TEST_FRACTION, VAL_FRACTION
from cnn_studio.labels.checker import (
    DEFAULT_FOLD_EPOCHS,
    DEFAULT_FOLDS,
    check_settings,
    choose_checker,
    judge_checker,
)
from cnn_studio.labels.corrections import resolve
from cnn_studio.training.feature_cache import compute_features
from cnn_studio.training.lr_finder import make_optimizer

DUPLICATE_SIMILARITY = {"features": 0.97, "pixels": 0.997}
"""Cosine similarity from which two images count as near-duplicates, per embedding kind."""
NEIGHBOURS = 3
MAX_DUPLICATES = 500
TASK = "Finding label issues"


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


# ---------------------------------------------------------------------------- the pure maths


def stratified_folds(labels: np.ndarray, k: int, seed: int = 0, groups=None) -> np.ndarray:
    """Fold number (0..k-1) of each image: every class spread evenly over the folds, shuffled by ``seed``.

    With ``groups`` (one id per image, e.g. the patient; None or "" = a group of its own), every
    group lands in one fold, so a patient's near-identical slices are never judged by a model that
    learned from their siblings: groups are dealt by their majority class, largest first, each to the
    fold holding the fewest images of that class so far.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    folds = np.zeros(len(labels), np.int64)
    if groups is None or not any(groups):
        offset = 0
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            rng.shuffle(idx)
            folds[idx] = (np.arange(len(idx)) + offset) % k
            offset += len(idx)  # small classes do not all start in fold 0
        return folds
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(f"group:{g}" if g else f"image:{i}", []).append(i)
    keys = list(members)
    rng.shuffle(keys)  # ties between equal groups broken by the seed
    majority = {key: int(np.bincount(labels[members[key]]).argmax()) for key in keys}
    per_class = np.zeros((k, int(labels.max()) + 1 if len(labels) else 1), np.int64)
    total = np.zeros(k, np.int64)
    for key in sorted(keys, key=lambda key: -len(members[key])):  # stable: the shuffled order breaks ties
        c = majority[key]
        f = int(np.lexsort((total, per_class[:, c]))[0])  # fewest of this class, then fewest overall
        folds[members[key]] = f
        per_class[f] += np.bincount(labels[members[key]], minlength=per_class.shape[1])
        total[f] += len(members[key])
    return folds


def confident_suspects(probs: np.ndarray, labels: np.ndarray, n_classes: int):
    """Confident-learning suspects → ``(indices best first, suggested classes, scores, thresholds)``."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.int64)
    thresholds = np.array([probs[labels == j, j].mean() if np.any(labels == j) else 1.0
                           for j in range(n_classes)])
    above = probs >= thresholds[None, :] - 1e-12
    given_p = probs[np.arange(len(labels)), labels]
    above_given = above[np.arange(len(labels)), labels]
    other = np.where(above, probs, -1.0)
    other[np.arange(len(labels)), labels] = -1.0
    suggested = other.argmax(1)
    has_other = other.max(1) >= 0
    is_suspect = has_other & ~above_given
    scores = probs[np.arange(len(labels)), suggested] - given_p
    idx = np.flatnonzero(is_suspect)
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx, suggested[idx], scores[idx], thresholds


def fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-3, steps: int = 300,
                lr: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (full-batch Adam, L2) on standardised features → (W, b)."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    w = rng.normal(0, 0.01, (d, n_classes))
    b = np.zeros(n_classes)
    onehot = np.eye(n_classes)[y]
    counts = np.maximum(onehot.sum(0), 1)
    weight = (n / (n_classes * counts))[y][:, None]  # balanced: a big class does not drown a small one
    params = [w, b]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        z = x @ w + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = weight * (p - onehot) / n
        grads = [x.T @ g + l2 * w, g.sum(0)]
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad * grad
            param -= lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
    return w, b


def softmax_predict(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = x @ w + b
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def normalise_rows(e: np.ndarray) -> np.ndarray:
    """Centre each row and scale it to length 1, so a dot product is a cosine similarity."""
    e = np.asarray(e, np.float32)
    e = e - e.mean(1, keepdims=True)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-8)


def nearest_by_class(emb: np.ndarray, labels: np.ndarray, rows: np.ndarray, n_classes: int,
                     k: int = NEIGHBOURS) -> list[list[list[int]]]:
    """For each row in ``rows``: per class, the indices of its ``k`` nearest images of that class (not itself)."""
    out = []
    for i in rows:
        sim = emb @ emb[i]
        sim[i] = -np.inf
        per_class = []
        for c in range(n_classes):
            idx = np.flatnonzero(labels == c)
            idx = idx[np.argsort(-sim[idx], kind="stable")[:k]]
            per_class.append([int(j) for j in idx if np.isfinite(sim[j])])
        out.append(per_class)
    return out


def near_duplicate_pairs(emb: np.ndarray, threshold: float, *, block: int = 1024,
                         limit: int = MAX_DUPLICATES * 4, cancel: CancelToken | None = None):
    """Pairs ``(i, j, similarity)`` with ``i < j`` and cosine similarity ≥ ``threshold``, most similar first."""
    pairs: list[tuple[int, int, float]] = []
    n = len(emb)
    for start in range(0, n, block):
        raise_if_cancelled(cancel)
        sim = emb[start:start + block] @ emb.T
        rows, cols = np.nonzero(sim >= threshold)
        keep = cols > rows + start
        for r, c in zip(rows[keep], cols[keep], strict=True):
            pairs.append((int(r + start), int(c), float(sim[r, c])))
        if len(pairs) > limit * 4:  # a folder of near-identical images: keep the closest only
            pairs.sort(key=lambda p: -p[2])
            del pairs[limit:]
    pairs.sort(key=lambda p: -p[2])
    return pairs[:limit]


# ---------------------------------------------------------------------------- images → arrays


def _load_all(records, image_size: int, resize: str, batch_size: int, *, sink, cancel):
    """Decoded images of ``records`` and the record of each (unreadable ones left out): uint8
    ``(N, S, S, 3)`` for pictures, float32 ``(N, S, S, bands)`` raw values for multi-band tiles.

    Each image is paired with its record by the key the pipeline hands out with it, never by position.
    """

    skips = SkipLog()
    multiband = any(r.bands for r in records)
    dtype = np.float32 if multiband else np.uint8
    ds = make_dataset(records, image_size, batch_size, resize=resize, cache="none", skips=skips,
                      dtype="float32" if multiband else "uint8", with_keys=True)
    by_key = {os.fsencode(r.key): r for r in records}
    chunks, kept = [], []
    for x, _y, keys in ds:
        raise_if_cancelled(cancel)
        chunks.append(np.asarray(x, dtype))
        kept += [by_key[bytes(k)] for k in keys.numpy()]
        sink(ev.TaskProgress(task="Reading the images", done=min(len(kept), len(records)), total=len(records)))
    channels = max((r.bands for r in records), default=0) or 3
    images = np.concatenate(chunks) if chunks else np.zeros((0, image_size, image_size, channels), dtype)
    if len(kept) != len(records):
        raise DatasetError(f"{len(records) - len(kept)} image(s) could not be read for the label check.",
                           "Run the Data step's check and fix or remove the unreadable files first.")
    return images, kept


def _pixel_embedding(images: np.ndarray, side: int = 32) -> np.ndarray:
    """Standardised grey pixels at ``side``×``side`` (block means), one row per image."""
    n, s = images.shape[:2]
    grey = images.astype(np.float32).mean(-1)
    f = max(s // side, 1)
    cut = (s // f) * f
    grey = grey[:, :cut, :cut].reshape(n, cut // f, f, cut // f, f).mean((2, 4))
    return normalise_rows(grey.reshape(n, -1))


# ---------------------------------------------------------------------------- the finder


def find_label_issues(source, *, backbone: str | None = None, weights: str | None = None, folds: int = DEFAULT_FOLDS,
                      image_size: int | None = None, epochs: int = DEFAULT_FOLD_EPOCHS, batch_size: int = 32, resize: str = "stretch",
                      learning_rate: float = 3e-3, seed: int = 0, corrections="auto", val_fraction: float | None = None,
                      test_fraction: float | None = None, split_seed: int | None = None,
                      duplicate_similarity: float | None = None, neighbours: int = NEIGHBOURS,
                      method: str | None = None, sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> LabelIssues:
    """Find likely mislabelled images and near-duplicates in a dataset (see the module docstring).

    Parameters
    ----------
    source
        A dataset folder, a CSV manifest or a scanned :class:`~cnn_studio.data.records.DatasetIndex`;
        prepared with :func:`~cnn_studio.data.prepare.prepare` (so ``corrections`` are applied).
    backbone, weights
        Read by :func:`~cnn_studio.labels.checker.choose_checker` (the one weights parser): pretrained
        weights ("imagenet" by default for a pretrained backbone, or a file) use the frozen-feature
        path; ``small_cnn`` (weights none) trains a small CNN per fold for ``epochs`` epochs; a
        pretrained backbone with weights "none"/"random" is refused. ``backbone`` None:
        :func:`~cnn_studio.labels.checker.default_checker` (pretrained features when any load offline).
    folds
        K of the K-fold (at least 2).
    epochs
        Epochs per fold for the fold models (at least 1).
    method
        "features" or "fold_models" to choose the path yourself (default: by the weights).
    val_fraction, test_fraction, split_seed
        The split settings, only to say which part of the split each image and duplicate is in.
    duplicate_similarity
        Cosine similarity from which two images are near-duplicates (default per embedding kind,
        :data:`DUPLICATE_SIMILARITY`).

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
    check_settings(folds, epochs)
    checker = choose_checker(backbone, weights, method)
    spec = registry.get(checker.backbone)
    size = spec.image_size(image_size)
    prepared = prepare(source, val_fraction=VAL_FRACTION if val_fraction is None else val_fraction,
                       test_fraction=TEST_FRACTION if test_fraction is None else test_fraction,
                       seed=SEED if split_seed is None else split_seed, find_duplicates=False,
                       corrections=corrections, sink=sink, cancel=cancel)
    index = prepared.index
    n_classes = len(index.class_names)
    counts = index.counts()
    if n_classes < 2 or min(counts.values(), default=0) < 2:
        raise DatasetError("The label check needs at least two classes with two images or more each "
                           f"(this dataset: {', '.join(f'{k} {v}' for k, v in counts.items()) or 'no images'}).",
                           "Add images to the small classes, then run the check again.")
    part = {}
    if prepared.split is not None:
        for name in ("train", "val", "test"):
            part.update({r.key: name for r in prepared.split.subset(name)})

    sink(ev.StageChanged("label_issues", "Loading TensorFlow"))
    images, records = _load_all(list(index.records), size, resize, batch_size, sink=sink, cancel=cancel)
    # Multi-band tiles: the model takes every band, normalised by this dataset's statistics (as training does).
    bands = make_band_info(records, names=index.band_names) if index.bands else None
    labels = np.array([r.label for r in records], np.int64)
    k, fold_of = _folds(labels, [r.group or "" for r in records], folds, n_classes, seed)
    model = _Model(spec, n_classes, checker.weights.value, size, bands, batch_size, seed)
    if checker.features:
        probs, emb = _feature_probabilities(model, images, labels, fold_of, k, sink=sink, cancel=cancel)
    else:
        probs, emb = _fold_model_probabilities(model, images, labels, fold_of, k, epochs, learning_rate,
                                               sink=sink, cancel=cancel)
    kind = "features" if checker.features else "pixels"

    names = index.class_names
    paths = tuple(r.key for r in records)  # a slice of a volume is named path#slice=AXIS:INDEX
    check = judge_checker(labels, probs, names, features=checker.features, backbone_label=spec.label)
    idx, suggested, scores, thresholds = confident_suspects(probs, labels, n_classes)
    chosen, kept = _not_kept(idx, suggested, scores, paths, resolve(corrections, index.root))
    withheld = 0
    if not check["trusted"]:  # a checker no better than guessing accuses no one
        withheld, chosen = len(chosen), []
    near = nearest_by_class(emb, labels, np.array([c[0] for c in chosen], np.int64), n_classes, neighbours)
    suspects = tuple(
        Suspect(path=paths[i], given=names[labels[i]], suggested=names[s], score=round(sc, 6),
                given_probability=round(float(probs[i, labels[i]]), 6),
                suggested_probability=round(float(probs[i, s]), 6), split=part.get(paths[i], ""),
                neighbours={names[c]: tuple(paths[j] for j in nn[c]) for c in range(n_classes)})
        for (i, s, sc), nn in zip(chosen, near, strict=True))
    threshold = DUPLICATE_SIMILARITY[kind] if duplicate_similarity is None else duplicate_similarity
    duplicates = _duplicates(emb, threshold, labels, paths, names, part, cancel)
    return LabelIssues(root=str(index.root), class_names=tuple(names), backbone=spec.key,
                       method="features" if checker.features else "fold_models", folds=k, paths=paths,
                       labels=labels, probabilities=probs, thresholds=tuple(float(t) for t in thresholds),
                       suspects=suspects, duplicates=tuple(duplicates), kept=kept,
                       seconds=time.perf_counter() - t0, weights=checker.weights.value,
                       checker=checker.describe(), check=check, withheld=withheld)


def _folds(labels: np.ndarray, groups: list[str], folds: int, n_classes: int, seed: int) -> tuple[int, np.ndarray]:
    """K (no more than the largest class, nor than the groups) and the fold of each image."""
    k = int(min(folds, max(2, int(np.bincount(labels, minlength=n_classes).max()))))
    n_groups = len({g for g in groups if g}) + sum(1 for g in groups if not g)
    if any(groups):  # a patient's slices stay in one fold; there cannot be more folds than groups
        k = max(2, min(k, n_groups))
    return k, stratified_folds(labels, k, seed, groups=groups if n_groups >= 2 else None)


@dataclass(frozen=True)
class _Model:
    """What builds the checker's network (the same for both paths)."""

    spec: Any
    n_classes: int
    weights: str
    size: int
    bands: Any
    batch_size: int
    seed: int

    def build(self):
        return build_classifier(self.spec, self.n_classes, weights=self.weights, image_size=self.size,
                                bands=self.bands)


def _feature_probabilities(model: _Model, images, labels, fold_of, k: int, *, sink, cancel):
    """Frozen features computed once, a softmax regression per fold → (out-of-fold probabilities, embedding)."""
    sink(ev.StageChanged("label_issues", f"Building {model.spec.label}"))
    feature_model, _head = split_for_feature_cache(model.build())
    batches = ((images[i:i + model.batch_size].astype(np.float32), labels[i:i + model.batch_size])
               for i in range(0, len(images), model.batch_size))
    feats, _ = compute_features(feature_model, batches, count=len(images), task="Computing features", sink=sink,
                                cancel=cancel)  # the trainer's traced forward pass, with its progress
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    probs = np.zeros((len(images), model.n_classes), np.float64)
    for f in range(k):
        raise_if_cancelled(cancel)
        train, test = fold_of != f, fold_of == f
        w, b = fit_softmax(z[train], labels[train], model.n_classes, seed=model.seed + f)
        probs[test] = softmax_predict(z[test], w, b)
        sink(ev.TaskProgress(task=TASK, done=f + 1, total=k, detail=f"fold {f + 1} of {k}"))
    return probs, normalise_rows(feats)


def _fold_model_probabilities(model: _Model, images, labels, fold_of, k: int, epochs: int, learning_rate: float,
                              *, sink, cancel):
    """A network trained per fold on the other folds → (out-of-fold probabilities, pixel embedding).

    One model, traced once: each fold starts again from the same initial weights and a fresh optimizer
    state (rebuilding and re-tracing a model per fold cost ~5 s a fold on a CPU).
    """
    import keras

    from cnn_studio.training.callbacks import EventCallback

    keras.utils.set_random_seed(model.seed)
    net = model.build()
    optimizer = make_optimizer("adam", learning_rate)  # the trainer's optimizers
    net.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", jit_compile=False)
    optimizer.build(net.trainable_variables)
    start_weights = net.get_weights()
    start_state = [v.numpy() for v in optimizer.variables]
    probs = np.zeros((len(images), model.n_classes), np.float64)
    for f in range(k):
        raise_if_cancelled(cancel)
        sink(ev.TaskProgress(task=TASK, done=f, total=k, detail=f"training fold {f + 1} of {k}"))
        net.set_weights(start_weights)
        for var, value in zip(optimizer.variables, start_state, strict=True):
            var.assign(value)
        train, test = fold_of != f, fold_of == f
        # the trainer's callback: cancel between batches, a NaN/inf loss stops the fold; its epoch events
        # become this fold's progress line
        events = EventCallback(_fold_progress(sink, f, k, epochs), cancel, phase=f"fold {f + 1}",
                               epochs_total=epochs, batch_size=model.batch_size)
        net.fit(images[train], labels[train], epochs=epochs, batch_size=model.batch_size, verbose=0,
                shuffle=True, callbacks=[events])
        if events.diverged is not None:
            raise StudioError(f"The label check's network stopped learning in fold {f + 1}: "
                                  f"{events.diverged.describe()}.",
                                  "Use the pretrained checker (a backbone with ImageNet weights), or a lower "
                                  "learning rate.")
        raise_if_cancelled(cancel)
        probs[test] = net.predict(images[test], batch_size=model.batch_size, verbose=0)
    sink(ev.TaskProgress(task=TASK, done=k, total=k, detail="folds done"))
    return probs, _pixel_embedding(images)


def _fold_progress(sink: ev.EventSink, fold: int, folds: int, epochs: int) -> ev.EventSink:
    """A sink that turns a fold's epoch events into the label check's progress line (others pass through)."""

    def relay(event: object) -> None:
        if isinstance(event, ev.EpochEnded):
            sink(ev.TaskProgress(task=TASK, done=fold, total=folds,
                                 detail=f"training fold {fold + 1} of {folds}, epoch {event.epoch + 1} of {epochs}"))
        elif not isinstance(event, (ev.EpochStarted, ev.BatchEnded)):
            sink(event)

    return relay


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


def _duplicates(emb, threshold: float, labels, paths, names, part, cancel) -> list[NearDuplicate]:
    """Near-duplicate pairs with different labels or in different parts of the split, most similar first."""
    duplicates = []
    for i, j, sim in near_duplicate_pairs(emb, threshold, cancel=cancel):
        a, b = part.get(paths[i], ""), part.get(paths[j], "")
        if labels[i] != labels[j] or a != b:
            duplicates.append(NearDuplicate(paths[i], paths[j], names[labels[i]], names[labels[j]],
                                            round(sim, 6), a, b))
        if len(duplicates) >= MAX_DUPLICATES:
            break
    return duplicates


def write_json(issues: LabelIssues, path: str | Path) -> Path:
    """Save :meth:`LabelIssues.to_dict` atomically (the review queue and the CLI read the same file)."""

    return _write(Path(path), issues.to_dict())
