"""Benchmark the label-issue finder: precision and recall on labels made wrong on purpose, per checker.

A dataset is written to a temporary folder with ``--flip`` of its images (default 6 %) saved under
a different, random class, then each checker judges it and the script prints, per checker:

* the checker's out-of-fold accuracy, its 95% interval and the chance verdict (a checker not better
  than guessing lists nothing: then precision and recall are 0 and it says so),
* precision and recall at the **top 2×planted** suspects (what a reviewer goes through first:
  ``top`` = the first 2N of the suspect list, N = labels planted), and over all suspects,
* how often the suggested label is the true one, and the time.

Datasets (``--dataset``):

* ``photo`` (default): photo-like generated pictures, four shapes (circle, square, triangle, star) of
  random colour, size, position and rotation on textured, shaded backgrounds with distractors;
  mixed formats (``--formats``): PNG, JPEG, JPEG with an EXIF rotation, 16-bit RGB TIFF and 16-bit
  grey DICOM, so TensorFlow's decoder and the Python readers both take part (the case where images
  used to come back in another order than their records).
* ``digits``: the bundled handwritten-digit sample (PNG).
* ``corners``: the test kit's corner squares (trivially learnable).

Checkers (``--checker``, repeatable): ``vgg16=PATH`` frozen VGG16 features from a weights file (default
``$CNN_STUDIO_TEST_WEIGHTS`` or ``~/.cache/cnn-studio-test-weights``/vgg16_imagenet_notop.weights.h5),
``vgg16`` (ImageNet from the app's store/Keras' cache), ``small_cnn`` (trained per fold), or any
``BACKBONE[=WEIGHTS]``. Default: ``vgg16=PATH`` (when the file is there) and ``small_cnn``.

Run::

    nice python bench/label_issues.py                                # photo-like, 6 % wrong, VGG16 file + Small CNN
    nice python bench/label_issues.py --dataset digits --flip 0.06
    nice python bench/label_issues.py --checker small_cnn --per-class 60 --seeds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from photo_shapes import FORMATS, photo_like, save_as  # noqa: E402  (bench/ is sys.path[0])

SHAPES = ("circle", "square", "triangle", "star")
TEST_WEIGHTS = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser()


# ---------------------------------------------------------------------------- the planted dataset


def _items(dataset: str, per_class: int, seed: int):
    """``(classes, [(true class, picture or source path)])``."""
    if dataset == "digits":
        from cnn_studio.data.sample import sample_dataset_path

        src = Path(sample_dataset_path())
        classes = sorted(d.name for d in src.iterdir() if d.is_dir())
        return classes, [(c, p) for c in classes for p in sorted((src / c).iterdir()) if p.is_file()]
    rng = np.random.default_rng(seed)
    if dataset == "corners":
        from studio_testkit import make_class_image

        classes = ["a", "b", "c", "d"]
        return classes, [(c, make_class_image(k, 64, seed=i)) for k, c in enumerate(classes) for i in range(per_class)]
    return list(SHAPES), [(c, photo_like(c, rng)) for c in SHAPES for _ in range(per_class)]


def planted_copy(dataset: str, dest: Path, flip: float, seed: int, per_class: int, formats: tuple[str, ...]):
    """Write the dataset into ``dest`` with ``flip`` of the images in a wrong class folder.

    Returns ``({path of a wrongly filed image: its true class}, image count, {format: count})``.
    """
    rng = np.random.default_rng(seed + 1)
    classes, items = _items(dataset, per_class, seed)
    for name in classes:
        (dest / name).mkdir(parents=True, exist_ok=True)
    wrong = set(rng.choice(len(items), size=round(flip * len(items)), replace=False).tolist())
    planted, used = {}, {}
    for i, (name, item) in enumerate(items):
        given = str(rng.choice([c for c in classes if c != name])) if i in wrong else name
        stem = dest / given / f"{name}_{i:04d}"
        if isinstance(item, Path):
            out = stem.with_suffix(item.suffix)
            shutil.copy2(item, out)
            fmt = item.suffix.lstrip(".")
        else:
            fmt = formats[int(rng.integers(len(formats)))]
            out = save_as(item, stem, fmt)
        used[fmt] = used.get(fmt, 0) + 1
        if given != name:
            planted[str(out)] = name
    return planted, len(items), used


# ---------------------------------------------------------------------------- scoring


def ungated(issues) -> list[str]:
    """The suspects the finder would list without its chance verdict (confident learning on its out-of-fold
    probabilities), best first: what a checker at chance would have accused."""
    from cnn_studio.labels.issue_maths import confident_suspects

    idx, _suggested, _scores, _t = confident_suspects(issues.probabilities, issues.labels, len(issues.class_names))
    return [issues.paths[i] for i in idx]


def score(issues, planted: dict[str, str]) -> dict:
    """Precision/recall at the top 2×planted suspects and over all of them, and the suggestions' accuracy."""
    found = [s.path for s in issues.suspects]
    would = ungated(issues)[:2 * len(planted)]
    n = max(len(planted), 1)
    top = found[:2 * len(planted)]
    top_hit = sum(p in planted for p in top)
    hit = [s for s in issues.suspects if s.path in planted]
    return {"suspects": len(found), "top_n": len(top), "top_hit": top_hit,
            "top_precision": top_hit / max(len(top), 1), "top_recall": top_hit / n,
            "precision": len(hit) / max(len(found), 1), "recall": len(hit) / n,
            "suggested_right": sum(s.suggested == planted[s.path] for s in hit), "hits": len(hit),
            "ungated_top_n": len(would), "ungated_top_hit": sum(p in planted for p in would)}


def parse_checker(text: str) -> tuple[str, str | None]:
    backbone, _, weights = text.partition("=")
    if backbone == "vgg16" and weights == "PATH":
        weights = str(TEST_WEIGHTS / "vgg16_imagenet_notop.weights.h5")
    return backbone, weights or None


def default_checkers() -> list[str]:
    vgg = TEST_WEIGHTS / "vgg16_imagenet_notop.weights.h5"
    if vgg.is_file():
        return [f"vgg16={vgg}", "small_cnn"]
    print(f"note: {vgg} not found, so VGG16 is left out (make it with the offline ImageNet weights tool, or "
          "pass --checker vgg16=FILE)", file=sys.stderr)
    return ["small_cnn"]


def run_one(root: Path, planted: dict, checker: str, args) -> dict:
    from cnn_studio.backbones.registry import get
    from cnn_studio.labels.issues import find_label_issues

    backbone, weights = parse_checker(checker)
    size = get(backbone).image_size(args.image_size if backbone != "small_cnn" else args.small_size)
    t0 = time.perf_counter()
    issues = find_label_issues(root, backbone=backbone, weights=weights, folds=args.folds, image_size=size,
                               seed=args.seed, corrections=None)
    out = score(issues, planted)
    out.update(checker=issues.checker, size=size, seconds=time.perf_counter() - t0, check=issues.check,
               withheld=issues.withheld)
    return out


def report(r: dict, planted: int) -> None:
    c = r["check"]
    print(f"  {r['checker']} at {r['size']} px: out-of-fold accuracy {c['accuracy']:.1%} "
          f"(95% {c['low']:.0%}–{c['high']:.0%}, chance {c['chance']:.0%}) → {c['verdict']}; {r['seconds']:.0f} s")
    if not c["trusted"]:
        print(f"    {c['verdict'].replace('_', ' ')}: no suspect listed; without the verdict it would have listed "
              f"{r['withheld']}, its top {2 * planted} holding {r['ungated_top_hit']} of the {planted} wrong labels")
    print(f"    top {2 * planted} (2×planted, {r['top_n']} shown): precision {r['top_precision']:.2f}, "
          f"recall {r['top_recall']:.2f} ({r['top_hit']} of {planted})")
    print(f"    all {r['suspects']} suspects: precision {r['precision']:.2f}, recall {r['recall']:.2f}; "
          f"suggested label right for {r['suggested_right']}/{r['hits']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("photo", "digits", "corners"), default="photo")
    ap.add_argument("--per-class", type=int, default=50, help="generated images per class (default %(default)s)")
    ap.add_argument("--flip", type=float, default=0.06, help="fraction of labels made wrong (default %(default)s)")
    ap.add_argument("--formats", default=",".join(FORMATS),
                    help=f"formats of the generated images, drawn at random per image (default {','.join(FORMATS)})")
    ap.add_argument("--checker", action="append", default=None, metavar="BACKBONE[=WEIGHTS]",
                    help="vgg16=PATH (the offline test weights), vgg16=FILE, small_cnn ... (repeatable)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=None, help="pretrained checker's image size (its default)")
    ap.add_argument("--small-size", type=int, default=None, help="Small CNN's image size (its default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="datasets drawn (seed, seed+1, ...)")
    args = ap.parse_args()
    formats = tuple(f for f in args.formats.split(",") if f)
    checkers = args.checker or default_checkers()

    import tensorflow  # noqa: F401 - imported outside the timings

    results: dict[str, list[dict]] = {c: [] for c in checkers}
    for s in range(args.seed, args.seed + args.seeds):
        tmp = Path(tempfile.mkdtemp(prefix="bench_label_issues_"))
        try:
            planted, n, used = planted_copy(args.dataset, tmp / "data", args.flip, s, args.per_class, formats)
            print(f"dataset {args.dataset} (seed {s}): {n} images, {len(planted)} labels wrong "
                  f"({len(planted) / n:.1%}); formats {', '.join(f'{k} {v}' for k, v in sorted(used.items()))}")
            for c in checkers:
                r = run_one(tmp / "data", planted, c, args)
                report(r, len(planted))
                results[c].append(r)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.seeds > 1:
        print("mean over seeds:")
        for rs in results.values():
            print(f"  {rs[0]['checker']}: top-2×planted precision {np.mean([r['top_precision'] for r in rs]):.2f}, "
                  f"recall {np.mean([r['top_recall'] for r in rs]):.2f} "
                  f"(range {min(r['top_recall'] for r in rs):.2f}–{max(r['top_recall'] for r in rs):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
