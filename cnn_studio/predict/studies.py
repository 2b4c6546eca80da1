"""NIfTI files and DICOM series folders → one answer per study (:class:`StudyPrediction`).

A *study* is a NIfTI volume or a DICOM series (:mod:`cnn_studio.data.volumes`): its slices are
classified one by one with the same model loading, decoding and resizing as pictures
(:mod:`cnn_studio.predict.predictor`), then aggregated into the study's answer as evaluation does
(:func:`cnn_studio.evaluation.studies.aggregate`); the slices that drove it are named
(:func:`cnn_studio.evaluation.studies.top_slice_order`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import ConfigError, DatasetError, ImageReadError
from cnn_studio.core.paths import RunLayout
from cnn_studio.data import formats
from cnn_studio.data.decode import DEFAULT_MAX_PIXELS
from cnn_studio.data.records import ImageRecord, VolumeSlicing
from cnn_studio.data.volumes import VolumeEntry, dicom_series, nifti_slice_records
from cnn_studio.evaluation.calibration import uncertain
from cnn_studio.evaluation.studies import TOP_SLICES, aggregate, top_slice_order
from cnn_studio.predict.batches import iter_image_batches, predict_probabilities
from cnn_studio.predict.predictor import Classifier, TopAnswer, expand_paths
from cnn_studio.runs.run_folder import open_run

TASK = "Classifying studies"


@dataclass(frozen=True)
class StudyPredictOptions:
    """How :func:`predict_studies` and :func:`classify_studies` answer.

    slicing, aggregate_by : default the run's ``slice_axis``/``slices`` and ``study_aggregate``
        (for a Classifier or a bare model: axis 2, "content", "mean"); :func:`classify_studies`
        takes the slices :func:`find_studies` found and "mean" when ``aggregate_by`` is None.
    top_k : classes kept in ``top``; top_slices : driving slices named per study.
    batch_size : slices per forward pass.
    uncertain_below : a "not sure" threshold on the study's top probability.
    """

    slicing: VolumeSlicing | None = None
    aggregate_by: str | None = None
    top_k: int = 3
    top_slices: int = TOP_SLICES
    batch_size: int = 32
    uncertain_below: float | None = None


@dataclass(frozen=True)
class StudyPrediction(TopAnswer):
    """The model's answer for one study (a NIfTI file or a DICOM series folder).

    ``top`` holds (class, probability) pairs of the aggregated probabilities, best first;
    ``top_slices`` the slices that drove it as (record key, probability of the answer) pairs,
    highest first; ``error`` says why the study could not be classified (the rest is then empty).
    """

    study: str
    top: list[tuple[str, float]] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    slices: int = 0
    top_slices: list[tuple[str, float]] = field(default_factory=list)
    aggregate: str = "mean"
    error: str | None = None
    uncertain: bool = False
    unreadable_slices: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "top": [[n, p] for n, p in self.top], "probabilities": list(self.probabilities),
                "slices": self.slices, "top_slices": [[k, p] for k, p in self.top_slices],
                "aggregate": self.aggregate, "error": self.error, "uncertain": self.uncertain,
                "unreadable_slices": self.unreadable_slices}


@dataclass(frozen=True)
class FoundStudies:
    """What :func:`find_studies` found: studies (id → slice records, or an error) and other image files."""

    studies: dict[str, list[ImageRecord] | str]
    images: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of files that are not images


def find_studies(paths: Sequence[str | os.PathLike[str]], slicing: VolumeSlicing | None = None) -> FoundStudies:
    """Sort files and folders into studies (NIfTI files, DICOM series of 2+ files) and plain images.

    NIfTI files (named, or found in folders) are studies of their own; the single-frame DICOM files
    of one folder that share a SeriesInstanceUID (two or more) form one study; every other
    readable file stays an image. ``slicing`` selects the slices (default: axis 2, content).

    Raises
    ------
    DatasetError
        A path does not exist.
    """
    from cnn_studio.data.medical import dicom_slice_info

    slicing = slicing or VolumeSlicing()
    skipped: list[tuple[str, str]] = []
    files = expand_paths(paths, skipped)
    studies: dict[str, list[ImageRecord] | str] = {}
    dicom_records: list[ImageRecord] = []
    infos: dict[str, Any] = {}
    others: list[Path] = []
    for f in files:
        reader = formats.reader_for(f) if f.is_file() else None
        if reader == formats.NIBABEL:
            try:
                recs, _ = nifti_slice_records(str(f), VolumeEntry(0), slicing, max_pixels=DEFAULT_MAX_PIXELS)
                studies[str(f)] = recs
            except ImageReadError as exc:
                studies[str(f)] = exc.message
            except OSError as exc:
                studies[str(f)] = f"could not read {f.name}: {exc}"
            continue
        if reader == formats.PYDICOM:
            try:
                infos[str(f)] = dicom_slice_info(f)
                dicom_records.append(ImageRecord(path=str(f), label=0, fmt="DICOM"))
                continue
            except (ImageReadError, OSError):
                pass
        others.append(f)
    if dicom_records:
        grouped, skipped, _ = dicom_series(dicom_records, infos, slicing)
        for r in grouped:
            if r.study:
                entry = studies.setdefault(r.study, [])
                if isinstance(entry, list):
                    entry.append(r)
            else:
                others.append(Path(r.path))
        for s in skipped:
            studies[s.path] = s.detail
        others.sort(key=lambda p: files.index(p) if p in files else len(files))
    return FoundStudies(studies, others, skipped)


def run_settings(model_or_run: Any) -> tuple[VolumeSlicing, str]:
    """The run's slicing and study aggregate (defaults for a Classifier or a bare .keras file)."""
    if isinstance(model_or_run, (str, os.PathLike)):
        p = Path(model_or_run).expanduser()
        if p.is_dir() or (p.suffix == ".keras" and RunLayout(p.parent).is_run()):
            config = open_run(p if p.is_dir() else p.parent).config
            return config.slicing, config.study_aggregate
    return VolumeSlicing(), "mean"


def predict_studies(model_or_run: Any, paths: Sequence[str | os.PathLike[str]],
                    options: StudyPredictOptions = StudyPredictOptions(), *,
                    sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> list[StudyPrediction]:
    """Classify NIfTI files and DICOM series folders, one answer per study.

    Parameters
    ----------
    model_or_run : a :class:`cnn_studio.predict.predictor.Classifier`, a run folder or a ``.keras`` file.
    paths : NIfTI files, DICOM series folders, or folders holding them (searched recursively).
    options : slicing, aggregate, top-k, driving slices, batch size and the "not sure" threshold
        (:class:`StudyPredictOptions`; slicing and aggregate default to the run's).

    Returns
    -------
    list[StudyPrediction]
        One per study found, in the order found; a study none of whose slices could be read has
        ``error`` set. Plain images among ``paths`` are not answered here (use ``classify``).

    Raises
    ------
    DatasetError
        A path does not exist, or no study was found.
    Cancelled
        ``cancel`` was set (checked per batch).

    Events emitted
    --------------
    ``TaskProgress("Classifying studies", done, total)`` per batch of slices.

    Examples
    --------
    >>> [s.label for s in predict_studies("runs/mri", ["new/sub-09.nii.gz"])]  # doctest: +SKIP
    ['lesion']
    """
    threshold = options.uncertain_below
    if threshold is not None and not 0.0 < float(threshold) <= 1.0:
        raise ConfigError(f"Uncertain-below threshold: expected a probability above 0 and at most 1, "
                          f"received {threshold}.", "For example 0.6.")
    run_slicing, run_how = run_settings(model_or_run)
    how = options.aggregate_by or run_how
    aggregate(np.ones((1, 1)), how)  # an unknown aggregate is a ConfigError before any work
    clf = model_or_run if isinstance(model_or_run, Classifier) else Classifier.load(model_or_run)
    found = find_studies(paths, options.slicing or run_slicing)
    if not found.studies:
        raise DatasetError(f"No NIfTI volume or DICOM series was found in {', '.join(map(str, paths))}.",
                           "Give .nii/.nii.gz files, or folders holding the DICOM files of a series "
                           "(two or more files with the same SeriesInstanceUID).")
    return classify_studies(clf, found, replace(options, aggregate_by=how), sink=sink, cancel=cancel)


def classify_studies(clf: Classifier, found: FoundStudies, options: StudyPredictOptions = StudyPredictOptions(), *,
                     sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> list[StudyPrediction]:
    """Classify the studies :func:`find_studies` found with a loaded classifier (see :func:`predict_studies`)."""
    keys = [r.key for recs in found.studies.values() if isinstance(recs, list) for r in recs]
    study_of = [r.study for recs in found.studies.values() if isinstance(recs, list) for r in recs]
    probs, ok = _slice_probabilities(clf, keys, options.batch_size, sink, cancel)
    out: list[StudyPrediction] = []
    for study, recs in found.studies.items():
        if isinstance(recs, str):
            out.append(StudyPrediction(study, aggregate=options.aggregate_by or "mean", error=recs))
            continue
        rows = [i for i, s in enumerate(study_of) if s == study]
        out.append(_answer_study(study, rows, (keys, probs, ok), clf.class_names, options))
    return out


def _slice_probabilities(clf: Classifier, keys: list[str], batch_size: int, sink: ev.EventSink,
                         cancel: CancelToken | None) -> tuple[np.ndarray, np.ndarray]:
    """``[N, C]`` probabilities of the slices ``keys``, and which of them could be read."""
    probs = np.zeros((len(keys), len(clf.class_names)))
    ok = np.zeros(len(keys), bool)
    sink(ev.TaskProgress(TASK, 0, len(keys)))
    done = 0
    for idx, images, errors in iter_image_batches(keys, clf.image_size, clf.resize, batch_size):
        raise_if_cancelled(cancel)
        if idx:
            probs[idx] = predict_probabilities(clf.model, images)
            ok[idx] = True
        done += len(idx) + len(errors)
        sink(ev.TaskProgress(TASK, done, len(keys)))
    return probs, ok


def _answer_study(study: str, rows: list[int], slices: tuple[list[str], np.ndarray, np.ndarray],
                  names: Sequence[str], options: StudyPredictOptions) -> StudyPrediction:
    """One study's answer from its slices' ``rows`` of ``slices`` (keys, probabilities, readable)."""
    keys, probs, ok = slices
    how = options.aggregate_by or "mean"
    good = [i for i in rows if ok[i]]
    if not good:
        return StudyPrediction(study, aggregate=how, slices=0, unreadable_slices=len(rows),
                               error=f"none of its {len(rows)} slices could be read")
    agg = aggregate(probs[good], how)
    order = np.argsort(-agg, kind="stable")[:max(1, min(int(options.top_k), len(names)))]
    pred = int(order[0])
    drove = [(keys[good[j]], float(probs[good[j], pred]))
             for j in top_slice_order(probs[good], pred, options.top_slices)]
    return StudyPrediction(study, [(names[j], float(agg[j])) for j in order], [float(v) for v in agg],
                           len(good), drove, how, None, uncertain(float(agg[pred]), options.uncertain_below),
                           len(rows) - len(good))
