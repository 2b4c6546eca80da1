"""How sure a number is: 95% intervals for evaluation figures, and when a figure is too thin to give.

Every figure CNN Studio reports about a model (accuracy, per-class precision/recall/F1, ROC AUC,
top-k accuracy) travels as an *estimate*: a plain dict

    {"value": 0.75, "low": 0.41, "high": 0.93, "n": 8, "method": "wilson", "verdict": None}

``n`` is the number of images behind it; ``low``/``high`` the 95% interval; ``verdict`` is
:data:`TOO_FEW` when there are too few images for the figure to mean anything, and then displays
show that phrase instead of the value (JSON keeps the value for the record).

Methods (numpy only):

* proportions (accuracy, precision, recall, top-k accuracy): the Wilson score interval
  (Wilson 1927; Brown, Cai & DasGupta 2001), which stays inside [0, 1] and behaves at 0 and 1;
* ROC AUC and F1: a percentile bootstrap over the images (1000 resamples, seeded, so the same
  predictions always give the same interval).

The rule for "too few images to tell" (:func:`enough`), one rule for every figure: each group of
images a figure is computed from needs at least :data:`MIN_IMAGES` = 10 images. Below 10 the 95%
Wilson interval of a 50% figure is wider than ±0.26, i.e. it spans more than half of the 0–1
range, so the figure cannot tell a useful model from a coin. So:

* a proportion (accuracy, precision, recall) needs 10 images in its denominator;
* F1 combines precision and recall, so it needs what both need: 10 images of the class and 10
  predicted as it;
* a one-vs-rest ROC AUC needs 10 images of the class and 10 of the other classes
  (:data:`MIN_AUC_PER_SIDE`; the macro AUC: every class it averages);
* a balanced accuracy (the mean of the classes' recalls) needs 10 of every class it averages.

A bootstrap interval that collapses to a point (every resample gives the same figure, as a perfect
score does) is not certainty: it only says that no resample of these few items could differ.
Then the figure gets the Wilson interval of the same proportion over its smallest group instead
(:func:`not_certain`), so "1.00" on 12 images reads "1.00 (95% CI 0.74–1.00)", never "1.00–1.00".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

LEVEL = 0.95
Z95 = 1.959963984540054  # the 97.5% point of the standard normal
MIN_IMAGES = 10
MIN_AUC_PER_SIDE = MIN_IMAGES  # the one rule: each side of the AUC is a group of its own
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20240515
TOO_FEW = "too few images to tell"

Estimate = dict[str, Any]


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n`` (``(0.0, 1.0)`` when ``n`` is 0).

    Examples
    --------
    >>> [round(v, 4) for v in wilson(81, 263)]  # Wilson's own example, Newcombe (1998) table
    [0.2553, 0.3662]
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def enough(n: int, minimum: int = MIN_IMAGES) -> bool:
    """True when ``n`` images are enough to report a figure (see the module's rule)."""
    return n >= minimum


def not_certain(value: float | None, low: float | None, high: float | None,
                n: int) -> tuple[float | None, float | None]:
    """A bootstrap interval made honest: when it collapsed to a point (``high - low`` below 1e-9, as for
    a perfect score), the Wilson interval of ``value`` as a proportion of ``n`` (the figure's
    smallest group) joined with it; otherwise unchanged.

    >>> [round(v, 3) for v in not_certain(1.0, 1.0, 1.0, 12)]
    [0.758, 1.0]
    """
    if value is None or low is None or high is None or high - low >= 1e-9 or n <= 0:
        return low, high
    w_low, w_high = wilson(round(value * n), n)
    return min(low, w_low), max(high, w_high)


def proportion(successes: int, n: int) -> Estimate:
    """An estimate of ``successes / n`` with its Wilson interval and verdict."""
    low, high = wilson(successes, n)
    return {"value": successes / n if n else None, "low": low, "high": high, "n": int(n), "method": "wilson",
            "verdict": None if enough(n) else TOO_FEW}


def bootstrap(statistic: Callable[[np.ndarray], float | None], n: int, *, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n`` items (resampled with replacement).

    Resamples where the statistic is undefined (None) are left out; ``(None, None)`` when fewer
    than half of them are defined.
    """
    if n <= 0:
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        v = statistic(rng.integers(0, n, n))
        if v is not None and math.isfinite(v):
            values.append(v)
    if len(values) < resamples / 2:
        return None, None
    lo, hi = np.percentile(values, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return float(lo), float(hi)


def auc_binary(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` for a boolean ``positive`` array (Mann–Whitney U, ties averaged); None if undefined."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auc_estimate(positive: np.ndarray, scores: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> Estimate:
    """One-vs-rest ROC AUC with a seeded bootstrap interval; ``n`` is the number of images."""
    positive = np.asarray(positive, bool)
    scores = np.asarray(scores, np.float64)
    value = auc_binary(positive, scores)
    n_pos = int(positive.sum())
    low, high = bootstrap(lambda idx: auc_binary(positive[idx], scores[idx]), len(positive),
                          resamples=resamples, seed=seed) if value is not None else (None, None)
    smaller = min(n_pos, len(positive) - n_pos)
    low, high = not_certain(value, low, high, smaller)
    ok = enough(smaller, MIN_AUC_PER_SIDE)
    return {"value": value, "low": low, "high": high, "n": len(positive), "positives": n_pos,
            "method": "bootstrap", "verdict": None if ok and value is not None else TOO_FEW}


def _resamples_for(n: int, classes: int) -> int:
    """Fewer bootstrap resamples for big sets, so evaluation stays in seconds (≥ 200 always)."""
    work = max(1, n * max(1, classes))
    return int(max(200, min(BOOTSTRAP_RESAMPLES, 2e7 // work)))


def metric_intervals(y: np.ndarray, p: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Every estimate of an evaluation: ``accuracy``, ``top_k_accuracy``, ``per_class`` (precision,
    recall, f1 per class name) and ``roc_auc`` (per class and "macro"), plus the rule used."""
    y = np.asarray(y, np.int64)
    p = np.asarray(p, np.float64)
    n, c = len(y), len(class_names)
    pred = p.argmax(axis=1) if n else np.zeros(0, np.int64)
    out: dict[str, Any] = {"level": LEVEL, "min_images": MIN_IMAGES, "min_auc_per_side": MIN_AUC_PER_SIDE,
                           "rule": f"a figure needs {MIN_IMAGES} images in each group it is computed from (F1: the "
                                   "class and those predicted as it; ROC AUC: the class and the rest)",
                           "accuracy": proportion(int((pred == y).sum()), n)}
    top_k: dict[str, Estimate] = {}
    if n:
        ranked = np.argsort(-p, axis=1, kind="stable")
        for k in range(2, min(5, c - 1) + 1):
            top_k[str(k)] = proportion(int((ranked[:, :k] == y[:, None]).any(axis=1).sum()), n)
    out["top_k_accuracy"] = top_k
    resamples = _resamples_for(n, c)
    out["per_class"] = {name: _class_estimates(y == i, pred == i, resamples) for i, name in enumerate(class_names)}
    out["roc_auc"] = _roc_estimates(y, p, class_names, resamples)
    return out


def _class_estimates(t: np.ndarray, q: np.ndarray, resamples: int) -> dict[str, Estimate]:
    """Precision, recall and F1 of one class (``t``: images of it; ``q``: images predicted as it)."""
    tp = int((t & q).sum())
    involved = int((t | q).sum())

    def f1_of(idx):
        a, b = t[idx], q[idx]
        denom = a.sum() + b.sum()
        return float(2 * (a & b).sum() / denom) if denom else None

    f1 = 2 * tp / (int(t.sum()) + int(q.sum())) if involved else 0.0
    lo, hi = bootstrap(f1_of, len(t), resamples=resamples) if involved else (None, None)
    precision, recall = proportion(tp, int(q.sum())), proportion(tp, int(t.sum()))
    smaller = min(int(q.sum()), int(t.sum()))
    lo, hi = not_certain(f1, lo, hi, smaller)
    return {"precision": precision, "recall": recall,
            "f1": {"value": f1, "low": lo, "high": hi, "n": involved, "method": "bootstrap",
                   "verdict": precision["verdict"] or recall["verdict"]}}  # F1 needs what both need


def _roc_estimates(y: np.ndarray, p: np.ndarray, class_names: list[str], resamples: int) -> dict[str, Estimate]:
    """One-vs-rest ROC AUC per class, and their mean over the defined ones as "macro"."""
    n = len(y)
    roc: dict[str, Estimate] = {}
    for i, name in enumerate(class_names):
        roc[name] = auc_estimate(y == i, p[:, i], resamples=resamples) if n else {
            "value": None, "low": None, "high": None, "n": 0, "positives": 0, "method": "bootstrap",
            "verdict": TOO_FEW}
    defined = [i for i, name in enumerate(class_names) if roc[name]["value"] is not None]
    if not defined:
        roc["macro"] = {"value": None, "low": None, "high": None, "n": n, "method": "bootstrap", "verdict": TOO_FEW}
        return roc

    def macro(idx):
        vals = [auc_binary(y[idx] == i, p[idx, i]) for i in defined]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if len(vals) == len(defined) else None

    lo, hi = bootstrap(macro, n, resamples=max(200, resamples // max(1, len(defined))))
    ok = all(roc[class_names[i]]["verdict"] is None for i in defined)
    value = float(np.mean([roc[class_names[i]]["value"] for i in defined]))
    smallest = min(min(roc[class_names[i]]["positives"], n - roc[class_names[i]]["positives"]) for i in defined)
    lo, hi = not_certain(value, lo, hi, smallest)
    roc["macro"] = {"value": value, "low": lo,
                    "high": hi, "n": n, "method": "bootstrap", "verdict": None if ok else TOO_FEW}
    return roc


def balanced_accuracy(y: np.ndarray, pred: np.ndarray, classes: int) -> Estimate:
    """The mean recall over the classes present in ``y``, with a seeded bootstrap interval; too few
    when any class it averages has fewer than :data:`MIN_IMAGES` items (each recall is a proportion)."""
    y = np.asarray(y, np.int64)
    pred = np.asarray(pred, np.int64)
    present = [k for k in range(classes) if (y == k).any()]
    if not present:
        return {"value": None, "low": None, "high": None, "n": 0, "method": "bootstrap", "verdict": TOO_FEW}

    def of(idx: np.ndarray) -> float | None:
        a, b = y[idx], pred[idx]
        recalls = [float((b[a == k] == k).mean()) for k in present if (a == k).any()]
        return float(np.mean(recalls)) if len(recalls) == len(present) else None

    value = of(np.arange(len(y)))
    smallest = min(int((y == k).sum()) for k in present)
    low, high = not_certain(value, *bootstrap(of, len(y), resamples=_resamples_for(len(y), classes)), smallest)
    return {"value": value, "low": low, "high": high, "n": int(len(y)), "method": "bootstrap",
            "verdict": None if enough(smallest) else TOO_FEW}


def describe(est: Estimate | None, digits: int = 3, unit: tuple[str, str] = ("image", "images")) -> str:
    """An estimate for people: ``"0.750 (95% CI 0.409–0.929, 8 images)"``, or the verdict when too few.

    ``unit`` names what was counted (``("study", "studies")`` for study-level figures). An interval
    that is a single point (an older metrics.json, before :func:`not_certain`) is not shown as one:
    the figure then says that no interval could be computed.

    >>> describe(proportion(3, 4))
    'too few images to tell (4 images)'
    >>> describe({"value": 1.0, "low": 1.0, "high": 1.0, "n": 16}, 2)
    '1.00 (no 95% interval could be computed, 16 images)'
    """
    if not est:
        return "-"
    n = est.get("n", 0)
    images = f"{n} {unit[0] if n == 1 else unit[1]}"
    if est.get("verdict"):
        return f"{est['verdict'].replace('images', unit[1])} ({images})"
    if est.get("value") is None:
        return f"undefined ({images})"
    low, high = est.get("low"), est.get("high")
    if low is not None and high is not None and high - low < 1e-9:
        ci = "no 95% interval could be computed, "
    else:
        ci = f"95% CI {low:.{digits}f}–{high:.{digits}f}, " if low is not None and high is not None else ""
    return f"{est['value']:.{digits}f} ({ci}{images})"


def compare_with_guessing(y: np.ndarray, pred: np.ndarray, class_names: list[str], *,
                          unit: str = "images") -> dict[str, Any]:
    """Is the model better than guessing, and than always answering the largest class?

    Returns ``{verdict, accuracy, low, high, n, chance, majority, majority_class, message, hint}``:
    ``verdict`` is "better" when the 95% interval's lower end is above both baselines,
    "not_better" when the accuracy itself is not above them, and "unproven" in between (the
    images are too few to tell the model from a guess). ``unit`` names what ``y`` counts ("studies"
    for study-level answers).
    """
    y = np.asarray(y, np.int64)
    pred = np.asarray(pred, np.int64)
    n, c = len(y), max(1, len(class_names))
    counts = np.bincount(y, minlength=c) if n else np.zeros(c, np.int64)
    big = int(counts.argmax())
    majority = float(counts[big] / n) if n else 0.0
    chance = 1.0 / c
    baseline = max(chance, majority)
    correct = int((pred == y).sum())
    acc = correct / n if n else 0.0
    low, high = wilson(correct, n)
    what = (f"guessing ({chance:.0%} with {c} classes)" if majority <= chance + 1e-9 else
            f"always answering the largest class, {class_names[big]!r} ({majority:.0%} of these {unit})")
    try_this = ("Try: more images per class (tens at least), pretrained weights instead of training from scratch, "
                "more epochs or a higher learning rate, and check that the folders' labels are right.")
    if acc <= baseline + 1e-9:
        verdict = "not_better"
        message = (f"The model is not better than {what}: accuracy {acc:.0%} on {n} validation {unit}.")
    elif low <= baseline:
        verdict = "unproven"
        message = (f"{n} {unit} cannot show that the model beats {what}: accuracy {acc:.0%}, "
                   f"95% interval {low:.0%}–{high:.0%}.")
        try_this = (f"Try: more {unit} (especially for validation) so the result can be told from a guess; "
                    "do not rely on this model yet.")
    else:
        verdict, message, try_this = "better", f"Better than {what} (accuracy {acc:.0%}, 95% interval from {low:.0%}).", ""
    return {"verdict": verdict, "accuracy": acc, "low": low, "high": high, "n": n, "chance": chance,
            "majority": majority, "majority_class": class_names[big] if class_names else "",
            "message": message, "hint": try_this}
