"""DatasetIndex → :class:`~cnn_studio.data.records.Split` (train / val / optional test).

Three ways, recorded in ``Split.source``:

``"preset"``
    The user already split the data (``split_folders`` layout, or a ``split`` column in a CSV):
    those splits are used as they are. If there is no validation part, one is carved out of the
    preset training part (stratified or grouped, as below) and the preset test part is kept.
``"grouped"``
    Records carry group ids (a CSV ``group`` column, or the DICOM PatientID found by the scan) or
    are slices of studies (volumes, DICOM series: :mod:`cnn_studio.data.volumes` sets their group to
    the patient, else the study): every group — and every study — lands in exactly one split, so no
    patient/field/source and no study is seen both in training and in validation. Groups are assigned per majority label, smallest group first to val (and
    test), then largest first to whichever split is furthest below its target share, so each
    class's share is met as well as whole groups allow. **Decision**: grouping is automatic
    whenever any record has a group id or a study (``group_by=None``); pass ``group_by="none"`` to ignore
    groups (this may leak a patient across splits) or ``group_by="group"`` to require it.
    Records without a group id count as a group of their own.
``"random"``
    Stratified per class: each class is shuffled with ``random.Random(seed)`` (class order, then
    path order, so the same index and seed always give the same split) and cut by the fractions;
    every class gets at least one validation (and test, when asked) image.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from cnn_studio.core.errors import ConfigError, DatasetError
from cnn_studio.data.records import SPLIT_NAMES, DatasetIndex, ImageRecord, Split

GROUP_MODES = (None, "group", "none")
VAL_FRACTION, TEST_FRACTION, SEED = 0.2, 0.0, 1337  # the default split: the CLI, the Data page and TrainConfig use these
GROUP_CHOICES = ("auto", "group", "none")  # what people type (CLI, settings); "auto" is ``group_by=None``


def group_by_value(choice: str | None) -> str | None:
    """``"auto"`` (or ``None``) → ``None``; ``"group"``/``"none"`` as they are."""
    return None if choice in (None, "auto") else choice


def check_settings(val_fraction: float, test_fraction: float, group_by: str | None = None) -> None:
    """Raise :class:`ConfigError` for split settings no dataset could satisfy (checked before any scan)."""
    if not 0.0 < val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0 or val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"Expected 0 < val_fraction, 0 <= test_fraction and val_fraction + test_fraction < 1; "
                          f"received val_fraction={val_fraction}, test_fraction={test_fraction}.",
                          "Use for example val_fraction=0.2 and test_fraction=0.1.")
    if group_by not in GROUP_MODES:
        raise ConfigError(f"Expected group_by to be one of None, 'group', 'none'; received {group_by!r}.",
                          "Leave it empty to group automatically when the data has patient/group ids.")


def make_split(index: DatasetIndex, *, val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
               seed: int = SEED,
               group_by: str | None = None) -> Split:
    """Split the index into train/val/test, stratified per class, group-aware, reproducible.

    Parameters
    ----------
    index
        The scanned dataset.
    val_fraction, test_fraction
        Share of each class's images for validation and test (``0 < val``, ``val + test < 1``).
    seed
        Same index + same seed → same split.
    group_by
        ``None`` (automatic: grouped when any record has a group id), ``"group"`` (always
        grouped) or ``"none"`` (ignore group ids).

    Returns
    -------
    Split
        ``source`` is ``"preset"``, ``"grouped"`` or ``"random"``; ``info["counts"]`` holds images
        per split and class.

    Raises
    ------
    ConfigError
        A fraction or ``group_by`` is out of range.
    DatasetError
        A class cannot get at least one training and one validation image.

    Examples
    --------
    >>> split = make_split(index, val_fraction=0.2, seed=1)  # doctest: +SKIP
    >>> len(split.train), len(split.val)  # doctest: +SKIP
    (96, 24)
    """
    check_settings(val_fraction, test_fraction, group_by)
    grouped = group_by == "group" or (group_by is None and any(r.group or r.study for r in index.records))
    names = index.class_names
    parts, source = _parts(index, grouped, val_fraction, test_fraction, seed)
    info = {"counts": {s: _class_counts(parts[s], names) for s in SPLIT_NAMES}}
    if grouped:
        info["groups"] = {s: len({_group_key(r) for r in parts[s]}) for s in SPLIT_NAMES}
    return Split(class_names=names, train=tuple(parts["train"]), val=tuple(parts["val"]),
                 test=tuple(parts["test"]), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                 group_by="group" if grouped else None, source=source, info=info)


def _parts(index: DatasetIndex, grouped: bool, val_fraction: float, test_fraction: float,
           seed: int) -> tuple[dict[str, list[ImageRecord]], str]:
    """The records of each split, and how they were made: the preset splits (a validation part carved
    out of their training part when there is none), else cut by group or stratified per class."""
    records = list(index.records)
    names = index.class_names
    cut = _grouped if grouped else _stratified
    if records and all(r.preset_split for r in records):
        parts = {s: [r for r in records if r.preset_split == s] for s in SPLIT_NAMES}
        if not parts["val"]:
            train, val, _ = cut(parts["train"], names, val_fraction, 0.0, seed)
            parts["train"], parts["val"] = train, val
        source = "preset"
    else:
        train, val, test = cut(records, names, val_fraction, test_fraction, seed)
        parts = {"train": train, "val": val, "test": test}
        source = "grouped" if grouped else "random"
    _require_train_and_val(parts, names, source)
    return parts, source


def _class_counts(records: list[ImageRecord], names: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(r.label for r in records)
    return {n: counts.get(i, 0) for i, n in enumerate(names)}


def _by_class(records: list[ImageRecord]) -> dict[int, list[ImageRecord]]:
    out: dict[int, list[ImageRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.label, r.key)):
        out[r.label].append(r)
    return dict(sorted(out.items()))


def _stratified(records: list[ImageRecord], names: tuple[str, ...], val_fraction: float, test_fraction: float,
                seed: int) -> tuple[list[ImageRecord], list[ImageRecord], list[ImageRecord]]:
    rng = random.Random(seed)
    train: list[ImageRecord] = []
    val: list[ImageRecord] = []
    test: list[ImageRecord] = []
    need = 2 + (1 if test_fraction > 0 else 0)
    for label, recs in _by_class(records).items():
        n = len(recs)
        if n < need:
            raise DatasetError(
                f"Class {names[label]!r} has {n} image{'s' if n != 1 else ''}; a split needs at least {need}.",
                f"Add images to {names[label]!r}, or lower val_fraction" + (" / test_fraction." if need > 2 else "."))
        rng.shuffle(recs)
        n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
        n_val = min(max(1, round(n * val_fraction)), n - n_test - 1)
        val += recs[:n_val]
        test += recs[n_val:n_val + n_test]
        train += recs[n_val + n_test:]
    return train, val, test


def _group_key(r: ImageRecord) -> str:
    """What must stay in one split: the group (patient), else the study, else the file."""
    if r.group:
        return f"group:{r.group}"
    return f"study:{r.study}" if r.study else f"file:{r.path}"


def _grouped(records: list[ImageRecord], names: tuple[str, ...], val_fraction: float, test_fraction: float,
             seed: int) -> tuple[list[ImageRecord], list[ImageRecord], list[ImageRecord]]:
    rng = random.Random(seed)
    groups: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.label, r.key)):
        groups[_group_key(r)].append(r)
    by_majority: dict[int, list[str]] = defaultdict(list)
    for key in sorted(groups):
        labels = Counter(r.label for r in groups[key])
        majority = min(labels, key=lambda lab: (-labels[lab], lab))
        by_majority[majority].append(key)

    out: dict[str, list[ImageRecord]] = {"train": [], "val": [], "test": []}
    shares = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    for label in sorted(by_majority):
        keys = by_majority[label]
        rng.shuffle(keys)
        total = sum(len(groups[k]) for k in keys)
        target = {s: shares[s] * total for s in out}
        got = dict.fromkeys(out, 0)
        # seed val (and test) with the smallest groups so each gets at least one when possible
        order = sorted(keys, key=lambda k: len(groups[k]))
        for s in ("val", "test"):
            if target[s] > 0 and len(order) > 1:  # leave at least one group for train
                key = order.pop(0)
                out[s] += groups[key]
                got[s] += len(groups[key])
        for key in sorted(order, key=lambda k: -len(groups[k])):  # stable: shuffled order breaks ties
            s = max((s for s in out if target[s] > 0), key=lambda s: (target[s] - got[s], s == "train"))
            out[s] += groups[key]
            got[s] += len(groups[key])
    return out["train"], out["val"], out["test"]


def _require_train_and_val(parts: dict[str, list[ImageRecord]], names: tuple[str, ...], source: str) -> None:
    for s in ("train", "val"):
        have = {r.label for r in parts[s]}
        for label, name in enumerate(names):
            if label in have:
                continue
            n = sum(1 for p in parts.values() for r in p if r.label == label)
            if source == "preset":
                raise DatasetError(f"Class {name!r} has no images in the {s} part of your split folders.",
                                   f"Put some of {name!r}'s images into {s}/{name}/, or remove the {s}/ folder "
                                   "so that CNN Studio makes the split itself.")
            if source == "grouped":
                raise DatasetError(
                    f"Class {name!r} cannot be in both train and val without splitting a group: its {n} images "
                    "come from too few groups (patients/sources).",
                    f"Add images of {name!r} from more patients/sources, or lower val_fraction. (Ignoring groups "
                    "with group_by='none' would let one patient appear in both parts and overstate accuracy.)")
            raise DatasetError(f"Class {name!r} has {n} image{'s' if n != 1 else ''}; a split needs at least 2.",
                               f"Add images to {name!r}, or lower val_fraction.")


def counts_per_split(split: Split) -> dict[str, dict[str, int]]:
    """Images per split and class: ``{"train": {"cat": 40, ...}, "val": {...}, "test": {...}}``."""
    return {s: _class_counts(list(split.subset(s)), split.class_names) for s in SPLIT_NAMES}


def leakage_report(split: Split) -> dict[str, list[str]]:
    """Groups (patients) and studies that appear in more than one split: ``{id: ["train", "val"], ...}``.

    Empty for every grouped split made by :func:`make_split`. Records without a group id or study
    are not considered (exact duplicate *files* across splits are found by ``checks.run_checks``).
    A study is listed by its id when its slices are split although its group is not listed.

    Examples
    --------
    >>> leakage_report(make_split(index))  # doctest: +SKIP
    {}
    """
    where: dict[str, set[str]] = defaultdict(set)
    study_where: dict[str, set[str]] = defaultdict(set)
    for s in SPLIT_NAMES:
        for r in split.subset(s):
            if r.group:
                where[r.group].add(s)
            if r.study:
                study_where[r.study].add(s)
    for study, ss in study_where.items():
        if study not in where:
            where[study] = ss
    order = {s: i for i, s in enumerate(SPLIT_NAMES)}
    return {g: sorted(ss, key=order.__getitem__) for g, ss in sorted(where.items()) if len(ss) > 1}
