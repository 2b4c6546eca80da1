"""Folder (or CSV manifest) → scanned, checked and split dataset: the one preparation path.

The Data page, ``cnn-studio scan`` and ``cnn-studio train`` all call :func:`prepare`, so they scan,
check and split in the same order with the same rules:

1. scan the folder (skipped when given a :class:`DatasetIndex`, e.g. to re-split after a setting changed);
2. check the index alone: ``min_images_per_class(test_fraction)`` images per class, one class, empty
   classes ... (no duplicate search yet);
3. split only when step 2 found no error; a split that cannot be made (a class too small for its
   share, a preset split without a class) becomes an ``error`` finding ``split_failed``, not an
   exception, so it is reported next to the other findings;
4. check again with the split (duplicates across splits, group leakage), then sort and summarise.

Label corrections (:mod:`cnn_studio.labels.corrections`) are applied right after the scan, so the checks,
the split and everything trained or evaluated on it see the reviewed labels; what was applied is
recorded in ``split.info["corrections"]`` (a run folder's split.json and the project file keep it).
Just before them, images from outside the dataset that were given a class in the suggestion queue
(:mod:`cnn_studio.labels.added_labels`) join it as records of their class (``split.info["added_labels"]``).

Settings that are wrong whatever the data (fractions out of range, an unknown ``group_by``) raise
:class:`~cnn_studio.core.errors.ConfigError` before anything is scanned.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import DatasetError
from cnn_studio.data.checks import SEVERITIES, Finding, has_errors, run_checks
from cnn_studio.data.index import scan
from cnn_studio.data.records import DatasetIndex, Split, VolumeSlicing
from cnn_studio.data.report import DatasetReport, build_report
from cnn_studio.data.split import (
    SEED,
    TEST_FRACTION,
    VAL_FRACTION,
    check_settings,
    group_by_value,
    make_split,
)
from cnn_studio.labels.added_labels import AddedApplied, apply_added_labels
from cnn_studio.labels.added_labels import resolve as resolve_added
from cnn_studio.labels.corrections import AUTO, Applied, Corrections, apply_corrections
from cnn_studio.labels.corrections import resolve as resolve_corrections


def min_images_per_class(test_fraction: float) -> int:
    """Fewest images a class needs: one to train on, one to validate, one more with a test part."""
    return 3 if test_fraction > 0 else 2


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset: the index, its split (``None`` when blocked), findings (errors first), report."""

    index: DatasetIndex
    split: Split | None
    findings: list[Finding]
    report: DatasetReport
    corrections: Applied | None = None  # the label review's decisions applied to ``index`` (None: none)
    added_labels: AddedApplied | None = None  # images labelled in CNN Studio's suggestion queue (None: none)

    @property
    def usable(self) -> bool:
        """True when training may start: a split exists and no finding is an error."""
        return self.split is not None and not has_errors(self.findings)

    @property
    def first_error(self) -> Finding | None:
        return next((f for f in self.findings if f.severity == "error"), None)


@dataclass(frozen=True)
class PrepareOptions:
    """How :func:`prepare` splits, which label decisions it applies, and how volumes are sliced.

    val_fraction, test_fraction, seed, group_by
        The split settings (see :func:`cnn_studio.data.split.make_split`); ``group_by`` may also be "auto".
    find_duplicates
        Hash same-size files to find exact copies (``cnn-studio scan --no-duplicates`` turns it off).
    corrections
        The label review's decisions: "auto" (default) the dataset's own corrections file when the
        review queue wrote one (:func:`cnn_studio.labels.corrections.default_path`), a corrections.csv path,
        a :class:`~cnn_studio.labels.corrections.Corrections`, or None/"none" for the labels as the files give them.
    added_labels
        Images from outside the dataset given a class in the suggestion queue (:mod:`cnn_studio.labels.added_labels`):
        "auto" (default) the dataset's own labels file when there is one, a path, an
        :class:`~cnn_studio.labels.added_labels.AddedLabels`, or None/"none". They join the dataset as records of
        their class before the corrections are applied.
    slicing
        How volumes become slices (:class:`VolumeSlicing`; default: axis 2, every slice with content).
        Ignored when the source is already an index.
    """

    val_fraction: float = VAL_FRACTION
    test_fraction: float = TEST_FRACTION
    seed: int = SEED
    group_by: str | None = None
    find_duplicates: bool = True
    corrections: str | Path | Corrections | None = AUTO
    added_labels: Any = AUTO
    slicing: VolumeSlicing | None = None


def prepare(source: str | Path | DatasetIndex, options: PrepareOptions = PrepareOptions(), *,
            sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> Prepared:
    """Scan (unless given an index), check and split a dataset.

    Parameters
    ----------
    source
        A dataset folder, a ``.csv`` manifest, or an already scanned :class:`DatasetIndex`.
    options
        The split settings, duplicate search, label corrections and added labels, volume slicing
        (:class:`PrepareOptions`).
    sink, cancel
        Scan events and a ``StageChanged("dataset", ...)`` before checking; cancel is honoured per file.

    Returns
    -------
    Prepared
        ``split`` is ``None`` when a check error blocks it; the error is among ``findings``.

    Raises
    ------
    ConfigError
        Split settings out of range (before scanning).
    DatasetError
        The folder or manifest cannot be read at all (from the scan).
    Cancelled
        ``cancel`` was set.
    """
    group_by = group_by_value(options.group_by)
    check_settings(options.val_fraction, options.test_fraction, group_by)
    index = source if isinstance(source, DatasetIndex) else scan(source, sink=sink, cancel=cancel,
                                                                        slicing=options.slicing or VolumeSlicing())
    raise_if_cancelled(cancel)
    index, added, applied = _apply_label_decisions(index, options)
    sink(ev.StageChanged("dataset", "Checking the images"))
    min_per_class = min_images_per_class(options.test_fraction)
    split, failed = None, []
    if not has_errors(run_checks(index, min_per_class=min_per_class, find_duplicates=False)):
        try:
            split = make_split(index, val_fraction=options.val_fraction, test_fraction=options.test_fraction,
                               seed=options.seed, group_by=group_by)
        except DatasetError as exc:
            failed.append(Finding("error", "split_failed", exc.message, exc.hint))
    if split is not None and applied is not None:
        split = replace(split, info={**split.info, "corrections": applied.to_dict()})
    if split is not None and added is not None:
        split = replace(split, info={**split.info, "added_labels": added.to_dict()})
    findings = failed + run_checks(index, split, min_per_class=min_per_class, find_duplicates=options.find_duplicates,
                                   cancel=cancel)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order.get(f.severity, len(order)))
    return Prepared(index, split, findings, build_report(index, split, findings), applied, added)


def _apply_label_decisions(index: DatasetIndex,
                           options: PrepareOptions) -> tuple[DatasetIndex, AddedApplied | None, Applied | None]:
    """The index with the suggestion queue's added images, then the review's corrections (what was applied of each)."""
    applied, added = None, None
    labelled = resolve_added(options.added_labels, index.root)
    if labelled is not None and len(labelled):
        index, added = apply_added_labels(index, labelled)
    fixes = resolve_corrections(options.corrections, index.root)
    if fixes is not None and len(fixes):
        index, applied = apply_corrections(index, fixes)
    return index, added, applied
