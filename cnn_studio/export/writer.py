"""Export a run's model: write to a temporary path, reload it in its own runtime, compare its
outputs with the Keras model on real images, and only then rename it into place, with
``labels.txt`` and the model card beside it. A failed or cancelled export leaves nothing behind
(and an earlier export of the same name untouched); what a *killed* export left (its named
temporaries, :mod:`cnn_studio.export.staging`) is removed when the next export to that folder starts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.backbones.classifier import input_channels_of
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import ExportError, StudioError
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.bands import read_run_bands
from cnn_studio.export.formats import FORMATS, INTEGER_QUANTIZATIONS, QUANTIZATIONS, get_format
from cnn_studio.export.model_card import build_card, previous_exports, write_card
from cnn_studio.export.staging import remove_stale, staged
from cnn_studio.export.verify import (
    LabelledImages,
    describe_answers,
    judge_quantized_export,
    judging_images,
    representative_images,
    sample_images,
    verify_export,
)
from cnn_studio.predict.predictor import predict_probabilities
from cnn_studio.runs.lock import RunLock
from cnn_studio.runs.run_folder import RunInfo, load_model, open_run


@dataclass(frozen=True)
class ExportRecord:
    """One verified export: where it is and how closely it matches the trained model."""

    fmt: str
    path: str
    verified: bool
    max_abs_diff: float
    tolerance: float
    n_checked: int
    labels_path: str
    card_paths: tuple[str, ...] = ()
    quantization: str = "float32"
    notes: tuple[str, ...] = field(default_factory=tuple)
    # quantized exports: how their answers compare with the trained model's (verify.compare_answers)
    agreement: float | None = None
    n_judged: int = 0
    judged_on: str = ""
    accuracy_trained: float | None = None
    accuracy_export: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["card_paths"] = list(self.card_paths)
        d["notes"] = list(self.notes)
        return d


@dataclass(frozen=True)
class ExportOptions:
    """How one export is made.

    ``quantization``: "float32", or for TFLite "float16", "int8" (dynamic range: int8 weights) or
    "int8_full" (full integer, uint8 inputs and outputs, calibrated on up to 100 training images).
    ``sample_paths``: images to verify a float32 export on; default a few of the run's test/val images.
    A quantized export is judged on the run's validation images instead (up to 300; see
    :mod:`cnn_studio.export.verify` for the rule).
    ``model``: the run's model if already loaded (saves loading it again).
    """

    quantization: str = "float32"
    sample_paths: Sequence[str | os.PathLike[str]] | None = None
    model: Any = None


def export_model(run_dir: str | os.PathLike[str], fmt: str, out_dir: str | os.PathLike[str],
                 options: ExportOptions | None = None, *, sink: ev.EventSink = ev.null_sink,
                 cancel: CancelToken | None = None, **fields: Any) -> ExportRecord:
    """Export a run's model to ``out_dir`` in format ``fmt`` and verify it.

    Parameters
    ----------
    run_dir : a run folder (its best model is exported).
    fmt : "keras", "savedmodel", "tflite" or "onnx".
    out_dir : the folder to write into (created if needed); an earlier export of the same format
        and quantization there is replaced atomically.
    options : :class:`ExportOptions` (quantization, verification images, a loaded model); any of its
        fields may be given as keywords (``fields``) instead.
    sink, cancel : progress and cooperative cancellation (checked between stages).

    Returns
    -------
    ExportRecord

    Raises
    ------
    ExportError
        Unknown format, quantization not available for it, or the export failed verification.
    RunError
        ``run_dir`` is not a usable run folder.
        (ExportError also when a quantized export's answers change materially.)
    Cancelled
        ``cancel`` was set; nothing of this export is left behind.

    Events emitted
    --------------
    ``ExportProgress(fmt, stage)`` with stage "writing", "verifying", "done" or "failed".

    Examples
    --------
    >>> export_model("runs/leaves", "onnx", "exports/leaves").verified  # doctest: +SKIP
    True
    """

    o = replace(options or ExportOptions(), **fields)
    quantization = o.quantization
    spec = get_format(fmt)
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"Quantization: expected one of {', '.join(QUANTIZATIONS)}, received {quantization!r}.")
    if quantization != "float32" and not spec.quantizable:
        raise ExportError(f"{spec.label} exports are float32 only; received quantization {quantization!r}.",
                          "Use --quantization float16/int8 with the tflite format only.")
    raise_if_cancelled(cancel)
    run = open_run(run_dir)
    with RunLock(run.root, "export"):  # no other writer (train, resume) while the model is exported
        return _Export(run, spec, o, Path(out_dir).expanduser(), sink, cancel).export()


@dataclass(frozen=True)
class _CheckImages:
    """The images an export is checked on, and the trained model's answers on them."""

    samples: Any  # verify.sample_images: a float32 export is compared on these
    judged: LabelledImages | None  # a quantized export is judged on these instead
    reference: np.ndarray  # the trained model's probabilities on ``checked``
    representative: Any  # int8 calibration images, or None
    channels: int

    @property
    def checked(self) -> np.ndarray:
        return self.judged.images if self.judged is not None else self.samples.images


@dataclass(frozen=True)
class _Export:
    """One export under the run's lock, in its stages: check images, write and verify, describe."""

    run: RunInfo
    spec: Any
    options: ExportOptions
    out: Path
    sink: ev.EventSink
    cancel: CancelToken | None

    def export(self) -> ExportRecord:
        model = self.options.model if self.options.model is not None else load_model(self.run.model_path)
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale(self.out)  # what an export killed here before left (never a user's file, never a live export's)
        target = self.out / self.spec.file_name(self.options.quantization)
        images = self._check_images(model)
        diff, answers = self._write_verified(model, target, images)
        return self._finish(target, images, diff, answers)

    def _check_images(self, model) -> _CheckImages:
        run, size, quantization = self.run, self.run.image_size, self.options.quantization
        channels = input_channels_of(model)  # 3, or a multi-band model's band count
        samples = sample_images(run, size, self.options.sample_paths, channels=channels)
        judged = judging_images(run, size, channels=channels) if quantization != "float32" else None
        if judged is not None and not len(judged.images):  # nothing readable: judge on the (random) samples

            judged = LabelledImages(samples.images, np.zeros(len(samples.images), np.int64), samples.paths, "")
        checked = judged.images if judged is not None else samples.images
        reference = predict_probabilities(model, checked)
        representative = (representative_images(run, size, channels=channels)
                          if quantization in INTEGER_QUANTIZATIONS else None)
        return _CheckImages(samples, judged, reference, representative, channels)

    def _write_verified(self, model, target: Path, images: _CheckImages) -> tuple[float, dict]:
        """Write the export to a staged temporary, verify it there, and rename it into place."""
        spec, quantization, sink, cancel = self.spec, self.options.quantization, self.sink, self.cancel
        answers: dict = {}
        sink(ev.ExportProgress(spec.key, "writing", str(target)))
        try:
            with staged(target, spec.is_dir) as tmp:
                tmp_path = tmp / "saved_model" if spec.is_dir else tmp
                try:
                    spec.write(model, tmp_path, self.run.image_size, quantization,
                               representative=images.representative)
                except ExportError:
                    raise
                except Exception as exc:  # noqa: BLE001 - converters raise anything
                    raise ExportError(f"Writing the {spec.label} export failed: {exc}",
                                      "Nothing was written. Try another format, and report this problem.") from exc
                raise_if_cancelled(cancel)
                sink(ev.ExportProgress(spec.key, "verifying", f"on {len(images.checked)} images"))
                if images.judged is not None:
                    answers = judge_quantized_export(spec, tmp_path, images.reference, images.judged, quantization)
                    diff = answers["max_abs_diff"]
                else:
                    diff = verify_export(spec, tmp_path, images.reference, images.samples,
                                         spec.tolerance(quantization))
                raise_if_cancelled(cancel)
                if spec.is_dir:  # staged replaces target with tmp: move the written folder's content up
                    _flatten(tmp_path, tmp)
        except ExportError as exc:
            sink(ev.ExportProgress(spec.key, "failed", exc.message))
            raise
        return diff, answers

    def _notes(self, images: _CheckImages, answers: dict) -> list[str]:
        size, channels, judged = self.run.image_size, images.channels, images.judged
        shape = f"[N, {size}, {size}, {channels}]" if self.spec.fixed_size else f"[N, H, W, {channels}], any size"
        integer = self.options.quantization in INTEGER_QUANTIZATIONS
        bands = read_run_bands(self.run.root)
        what = (f"{bands.count} bands, raw values ({bands.dtype}) as " if bands is not None else "raw RGB 0–255 ")
        notes = [f"input: {shape}, {what}" + ("uint8; output uint8 (probability × 256)" if integer else "float32")]
        if judged is not None:
            notes.insert(0, describe_answers(answers, judged.subset))
        if not images.samples.real and not (judged is not None and judged.subset):
            notes.append("verified on random pixels: no image of the run could be read")
        return notes

    def _card_entry(self, target: Path, images: _CheckImages, diff: float, answers: dict) -> dict[str, Any]:
        quantization, judged = self.options.quantization, images.judged
        entry = {"fmt": self.spec.key, "file": target.name, "quantization": quantization, "verified": True,
                 "max_abs_diff": diff, "tolerance": self.spec.tolerance(quantization),
                 "n_checked": len(images.checked)}
        if judged is not None:
            entry.update(agreement=answers["agreement"], n_judged=answers["n"], judged_on=judged.subset,
                         accuracy_trained=answers["accuracy_trained"], accuracy_export=answers["accuracy_export"])
            if quantization in INTEGER_QUANTIZATIONS:
                entry["representative_images"] = int(len(images.representative))
        return entry

    def _finish(self, target: Path, images: _CheckImages, diff: float, answers: dict) -> ExportRecord:
        """labels.txt and the model card beside the export, and its record."""
        run, spec, quantization, judged = self.run, self.spec, self.options.quantization, images.judged
        tolerance = spec.tolerance(quantization)
        labels = _write_labels(RunLayout(self.out).labels, run.class_names)
        notes = self._notes(images, answers)
        entry = self._card_entry(target, images, diff, answers)
        exports = [e for e in previous_exports(self.out) if e["file"] != target.name] + [entry]
        card_paths = write_card(build_card(run, exports, run.image_size), self.out)
        self.sink(ev.ExportProgress(spec.key, "done",
                                    notes[0] if judged is not None else f"max |Δ| {diff:.2g} ≤ {tolerance:g}"))
        return ExportRecord(fmt=spec.key, path=str(target), verified=True, max_abs_diff=diff, tolerance=tolerance,
                            n_checked=len(images.checked), labels_path=str(labels),
                            card_paths=tuple(str(p) for p in card_paths), quantization=quantization,
                            notes=tuple(notes), agreement=answers.get("agreement"), n_judged=answers.get("n", 0),
                            judged_on=judged.subset if judged is not None else "",
                            accuracy_trained=answers.get("accuracy_trained"),
                            accuracy_export=answers.get("accuracy_export"))


def _write_labels(path: Path, class_names) -> Path:
    """labels.txt through a named temporary (:mod:`staging`), fsynced before the rename."""
    with staged(path) as tmp, open(tmp, "wb") as f:
        f.write(("\n".join(class_names) + "\n").encode("utf-8", "surrogateescape"))
        f.flush()
        os.fsync(f.fileno())
    return path


def _flatten(inner: Path, outer: Path) -> None:
    """Move the content of ``outer/inner`` up into ``outer`` (writers create their own folder)."""
    for child in inner.iterdir():
        os.replace(child, outer / child.name)
    inner.rmdir()


def export_all(run_dir: str | os.PathLike[str], formats: Sequence[str], out_dir: str | os.PathLike[str], *,
               sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None, keep_going: bool = False,
               **fields: Any) -> list:
    """Export several formats (the model is loaded once). ``formats`` may contain "all".

    ``fields``: :class:`ExportOptions` fields (``quantization``, ``sample_paths``). The quantization
    applies to TFLite only; other formats are float32. Raises on the first failure;
    exports finished before it are kept. With ``keep_going`` a format that fails with a
    StudioError is listed as ``(format, error)`` and the others still run (the app shows each).
    """

    o = ExportOptions(**fields)
    keys = list(FORMATS) if "all" in formats else [get_format(f).key for f in formats]
    run = open_run(run_dir)
    with RunLock(run.root, "export"):
        o = replace(o, model=load_model(run.model_path))
        records = []
        for key in keys:
            raise_if_cancelled(cancel)
            q = o.quantization if FORMATS[key].quantizable else "float32"
            try:
                records.append(export_model(run_dir, key, out_dir, replace(o, quantization=q), sink=sink,
                                            cancel=cancel))
            except StudioError as exc:
                if not keep_going:
                    raise
                records.append((key, exc))
        return records
