"""The label check's pure maths (NumPy only): stratified, group-aware folds; confident learning's suspects;
a softmax regression; cosine neighbours and near-duplicate pairs; the pixel embedding.

Used by the finder (:mod:`cnn_studio.labels.issues`, :mod:`cnn_studio.labels.out_of_fold`) and by the
suggestion queue (:mod:`cnn_studio.labels.suggest`, the softmax regression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_studio.core.cancel import CancelToken, raise_if_cancelled

NEIGHBOURS = 3
"""Nearest images of each class shown beside a suspect."""
MAX_DUPLICATES = 500
"""Most near-duplicate pairs a check reports."""


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


@dataclass(frozen=True)
class SoftmaxFit:
    """How :func:`fit_softmax` fits: L2 penalty, full-batch Adam steps and learning rate."""

    l2: float = 1e-3
    steps: int = 300
    lr: float = 0.1


def fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int = 0,
                fit: SoftmaxFit = SoftmaxFit()) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (full-batch Adam, L2) on standardised features → (W, b)."""
    l2, steps, lr = fit.l2, fit.steps, fit.lr
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


def pixel_embedding(images: np.ndarray, side: int = 32) -> np.ndarray:
    """Standardised grey pixels at ``side``×``side`` (block means), one row per image."""
    n, s = images.shape[:2]
    grey = images.astype(np.float32).mean(-1)
    f = max(s // side, 1)
    cut = (s // f) * f
    grey = grey[:, :cut, :cut].reshape(n, cut // f, f, cut // f, f).mean((2, 4))
    return normalise_rows(grey.reshape(n, -1))

