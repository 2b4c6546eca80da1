"""What the Classify step runs off the GUI thread: classifying dropped files and folders with the run's
model (held in its own process), the pictures Qt cannot show itself, and the Grad-CAM heat maps."""

from __future__ import annotations

import numpy as np

from cnn_studio.core import events as ev
from cnn_studio.core.paths import job_log
from cnn_studio.data.bands import composite, is_multiband_key, read_bands, read_run_bands
from cnn_studio.data.decode import decode_key
from cnn_studio.explain.views import CLASSIFY, HEATMAPS, THUMB, open_model, shrink
from cnn_studio.predict.predictor import Prediction, skipped_predictions
from cnn_studio.predict.studies import StudyPredictOptions, find_studies
from cnn_studio.runs.run_folder import open_run

STUDIES = "cnn_studio.predict.studies:classify_studies"
"""The model server's call that answers per study (a NIfTI file, a DICOM series)."""

def classify_paths(run_dir, model, paths, uncertain_below=None, *, sink, cancel):
    """Load the run's model once (when ``model`` is None or died) in its own process, then classify ``paths``
    (answers less sure than ``uncertain_below`` come back as "uncertain").

    ``model`` is a :func:`cnn_studio.explain.views.open_model` handle, kept by the page across drops.
    NIfTI files and DICOM series among ``paths`` (or in its folders) are answered per study
    (:func:`cnn_studio.predict.studies.classify_studies`, cut and aggregated as the run was trained).
    Returns ``(model, predictions, previews, studies)``: ``predictions`` has one
    :class:`~cnn_studio.predict.predictor.Prediction` per image and per study (its ``path`` the study),
    ``previews`` a picture for each entry Qt cannot show itself (a multi-band tile's RGB composite of the
    run's R, G, B bands; a study's slice that drove the answer most), ``studies`` the
    :class:`~cnn_studio.predict.studies.StudyPrediction` of each study.
    """

    if model is not None and not model.alive:  # its process died (the error was shown): load it anew
        model.close()
        model = None
    if model is None:
        sink(ev.StageChanged(task="classify", stage="Loading the model"))
        model = open_model(run_dir, log_path=job_log("model", run_dir))
    config = open_run(run_dir).config
    found = find_studies(paths, config.slicing)
    predictions, studies = [], {}
    if found.images:
        predictions += model.call(CLASSIFY, list(map(str, found.images)), top_k=3, uncertain_below=uncertain_below,
                                  sink=sink, cancel=cancel)
    if found.studies:
        options = StudyPredictOptions(aggregate_by=config.study_aggregate, top_k=3, uncertain_below=uncertain_below)
        for sp in model.call(STUDIES, found, options, sink=sink, cancel=cancel):
            studies[sp.study] = sp
            predictions.append(Prediction(sp.study, sp.top, sp.probabilities, sp.error, sp.uncertain))
    predictions += skipped_predictions(found.skipped)  # files of other types in the folders: a row each, with why
    previews = preview_pictures(run_dir, [p.path for p in predictions if not p.error and p.path not in studies])
    for study, sp in studies.items():
        if sp.top_slices:
            try:
                previews[study] = shrink(decode_key(sp.top_slices[0][0]), THUMB)
            except Exception:  # noqa: BLE001 - the placeholder then
                pass
    return model, predictions, previews, studies


def preview_pictures(run_dir, paths) -> dict[str, np.ndarray]:
    """uint8 RGB pictures of the ``paths`` Qt cannot show: a multi-band tile's composite of the bands the run
    shows as R, G, B, windowed by its training statistics (so every tile is on one scale)."""
    info = read_run_bands(run_dir)
    if info is None:
        return {}
    out = {}
    for p in paths:
        if is_multiband_key(p):
            try:
                out[p] = shrink(composite(read_bands(p), info.rgb, info.windows or None), THUMB)
            except Exception:  # noqa: BLE001 - a picture that cannot be made shows the placeholder
                continue
    return out


def gradcam_heatmaps(model, paths, class_index: int | None = None, keys: dict[str, str] | None = None, *, sink,
                     cancel):
    """{path: (downscaled original, downscaled heat map)} for the predicted (or the given) class.

    ``keys`` maps a shown entry to what is explained instead (a study → the slice that drove it most)."""

    keys = keys or {}
    asked = [keys.get(p, p) for p in map(str, paths)]
    back = {keys.get(p, p): p for p in map(str, paths)}
    maps = model.call(HEATMAPS, asked, class_index, sink=sink, cancel=cancel)
    return {back.get(k, k): v for k, v in maps.items()}
