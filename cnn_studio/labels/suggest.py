"""Which images to label next: rank a folder of unlabelled images by what would teach the model most.

**Where the probabilities and features come from**

* ``run`` given: the run's own model. Its predictions give the uncertainty, the output of its
  ``pool`` layer (the pooled backbone features, :func:`~cnn_studio.backbones.classifier.split_for_feature_cache`)
  the feature space. The run's classes must be the dataset's.
* no run: a quick classifier on the labelled dataset (its corrections and earlier added labels
  applied, through :func:`~cnn_studio.data.prepare.prepare`): frozen ImageNet features of a
  pretrained backbone (MobileNetV2 when its weights load offline) — or, without any weights, the
  standardised grey pixels at 16×16 — and a softmax regression fitted on them
  (:func:`cnn_studio.labels.issue_maths.fit_softmax`). Pool images are not in the labelled set, so its
  predictions for them are honest ones.

**Strategies** (:data:`STRATEGIES`)

* ``margin``: smallest gap between the two best guesses first.
* ``entropy``: highest entropy of the probabilities first.
* ``margin+diversity`` (default): the ``CANDIDATES × n`` most uncertain by margin, then a greedy
  farthest-point (k-center) choice of ``n`` of them on L2-normalised features, starting with the
  most uncertain, so one batch does not hold 50 near-copies of one confusing picture; the batch is
  shown least sure first.
* ``random``: a seeded random order — the honest baseline (``bench/active_learning.py`` measures
  every strategy against it).

Images are read through the classifier's own reader (:func:`cnn_studio.predict.predictor.iter_image_batches`,
which pairs each result with its index), never assumed to arrive in order. Nothing is written
here; the labels a person gives go to :mod:`cnn_studio.labels.added_labels`. No Qt; TensorFlow only inside
the functions.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.backbones import registry
from cnn_studio.backbones.classifier import build_classifier, split_for_feature_cache
from cnn_studio.backbones.weights_store import offline_default
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import ConfigError, DatasetError
from cnn_studio.data.prepare import PrepareOptions, prepare
from cnn_studio.labels.added_labels import AddedLabels
from cnn_studio.labels.added_labels import default_path as added_labels_path
from cnn_studio.labels.corrections import norm_path
from cnn_studio.labels.issue_maths import fit_softmax, softmax_predict
from cnn_studio.predict.predictor import Classifier, expand_paths, iter_image_batches

STRATEGIES = {
    "margin+diversity": "the {k} images the model is least sure of (smallest gap between its two best guesses), "
                        "then the {n} of them most different from each other in its feature space, so the batch "
                        "is not near-copies",
    "margin": "the images with the smallest gap between the model's two best guesses",
    "entropy": "the images whose guesses are spread most evenly over the classes (highest entropy)",
    "random": "a random order: the honest baseline, no model judgement",
}
DEFAULT_STRATEGY = "margin+diversity"
DEFAULT_N = 50
CANDIDATES = 4
"""margin+diversity looks at the ``CANDIDATES × n`` most uncertain images (chosen with bench/active_learning.py)."""
PIXELS = "pixels"
TASK = "Ranking images to label"
TOP = 3


@dataclass(frozen=True)
class Suggestion:
    """One pool image to label: its rank, the model's best guesses and how unsure it is."""

    path: str
    rank: int
    top: tuple[tuple[str, float], ...]
    margin: float  # p(best) - p(second): small = unsure
    entropy: float  # in nats

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rank": self.rank, "top": [[c, round(p, 6)] for c, p in self.top],
                "margin": round(self.margin, 6), "entropy": round(self.entropy, 6)}


@dataclass(frozen=True)
class Suggestions:
    """The ranked images to label, with which strategy and model chose them and why (:attr:`why`)."""

    root: str
    pool: str
    class_names: tuple[str, ...]
    strategy: str
    model: str  # what gave the probabilities and features, in words
    items: tuple[Suggestion, ...]
    pool_size: int  # unlabelled images considered
    labelled: int  # labelled images the quick classifier learned from (0 with a run)
    already_labelled: int = 0  # pool images left out: labelled in CNN Studio before, or in the dataset
    unreadable: tuple[tuple[str, str], ...] = ()  # (path, reason)
    labels_file: str = ""
    seconds: float = 0.0
    candidates: int = 0  # margin+diversity: how many uncertain images it chose among
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def why(self) -> str:
        """One line: the strategy used and why these images."""
        rule = STRATEGIES[self.strategy].format(k=self.candidates, n=len(self.items))
        default = " (the default)" if self.strategy == DEFAULT_STRATEGY else ""
        return f"Strategy {self.strategy}{default}: {rule}. Model: {self.model}."

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "pool": self.pool, "classes": list(self.class_names), "strategy": self.strategy,
                "why": self.why, "model": self.model, "pool_size": self.pool_size, "labelled": self.labelled,
                "already_labelled": self.already_labelled, "labels_file": self.labels_file,
                "seconds": round(self.seconds, 2), "suggestions": [s.to_dict() for s in self.items],
                "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable]}


# ---------------------------------------------------------------------------- the pure maths


def margins(probs: np.ndarray) -> np.ndarray:
    """``p(best) - p(second best)`` per row (small = unsure)."""
    p = np.sort(np.asarray(probs, np.float64), axis=1)
    return p[:, -1] - p[:, -2] if p.shape[1] > 1 else np.ones(len(p))


def entropies(probs: np.ndarray) -> np.ndarray:
    """Entropy of each row, in nats."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(1)


def farthest_points(feats: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """Greedy k-center: ``n`` of ``candidates`` (indices into ``feats``), the first one first, then each time
    the candidate farthest (L2, on L2-normalised rows) from every one chosen so far."""
    f = np.asarray(feats, np.float64)[candidates]
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    chosen = [0]
    dist = np.linalg.norm(f - f[0], axis=1)
    for _ in range(1, min(n, len(candidates))):
        dist[chosen] = -1.0
        nxt = int(np.argmax(dist))  # ties: the earlier (more uncertain) candidate
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(f - f[nxt], axis=1))
    return np.asarray(candidates)[chosen]


def rank(probs: np.ndarray, feats: np.ndarray | None, n: int, strategy: str = DEFAULT_STRATEGY, *,
         seed: int = 0, candidates: int = CANDIDATES) -> np.ndarray:
    """Indices of the ``n`` pool images to label first, best first, by ``strategy`` (see the module docstring)."""
    check_strategy(strategy)
    total = len(probs)
    n = max(0, min(int(n), total))
    if strategy == "random":
        return np.random.default_rng(seed).permutation(total)[:n]
    if strategy == "entropy":
        return np.argsort(-entropies(probs), kind="stable")[:n]
    by_margin = np.argsort(margins(probs), kind="stable")
    if strategy == "margin" or feats is None or n == 0:
        return by_margin[:n]
    chosen = farthest_points(feats, by_margin[:min(total, max(n, candidates * n))], n)
    return chosen[np.argsort(margins(probs)[chosen], kind="stable")]  # the chosen set, least sure first


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"Strategy: expected one of {', '.join(STRATEGIES)}, received {strategy!r}.",
                          f"Leave it out for {DEFAULT_STRATEGY}, or use random for the baseline.")


# ---------------------------------------------------------------------------- images → features


def pixel_features(images: np.ndarray, side: int = 16) -> np.ndarray:
    """Grey block means at ``side``×``side``, one row per image (the features when no weights are here)."""
    n, s = images.shape[:2]
    grey = np.asarray(images, np.float32).mean(-1)
    f = max(s // side, 1)
    cut = (s // f) * f
    return grey[:, :cut, :cut].reshape(n, cut // f, f, cut // f, f).mean((2, 4)).reshape(n, -1)


@dataclass(frozen=True)
class ImageReading:
    """How images are read for an embedder: the square side, the resize policy and images per batch."""

    image_size: int
    resize: str = "stretch"
    batch_size: int = 32


def embed(keys, embedder, reading: ImageReading, *, task: str = TASK, sink: ev.EventSink = ev.null_sink,
          cancel: CancelToken | None = None):
    """Read ``keys`` as ``reading`` says and run ``embedder(images) -> tuple of arrays`` per batch.

    Returns ``(rows, outputs, errors)``: the indices of the images read, each output stacked in that
    order, and ``{index: reason}`` for the others (each result is paired with its index, never by position).
    """
    rows, parts, errors = [], [], {}
    for ok, images, bad in iter_image_batches(list(keys), reading.image_size, reading.resize, reading.batch_size):
        raise_if_cancelled(cancel)
        errors.update(bad)
        if ok:
            rows += ok
            parts.append(embedder(images))
        sink(ev.TaskProgress(task, len(rows) + len(errors), len(keys)))
    outputs = tuple(np.concatenate(col) for col in zip(*parts, strict=True)) if parts else ()
    return np.asarray(rows, np.int64), outputs, errors


def feature_embedder(backbone: str, weights: str | None, image_size: int | None):
    """``(embedder, size, words)`` for the quick classifier: a frozen pretrained backbone's pooled features,
    or :data:`PIXELS` (grey pixels, no model)."""
    if backbone == PIXELS:
        return (lambda images: (pixel_features(images),)), int(image_size or 32), "grey pixels at 16×16"
    spec = registry.get(backbone)
    size = spec.image_size(image_size)
    model = build_classifier(spec, 2, weights=weights or "imagenet", image_size=size)
    feature_model, _head = split_for_feature_cache(model)

    def embedder(images):
        with warnings.catch_warnings():  # Keras: "the structure of inputs doesn't match" (a bare tensor)
            warnings.filterwarnings("ignore", message="The structure of `inputs`", category=UserWarning)
            return (np.asarray(feature_model(images, training=False), np.float32),)

    return embedder, size, f"frozen {spec.label} features ({weights or 'imagenet'} weights)"


def auto_backbone() -> tuple[str, str | None]:
    """The default backbone with its ImageNet weights when they load offline (never a download), else :data:`PIXELS`."""
    try:
        backbone, weights = offline_default()
        if backbone == registry.DEFAULT_BACKBONE:
            return backbone, weights
    except Exception:  # noqa: BLE001 - no weights store: pixels need none
        pass
    return PIXELS, None


# ---------------------------------------------------------------------------- the pool


def pool_keys(pool: str | os.PathLike[str], index, added: AddedLabels) -> tuple[list[str], int, list]:
    """The pool's image files not labelled yet → ``(keys, how many were left out, [(path, why skipped)])``."""
    if not Path(pool).expanduser().is_dir():
        raise DatasetError(f"The pool {pool} is not a folder.",
                           "Give the folder of unlabelled images with --pool FOLDER.")
    skipped: list[tuple[str, str]] = []
    files = expand_paths([pool], skipped)
    known = {norm_path(r.path) for r in index.records}
    keys = [str(f) for f in files if norm_path(f) not in known and f not in added]
    if not keys:
        where = "no image files" if not files else "only images that already have a label"
        raise DatasetError(f"The pool {pool} holds {where}: there is nothing to suggest.",
                           "Point --pool at a folder of images that are not in the dataset yet.")
    return keys, len(files) - len(keys), skipped


@dataclass(frozen=True)
class SuggestOptions:
    """How :func:`suggest` ranks the pool.

    ``run``: a run folder whose model gives probabilities and features (default: a quick classifier).
    ``n``: how many images to suggest. ``strategy``: one of :data:`STRATEGIES`; ``seed`` for its draws
    and the quick classifier's fit; ``candidates``: the default strategy's shortlist, per image suggested.
    ``backbone``, ``weights``, ``image_size``: the quick classifier's features ("pixels" for grey pixels;
    default :func:`auto_backbone`), ignored with ``run``. ``batch_size``: images read per batch.
    """

    run: str | os.PathLike[str] | None = None
    n: int = DEFAULT_N
    strategy: str = DEFAULT_STRATEGY
    seed: int = 0
    backbone: str | None = None
    weights: str | None = None
    image_size: int | None = None
    candidates: int = CANDIDATES
    batch_size: int = 32


def suggest(data, pool, options: SuggestOptions | None = None, *, sink: ev.EventSink = ev.null_sink,
            cancel: CancelToken | None = None, **fields: Any) -> Suggestions:
    """Rank the unlabelled images of ``pool`` for labelling (see the module docstring).

    Parameters
    ----------
    data : the labelled dataset (folder or CSV manifest); its corrections and added labels are applied.
    pool : a folder of unlabelled images (searched recursively; images already labelled are left out).
    options : :class:`SuggestOptions`; any of its fields may be given as keywords (``fields``) instead.

    Raises
    ------
    DatasetError : no pool images, too few labelled images, a run of other classes.
    ConfigError : an unknown strategy or ``n`` < 1.
    Cancelled : ``cancel`` was set (checked per batch).
    """
    t0 = time.perf_counter()
    o = replace(options or SuggestOptions(), **fields)
    n, strategy = o.n, o.strategy
    check_strategy(strategy)
    if int(n) < 1:
        raise ConfigError(f"Number of images: expected at least 1, received {n}.", "For example --n 50.")
    prepared = prepare(data, PrepareOptions(find_duplicates=False), sink=sink, cancel=cancel)
    index = prepared.index
    added = AddedLabels.for_dataset(index.root)
    keys, left_out, skipped = pool_keys(pool, index, added)
    sink(ev.StageChanged("suggest", "Reading the images"))
    source = _with_run if o.run is not None else _with_quick_classifier
    probs, feats, rows, errors, words, labelled = source(index, keys, o, sink, cancel)
    order = rank(probs, feats, n, strategy, seed=o.seed, candidates=o.candidates)
    items = tuple(_suggestion(keys[rows[i]], r + 1, probs[i], index.class_names) for r, i in enumerate(order))
    unreadable = tuple((keys[i], why) for i, why in sorted(errors.items())) + tuple(skipped)
    return Suggestions(root=str(index.root), pool=str(pool), class_names=tuple(index.class_names),
                       strategy=strategy, model=words, items=items, pool_size=len(rows), labelled=labelled,
                       already_labelled=left_out, unreadable=unreadable,
                       labels_file=str(added.path or added_labels_path(index.root)),
                       seconds=time.perf_counter() - t0,
                       candidates=min(len(rows), max(n, o.candidates * n)) if strategy == DEFAULT_STRATEGY else 0)


def _suggestion(path: str, rank_: int, p: np.ndarray, names) -> Suggestion:
    order = np.argsort(-p, kind="stable")[:TOP]
    return Suggestion(path, rank_, tuple((names[j], float(p[j])) for j in order), float(margins(p[None])[0]),
                      float(entropies(p[None])[0]))


def _with_run(index, keys, o: SuggestOptions, sink, cancel):
    """The run's predictions and pooled features for the pool images."""
    import keras

    run = o.run
    clf = Classifier.load(run)
    if set(clf.class_names) != set(index.class_names):
        raise DatasetError(f"The run {run} was trained on the classes {', '.join(clf.class_names)}, but the dataset "
                           f"has {', '.join(index.class_names)}.",
                           "Use a run trained on this dataset, or leave --run out for a quick classifier.")
    both = keras.Model(clf.model.inputs, [clf.model.get_layer("pool").output, clf.model.outputs[0]])
    to_dataset = [clf.class_names.index(c) for c in index.class_names]

    def embedder(images):
        feats, probs = both.predict_on_batch(images)
        return np.asarray(feats, np.float32), np.asarray(probs, np.float64)[:, to_dataset]

    rows, out, errors = embed(keys, embedder, ImageReading(clf.image_size, clf.resize, o.batch_size), sink=sink,
                              cancel=cancel)
    _require_some(rows, keys)
    return out[1], out[0], rows, errors, f"the run {Path(run).name} (its predictions and pooled features)", 0


def _with_quick_classifier(index, keys, o: SuggestOptions, sink, cancel):
    """A softmax regression on the labelled images' features, applied to the pool's."""
    backbone, weights = o.backbone, o.weights
    if backbone is None:  # multi-band tiles: raw band values, no RGB backbone takes them as they are
        backbone, weights = auto_backbone() if not index.bands else (PIXELS, None)
    counts = index.counts()
    if len(counts) < 2 or min(counts.values(), default=0) < 1:
        raise DatasetError("Suggestions need a dataset with at least two classes and an image in each "
                           f"(this one: {', '.join(f'{k} {v}' for k, v in counts.items()) or 'no images'}).",
                           "Label a few images of each class first (one folder per class).")
    embedder, size, words = feature_embedder(backbone, weights, o.image_size)
    reading = ImageReading(size, batch_size=o.batch_size)
    labelled = [r.key for r in index.records]
    lrows, (lfeats,), _bad = embed(labelled, embedder, reading, task="Reading the labelled images", sink=sink,
                                   cancel=cancel)
    y = np.array([index.records[i].label for i in lrows], np.int64)
    rows, (feats,), errors = embed(keys, embedder, reading, sink=sink, cancel=cancel)
    _require_some(rows, keys)
    mu, sd = lfeats.mean(0), lfeats.std(0) + 1e-6
    w, b = fit_softmax((lfeats - mu) / sd, y, len(index.class_names), seed=o.seed)
    probs = softmax_predict((feats - mu) / sd, w, b)
    words = f"a quick classifier on {words} of the {len(y)} labelled images"
    return probs, feats, rows, errors, words, len(y)


def _require_some(rows, keys) -> None:
    if not len(rows):
        raise DatasetError(f"None of the {len(keys)} pool images could be read.",
                           "Check the files (cnn-studio predict FOLDER lists why each one cannot be read).")
