"""Simulate labelling with each suggestion strategy against random order, on a dataset with known labels.

The dataset: scikit-learn's handwritten digits (1,797 real scans of 10 digits written by 43 people,
shipped inside the scikit-learn package, no download; the bundled sample is a subset of it), written
as 32×32 PNG files as ``tools/make_sample_dataset.py`` does, so the app's own reader and feature
code read them (:func:`cnn_studio.labels.suggest.embed`, :func:`cnn_studio.labels.suggest.feature_embedder`).

Per seed (3 by default): 30 % of the images are held out as the test set; the rest is the pool,
whose labels are hidden. Start from ``--start`` labelled images per class; each round fit the app's
quick classifier (:func:`cnn_studio.labels.issue_maths.fit_softmax` on standardised features, as
``suggest`` does without a run), measure its accuracy on the test set, then "label" the next
``--batch`` images chosen by the strategy (:func:`cnn_studio.labels.suggest.rank`, the app's code) —
margin, entropy, margin+diversity, and random order, the baseline. Reported per strategy:

* accuracy against the number of labels, the mean over seeds with the 95 % Wilson interval of the
  pooled test predictions (``intervals.py``) and the seeds' range;
* the labels each strategy needs to reach 95 % of the accuracy of all pool labels (per seed, and
  for the mean curve), and that figure for random order, whether or not a strategy beats it.

Features (``--features``): ``pixels`` (grey 16×16, what the app uses without any weights) and, when
the weights file is here, ``vgg16`` (frozen ImageNet VGG16 features; ``--weights FILE``, default the
test weights in ``~/.cache/cnn-studio-test-weights``).

Run::

    python bench/active_learning.py                          # pixels and vgg16, 3 seeds
    python bench/active_learning.py --features pixels --batch 10 --budget 200
    python bench/active_learning.py --candidates 2 4 8       # margin+diversity's candidate factor

Needs scikit-learn for the data (``pip install scikit-learn``; the app does not).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
STRATEGY_ORDER = ("random", "margin", "entropy", "margin+diversity")
TEST_WEIGHTS = Path.home() / ".cache" / "cnn-studio-test-weights" / "vgg16_imagenet_notop.weights.h5"


def write_digits(dest: Path, size: int = 32) -> tuple[list[str], np.ndarray]:
    """All of scikit-learn's digits as ``dest/<digit>/<n>.png`` (0..16 → 0..255, nearest upscaling)."""
    from PIL import Image

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("This benchmark needs scikit-learn for its data: pip install scikit-learn")
    digits = load_digits()
    paths = []
    for i, (img, y) in enumerate(zip(digits.images, digits.target, strict=True)):
        (dest / str(y)).mkdir(parents=True, exist_ok=True)
        pixels = np.round(img * (255 / 16)).astype(np.uint8)
        p = dest / str(y) / f"{i:04d}.png"
        Image.fromarray(pixels, "L").resize((size, size), Image.NEAREST).save(p)
        paths.append(str(p))
    return paths, digits.target.astype(np.int64)


def features(paths: list[str], kind: str, weights: str | None, image_size: int | None) -> np.ndarray:
    """The app's features of every image, in ``paths`` order (rows paired by index)."""
    from cnn_studio.labels.suggest import PIXELS, ImageReading, embed, feature_embedder

    backbone = PIXELS if kind == "pixels" else kind
    embedder, size, words = feature_embedder(backbone, weights, image_size)
    rows, (feats,), errors = embed(paths, embedder, ImageReading(size, batch_size=64))
    if errors:
        raise SystemExit(f"{len(errors)} images could not be read: {list(errors.items())[:3]}")
    out = np.zeros((len(paths), feats.shape[1]), np.float32)
    out[rows] = feats
    print(f"features: {words}, {feats.shape[1]} values per image", flush=True)
    return out


def _fit_predict(x_train, y_train, x_eval, n_classes, seed):
    from cnn_studio.labels.issue_maths import fit_softmax, softmax_predict

    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    w, b = fit_softmax((x_train - mu) / sd, y_train, n_classes, seed=seed)
    return [softmax_predict((x - mu) / sd, w, b) for x in x_eval]


def simulate(feats, y, strategy, seed, *, start, batch, budget, candidates):
    """Accuracy on the seed's test set after each round → ``[(labels, correct, n_test)]``."""
    from cnn_studio.labels.suggest import rank

    rng, test = _test_part(y, seed)
    n_classes = int(y.max()) + 1
    pool = np.flatnonzero(~test)
    labelled = np.concatenate([rng.choice(pool[y[pool] == c], size=start, replace=False) for c in range(n_classes)])
    curve = []
    while True:
        unl = np.setdiff1d(pool, labelled)
        p_test, p_unl = _fit_predict(feats[labelled], y[labelled], (feats[test], feats[unl]), n_classes, seed)
        curve.append((len(labelled), int((p_test.argmax(1) == y[test]).sum()), int(test.sum())))
        if len(labelled) >= budget or not len(unl):
            return curve
        pick = rank(p_unl, feats[unl], batch, strategy, seed=seed * 1000 + len(labelled), candidates=candidates)
        labelled = np.concatenate([labelled, unl[pick]])


def _test_part(y, seed):
    """(the seed's generator, a mask of the 30 % held out per class as the test set)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in range(int(y.max()) + 1):
        idx = np.flatnonzero(y == c)
        test[rng.choice(idx, size=round(0.3 * len(idx)), replace=False)] = True
    return rng, test


def full_accuracy(feats, y, seed) -> float:
    """Accuracy with every pool label (the target's 100 %)."""
    _rng, test = _test_part(y, seed)
    (p,) = _fit_predict(feats[~test], y[~test], (feats[test],), int(y.max()) + 1, seed)
    return float((p.argmax(1) == y[test]).mean())


def needed(curve, target: float) -> int | None:
    """Fewest labels at which the accuracy reaches ``target`` (None: not within the budget)."""
    return next((n for n, correct, total in curve if correct / total >= target), None)


def summarise(name, curves, fulls, target_share=0.95):
    from cnn_studio.evaluation.intervals import wilson

    target = target_share * float(np.mean(fulls))
    points = []
    for step in zip(*curves, strict=True):
        correct, total = sum(s[1] for s in step), sum(s[2] for s in step)
        accs = [s[1] / s[2] for s in step]
        low, high = wilson(correct, total)
        points.append({"labels": step[0][0], "accuracy": correct / total, "low": low, "high": high,
                       "seed_min": min(accs), "seed_max": max(accs)})
    mean_curve = [(p["labels"], p["accuracy"], 1.0) for p in points]
    per_seed = [needed(c, target_share * f) for c, f in zip(curves, fulls, strict=True)]
    return {"strategy": name, "points": points, "labels_to_95": needed(mean_curve, target),
            "labels_to_95_per_seed": per_seed}


def run_features(kind, feats, y, args) -> dict:
    fulls = [full_accuracy(feats, y, s) for s in range(args.seeds)]
    print(f"\n== {kind}: accuracy with all {int(round(0.7 * len(y)))} pool labels: "
          + ", ".join(f"{f:.3f}" for f in fulls) + f" (mean {np.mean(fulls):.3f}; 95 % of it: "
          f"{0.95 * np.mean(fulls):.3f})", flush=True)
    results = []
    variants = [(s, args.candidates[0]) for s in STRATEGY_ORDER]
    variants += [("margin+diversity", k) for k in args.candidates[1:]]
    for strategy, k in variants:
        t0 = time.perf_counter()
        curves = [simulate(feats, y, strategy, s, start=args.start, batch=args.batch, budget=args.budget,
                           candidates=k) for s in range(args.seeds)]
        name = strategy if strategy != "margin+diversity" else f"margin+diversity (k={k})"
        r = summarise(name, curves, fulls)
        results.append(r)
        print(f"{name:<26} labels to 95 %: {r['labels_to_95'] or f'>{args.budget}'}  per seed "
              f"{r['labels_to_95_per_seed']}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    _print_table(results, args)
    return {"features": kind, "full_accuracy": fulls, "strategies": results}


def _print_table(results, args) -> None:
    marks = sorted({p["labels"] for p in results[0]["points"]})
    show = [m for m in marks if m in (marks[0], marks[-1]) or m % (args.batch * 4) == 0]
    print("labels  " + "  ".join(f"{r['strategy']:>26}" for r in results))
    for m in show:
        cells = []
        for r in results:
            p = next(q for q in r["points"] if q["labels"] == m)
            cells.append(f"{p['accuracy']:.3f} [{p['low']:.3f}–{p['high']:.3f}]".rjust(26))
        print(f"{m:>6}  " + "  ".join(cells))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", nargs="+", default=["pixels", "vgg16"], help="pixels and/or a backbone key")
    ap.add_argument("--weights", default=str(TEST_WEIGHTS), help="weights file of the backbone (default: %(default)s)")
    ap.add_argument("--image-size", type=int, default=64, help="backbone input side (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--start", type=int, default=2, help="labelled images per class at the start")
    ap.add_argument("--batch", type=int, default=20, help="images labelled per round")
    ap.add_argument("--budget", type=int, default=400, help="stop at this many labels")
    ap.add_argument("--candidates", type=int, nargs="+", default=[4], help="margin+diversity's k (first: main row)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    out = {"dataset": "scikit-learn digits (1,797 images, 10 classes)", "settings": vars(args), "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths, y = write_digits(Path(tmp))
        for kind in args.features:
            if kind != "pixels" and not Path(args.weights).is_file():
                print(f"\n== {kind}: skipped, no weights file at {args.weights}")
                continue
            feats = features(paths, kind, None if kind == "pixels" else args.weights,
                             None if kind == "pixels" else args.image_size)
            out["results"].append(run_features(kind, feats, y, args))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
