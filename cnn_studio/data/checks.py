"""DatasetIndex (and optionally its Split) → a list of :class:`Finding` a person can act on.

Severity decides what the app does: ``"error"`` blocks training, ``"warning"`` is shown and does
not block, ``"info"`` is background. Codes are stable strings the UI can key its wording on:

==================  ========  ===============================================================
code                severity  meaning
==================  ========  ===============================================================
no_images           error     nothing usable was found
one_class           error     fewer than two classes
empty_class         error     a class folder holds no usable image
too_few_images      error     a class has fewer images than a train/val split needs
mixed_bands         error     pictures (JPEG, PNG, RGB TIFF) mixed with multi-band arrays
band_count_differs  error     multi-band files with different band counts
imbalance           warning   largest/smallest class ratio is 3:1 or more (ratio stated)
skipped_files       warning   files that could not be read, counted by reason
duplicate_in_class  warning   byte-identical files within one class
label_conflict      warning   byte-identical files in different classes
manifest_label_     warning   a file a CSV manifest lists with different labels (left out of the index)
conflict
split_leakage       warning   byte-identical files in different splits (needs a split)
group_leakage       warning   a group (patient) in more than one split (needs a split)
small_images        warning   images under a quarter of the typical pixel count
mixed_modes         info      several pixel modes (e.g. greyscale and colour) are mixed
few_to_train        warning   a class has fewer than 20 training images (needs a split; without
                              one: fewer than 30 images in all)
few_to_validate     warning   a class has fewer than 10 validation images (needs a split)
tiny_validation     warning   the validation part has fewer than 30 images in all (needs a split)
class_size_differs  warning   one class's images have a size (or pixel mode) the others rarely have:
class_mode_differs            a shortcut the network will learn instead of the content
==================  ========  ===============================================================

The counts behind the sample-size warnings: fine-tuning a pretrained network needs about 20
training images per class at the very least (training from scratch needs hundreds); a figure
measured on fewer than 10 images of a class is reported as "too few images to tell"
(:mod:`cnn_studio.evaluation.intervals`), and below 30 validation images the 95% interval of the accuracy
is wider than ±0.17, so two models cannot be told apart.

Duplicates are exact: files of equal size are compared by the SHA-1 of their bytes (read in
1 MiB chunks), so only files that could be identical are read (:mod:`cnn_studio.data.duplicates`).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from cnn_studio.core.cancel import CancelToken
from cnn_studio.data.duplicates import duplicate_sets
from cnn_studio.data.records import SPLIT_NAMES, DatasetIndex, ImageRecord, Split
from cnn_studio.data.split import leakage_report
from cnn_studio.evaluation.intervals import wilson

SEVERITIES = ("error", "warning", "info")
MANIFEST_CONFLICT = "label_conflict"
"""``SkippedFile.reason`` the scan gives a file its CSV manifest lists with different labels."""
IMBALANCE_WARN_RATIO = 3.0
MIN_TRAIN_PER_CLASS = 20
MIN_VAL_PER_CLASS = 10  # = cnn_studio.evaluation.intervals.MIN_IMAGES
MIN_VAL_TOTAL = 30
SHORTCUT_SHARE_IN_CLASS = 0.8
SHORTCUT_SHARE_ELSEWHERE = 0.2
SMALL_AREA_FACTOR = 0.25


@dataclass(frozen=True)
class Finding:
    """One thing the user should know about the dataset: what, how bad, what to do, which files."""

    severity: str  # "error" | "warning" | "info"
    code: str
    message: str
    hint: str = ""
    paths: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["paths"] = list(self.paths)
        return d


def has_errors(findings: list[Finding]) -> bool:
    """True when any finding blocks training."""
    return any(f.severity == "error" for f in findings)


def _names(index: DatasetIndex, labels: set[int]) -> str:
    return ", ".join(repr(index.class_names[i]) for i in sorted(labels))


def run_checks(index: DatasetIndex, split: Split | None = None, *, min_per_class: int = 2,
               find_duplicates: bool = True, cancel: CancelToken | None = None) -> list[Finding]:
    """Check a scanned dataset (and its split, when given) for problems.

    Parameters
    ----------
    index
        The scanned dataset.
    split
        When given, duplicates and groups across train/val/test are checked too.
    min_per_class
        Fewest images a class needs (2 for train+val, 3 with a test part).
    find_duplicates
        Hash same-size files to find exact duplicates (reads those files once).
    cancel
        Checked between files while hashing.

    Returns
    -------
    list[Finding]
        Errors first, then warnings, then infos.

    Examples
    --------
    >>> findings = run_checks(scan("leaves"))  # doctest: +SKIP
    >>> has_errors(findings)  # doctest: +SKIP
    False
    """
    counts = Counter(r.label for r in index.records)
    out = _class_findings(index, counts, min_per_class) + _imbalance_findings(index, counts) + _skipped_findings(index)
    if find_duplicates and index.records:
        out += _duplicate_findings(index, split, cancel)
    if split is not None:
        out += _leakage_findings(split)
    out += _band_findings(index)
    out += _size_and_mode_findings(index)
    out += _sample_size_findings(index, split, counts)
    out += _class_shortcut_findings(index)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out, key=lambda f: order[f.severity])


def _class_findings(index: DatasetIndex, counts: Counter, min_per_class: int) -> list[Finding]:
    """No images, a single class, a class that is empty or too small to split."""
    out: list[Finding] = []
    if not index.records:
        out.append(Finding("error", "no_images", f"No usable images were found in {index.root}.",
                           "Put the images into one sub-folder per class and scan again."))
    if len(index.class_names) < 2:
        only = f" ({index.class_names[0]!r})" if index.class_names else ""
        out.append(Finding("error", "one_class", f"The dataset has only {len(index.class_names)} class{only}; "
                           "a classifier needs at least two.",
                           "Add a second class folder (e.g. the 'normal' or 'other' images)."))
    for label, name in enumerate(index.class_names):
        n = counts.get(label, 0)
        if n == 0:
            out.append(Finding("error", "empty_class", f"Class {name!r} has no usable images.",
                               f"Add images to {name!r} (see the skipped files for why its files were not "
                               "used), or remove the folder."))
        elif n < min_per_class:
            out.append(Finding("error", "too_few_images",
                               f"Class {name!r} has {n} image{'s' if n != 1 else ''}; a split needs at least "
                               f"{min_per_class}.", f"Add images to {name!r}, or lower val_fraction/test_fraction."))
    return out


def _imbalance_findings(index: DatasetIndex, counts: Counter) -> list[Finding]:
    """The largest class :data:`IMBALANCE_WARN_RATIO` times the smallest or more."""
    nonzero = {label: n for label, n in counts.items() if n > 0}
    if len(nonzero) < 2:
        return []
    big, small = max(nonzero, key=nonzero.get), min(nonzero, key=nonzero.get)
    ratio = nonzero[big] / nonzero[small]
    if ratio < IMBALANCE_WARN_RATIO:
        return []
    return [Finding("warning", "imbalance",
                    f"The classes are imbalanced {ratio:.1f}:1: {index.class_names[big]!r} has "
                    f"{nonzero[big]} images, {index.class_names[small]!r} only {nonzero[small]}.",
                    "Add images of the smaller classes if you can; judge the model by per-class "
                    "recall, not overall accuracy.")]


def _skipped_findings(index: DatasetIndex) -> list[Finding]:
    """Files the scan left out: listed twice in a manifest with different labels, or unusable."""
    out: list[Finding] = []
    conflicting = [s for s in index.skipped if s.reason == MANIFEST_CONFLICT]
    unusable = [s for s in index.skipped if s.reason != MANIFEST_CONFLICT]
    if conflicting:
        out.append(Finding("warning", "manifest_label_conflict",
                           f"{len(conflicting)} file(s) are listed in the manifest more than once with different "
                           "labels; they were left out (counted in no class).",
                           "Keep one row per file, with the label it really has, and scan again.",
                           tuple(s.path for s in conflicting)))
    if unusable:
        reasons = Counter(s.reason for s in unusable)
        out.append(Finding("warning", "skipped_files",
                           f"{len(unusable)} file(s) will not be used: "
                           + ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in reasons.most_common()) + ".",
                           "See the list of skipped files; fix or remove them and scan again if they matter.",
                           tuple(s.path for s in unusable)))
    return out


def _leakage_findings(split: Split) -> list[Finding]:
    """Groups found in more than one split."""
    leaks = leakage_report(split)
    if not leaks:
        return []
    shown = ", ".join(f"{g} ({'/'.join(s)})" for g, s in list(leaks.items())[:5])
    return [Finding("warning", "group_leakage",
                    f"{len(leaks)} group(s) appear in more than one split: {shown}.",
                    "Use a grouped split (group_by='group') so no patient/source is in both train "
                    "and validation.")]


def _duplicate_findings(index: DatasetIndex, split: Split | None, cancel: CancelToken | None) -> list[Finding]:
    out: list[Finding] = []
    sets = duplicate_sets(index.records, cancel=cancel)
    within = [s for s in sets if len({r.label for r in s}) == 1]
    conflicts = [s for s in sets if len({r.label for r in s}) > 1]
    if within:
        extra = sum(len(s) - 1 for s in within)
        out.append(Finding("warning", "duplicate_in_class",
                           f"{extra} image(s) are exact copies of another image in the same class "
                           f"({len(within)} set(s)).",
                           "Remove the copies: they make the class look bigger and can land in both train "
                           "and validation.", tuple(r.path for s in within for r in s)))
    if conflicts:
        labels = {r.label for s in conflicts for r in s}
        out.append(Finding("warning", "label_conflict",
                           f"{len(conflicts)} image(s) appear with different labels ({_names(index, labels)}).",
                           "Decide which class each belongs to and delete the other copy.",
                           tuple(r.path for s in conflicts for r in s)))
    if split is not None:
        where = {r.path: s for s in SPLIT_NAMES for r in split.subset(s)}
        leaked = [s for s in sets if len({where.get(r.path) for r in s} - {None}) > 1]
        if leaked:
            out.append(Finding("warning", "split_leakage",
                               f"{len(leaked)} image(s) have an exact copy in another split (e.g. the same "
                               "file in train and val); validation accuracy will look better than it is.",
                               "Remove the duplicate files and scan again.", tuple(r.path for s in leaked for r in s)))
    return out


def _band_findings(index: DatasetIndex) -> list[Finding]:
    """A dataset must be all pictures or all multi-band arrays with one band count (the model's input)."""
    arrays = [r for r in index.records if r.bands]
    if not arrays:
        return []
    pictures = [r for r in index.records if not r.bands]
    if pictures:
        few, many = (pictures, arrays) if len(pictures) <= len(arrays) else (arrays, pictures)
        kind = "picture" if few is pictures else "multi-band file"
        return [Finding("error", "mixed_bands",
                        f"The dataset mixes {len(pictures)} pictures (JPEG, PNG, RGB TIFF ...) with {len(arrays)} "
                        f"multi-band files (TIFFs with many bands, .npy arrays); one model takes one kind.",
                        f"Remove the {len(few)} {kind}{'s' if len(few) != 1 else ''} listed here, or train on each "
                        "kind separately.", tuple(r.key for r in few))]
    counts = Counter(r.bands for r in arrays)
    if len(counts) > 1:
        usual = counts.most_common(1)[0][0]
        odd = [r for r in arrays if r.bands != usual]
        spread = ", ".join(f"{n} files with {b} bands" for b, n in counts.most_common())
        return [Finding("error", "band_count_differs", f"The multi-band files have different band counts: {spread}.",
                        f"Every file needs the same bands in the same order: remove or convert the {len(odd)} "
                        f"file{'s' if len(odd) != 1 else ''} without {usual} bands listed here.",
                        tuple(r.key for r in odd))]
    return []


def _size_and_mode_findings(index: DatasetIndex) -> list[Finding]:
    out: list[Finding] = []
    areas = [r.width * r.height for r in index.records if r.width and r.height]
    if len(areas) >= 4:
        typical = statistics.median(areas)
        small = [r for r in index.records if r.width * r.height < SMALL_AREA_FACTOR * typical]
        if small:
            ex = small[0]
            out.append(Finding("warning", "small_images",
                               f"{len(small)} image(s) are much smaller than typical (e.g. {ex.width}x{ex.height} "
                               f"against a median of about {int(typical ** 0.5)}x{int(typical ** 0.5)} pixels).",
                               "Check that they are not thumbnails or crops by mistake; they will be upscaled.",
                               tuple(r.path for r in small)))
    modes = Counter(r.mode for r in index.records)
    if len(modes) > 1:
        out.append(Finding("info", "mixed_modes",
                           "Images have different pixel modes: " + ", ".join(f"{m or '?'} ({n})" for m, n in
                                                                            modes.most_common()) + ".",
                           "That is fine: every image is converted to 8-bit RGB the same way (see the scaling "
                           "notes). Check that a class is not recognisable by its mode alone."))
    return out


def _sample_size_findings(index: DatasetIndex, split: Split | None, counts: Counter) -> list[Finding]:
    """Too few images to train on or to validate with, per class and in all (see the module's rule)."""
    out: list[Finding] = []
    names = index.class_names
    if split is None:
        need = MIN_TRAIN_PER_CLASS + MIN_VAL_PER_CLASS
        few = [(names[i], counts.get(i, 0)) for i in range(len(names)) if 0 < counts.get(i, 0) < need]
        if few:
            out.append(Finding("warning", "few_to_train",
                               "Too few images to train and to validate: " + ", ".join(f"{n!r} has {k}" for n, k in few)
                               + f". Each class needs about {need}: {MIN_TRAIN_PER_CLASS} to learn from (fine-tuning a "
                               f"pretrained network; from scratch, hundreds) and {MIN_VAL_PER_CLASS} to measure it on.",
                               "Add images to these classes; with fewer, the results will say 'too few images to tell'."))
        return out

    def below(part: list, minimum: int) -> list[tuple[str, int]]:
        """Classes (that have images at all) with fewer than ``minimum`` images in this part of the split."""
        n = Counter(r.label for r in part)
        return [(names[i], n.get(i, 0)) for i in range(len(names)) if counts.get(i, 0) and n.get(i, 0) < minimum]

    few_train = below(split.train, MIN_TRAIN_PER_CLASS)
    if few_train:
        out.append(Finding("warning", "few_to_train",
                           "Too few images to train on: " + ", ".join(f"{n!r} has {k}" for n, k in few_train)
                           + f" training image(s). Fine-tuning a pretrained network needs about {MIN_TRAIN_PER_CLASS} "
                           "per class at the very least; training from scratch needs hundreds.",
                           "Add images to these classes, and use pretrained weights (not 'none')."))
    few_val = below(split.val, MIN_VAL_PER_CLASS)
    if few_val:
        out.append(Finding("warning", "few_to_validate",
                           "Too few images to validate: " + ", ".join(f"{n!r} has {k}" for n, k in few_val)
                           + f" validation image(s). Each class needs at least {MIN_VAL_PER_CLASS} to measure its "
                           "recall and precision; with fewer they are reported as 'too few images to tell'.",
                           "Add images, or raise the validation share if the classes are big enough."))
    total_val = len(split.val)
    if total_val < MIN_VAL_TOTAL:
        lo, hi = wilson(total_val // 2, total_val)
        out.append(Finding("warning", "tiny_validation",
                           f"The validation part has only {total_val} image(s): an accuracy of 50% measured on it "
                           f"could be anything from {lo:.0%} to {hi:.0%} (95% interval), so a result cannot be told "
                           f"from guessing. {MIN_VAL_TOTAL} or more are needed.",
                           "Add images, or raise the validation share."))
    return out


def _class_shortcut_findings(index: DatasetIndex) -> list[Finding]:
    """A class whose images share a size or pixel mode that the other classes rarely have."""
    out: list[Finding] = []
    names = index.class_names
    by_class: dict[int, list[ImageRecord]] = defaultdict(list)
    for r in index.records:
        by_class[r.label].append(r)
    if len(by_class) < 2:
        return out
    for code, what, key in (("class_size_differs", "size", lambda r: f"{r.width}x{r.height}" if r.width else None),
                            ("class_mode_differs", "pixel mode", lambda r: r.mode or None)):
        if len({key(r) for r in index.records} - {None}) < 2:
            continue
        for label, recs in sorted(by_class.items()):
            if len(recs) < 5:
                continue
            value, k = Counter(key(r) for r in recs).most_common(1)[0]
            others = [r for lab, rs in by_class.items() if lab != label for r in rs]
            if value is None or not others:
                continue
            inside = k / len(recs)
            elsewhere = sum(1 for r in others if key(r) == value) / len(others)
            if inside >= SHORTCUT_SHARE_IN_CLASS and elsewhere <= SHORTCUT_SHARE_ELSEWHERE:
                out.append(Finding("warning", code,
                                   f"{inside:.0%} of class {names[label]!r} have the {what} {value}, against "
                                   f"{elsewhere:.0%} of the other classes: the network can learn the {what} (e.g. "
                                   "one scanner or camera per class) instead of what the images show.",
                                   "Make every class come from the same sources and settings, or check the model's "
                                   "heat maps (Grad-CAM) before trusting it.",
                                   tuple(r.path for r in recs[:5])))
    return out
