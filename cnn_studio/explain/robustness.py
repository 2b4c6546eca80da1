"""How far a model's accuracy falls under everyday corruptions and under adversarial (FGSM) noise.

``epsilon`` is a fraction of the 0–255 pixel range: FGSM at ``epsilon=0.01`` moves every pixel by
at most 0.01 × 255 ≈ 2.6 grey levels, a change a person cannot see. A large drop at a tiny
epsilon means the model relies on fragile patterns. :func:`run_robustness` writes
``robustness.json`` (read by the model card), example PNGs and a plot into the run folder.

A multi-band model (a run with ``bands.json``) is checked on its raw bands put on a 0–255 scale per
band — the training set's 0.5–99.5 percentile window of that band (:class:`BandScale`) — so noise,
brightness and FGSM's epsilon mean the same share of each band's range as they do of a picture's,
without clipping; JPEG compression is left out (the report's ``notes`` say why) and the FGSM
examples are drawn as the run's RGB composite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import DatasetError, ImageReadError, RunError
from cnn_studio.core.events import EventSink, LogMessage, StageChanged, TaskProgress, null_sink
from cnn_studio.core.fsutil import write_json
from cnn_studio.data.bands import read_run_bands
from cnn_studio.data.pipeline import load_image
from cnn_studio.data.records import ImageRecord
from cnn_studio.explain import perturbations
from cnn_studio.explain.adversarial import BandScale, fgsm
from cnn_studio.explain.robustness_plot import save_plot, save_png
from cnn_studio.predict.predictor import Classifier
from cnn_studio.runs.run_folder import load_model, open_run

TASK = "robustness"
DEFAULT_EPSILONS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.03)
EPSILON_NOTE = "epsilon is a fraction of the 0-255 pixel range: each pixel moves by at most epsilon x 255"
BAND_EPSILON_NOTE = ("epsilon is a fraction of each band's range (its 0.5-99.5 percentiles in the training set): "
                     "each value moves by at most epsilon x that range")


@dataclass(frozen=True)
class AdversarialExample:
    """An image whose prediction FGSM flipped; ``image`` is the saved PNG (relative to the run folder)."""

    path: str
    true: str
    clean_pred: str
    adv_pred: str
    epsilon: float
    image: str = ""


@dataclass(frozen=True)
class RobustnessReport:
    """Clean accuracy, accuracy per (perturbation, level), and a few adversarial examples."""

    clean_accuracy: float
    n_images: int
    rows: tuple[dict[str, Any], ...]
    examples: tuple[AdversarialExample, ...] = ()
    class_names: tuple[str, ...] = ()
    subset: str = ""
    skipped: int = 0
    plot: str = ""
    epsilon_note: str = EPSILON_NOTE
    units: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what was left out and why (e.g. JPEG for a multi-band model)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = [dict(r) for r in self.rows]
        d["class_names"] = list(self.class_names)
        d["notes"] = list(self.notes)
        return d

    def accuracy(self, perturbation: str, level: float) -> float:
        """Accuracy at one (perturbation, level)."""
        for r in self.rows:
            if r["perturbation"] == perturbation and np.isclose(r["level"], level):
                return float(r["accuracy"])
        raise KeyError((perturbation, level))


def _predict(model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(images, training=False)).argmax(axis=-1)


def _choose(records: Sequence[ImageRecord], max_images: int, seed: int) -> list[ImageRecord]:
    records = list(records)
    if len(records) <= max_images:
        return records
    idx = np.sort(np.random.default_rng(seed).choice(len(records), size=max_images, replace=False))
    return [records[i] for i in idx]


def _example_png(clean: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """Clean | adversarial | difference magnified so it can be seen (grey = no change)."""
    diff = adv - clean
    peak = max(float(np.abs(diff).max()), 1e-6)
    shown = 127.5 + diff * (127.5 / peak)
    gap = np.full((clean.shape[0], 4, 3), 255.0, np.float32)
    return np.clip(np.round(np.concatenate([clean, gap, adv, gap, shown], axis=1)), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class RobustnessOptions:
    """What the robustness check tries, on how many images, and where its example pictures go.

    ``levels``: perturbation name → levels (default :data:`perturbations.DEFAULT_LEVELS`).
    ``epsilons``: FGSM steps as fractions of the 0–255 range.
    ``max_images``: at most this many records are used (a sample drawn with ``seed``).
    ``batch_size``: images per pass through the model.
    ``n_examples``: how many flipped FGSM examples to keep; their PNGs go to ``out_dir`` if given.
    """

    levels: Mapping[str, Sequence[float]] | None = None
    epsilons: Sequence[float] = DEFAULT_EPSILONS
    max_images: int = 200
    batch_size: int = 32
    n_examples: int = 4
    seed: int = 0
    out_dir: str | Path | None = None


@dataclass(frozen=True)
class _Images:
    """The readable images of the sample, as the run's pipeline sizes them."""

    x: np.ndarray
    y: np.ndarray
    paths: list[str]
    skipped: int


def _levels_and_notes(levels: Mapping[str, Sequence[float]] | None,
                      scale: BandScale | None) -> tuple[dict[str, Sequence[float]], list[str]]:
    """The perturbations to try; a multi-band model leaves out the picture-only ones, with a note why."""
    levels = dict(perturbations.DEFAULT_LEVELS if levels is None else levels)
    notes: list[str] = []
    if scale is not None:
        for name, why in perturbations.PICTURE_ONLY.items():
            if levels.pop(name, None) is not None:
                notes.append(f"{name} left out: {why}.")
    return levels, notes


def _read_images(records: Sequence[ImageRecord], classifier, o: RobustnessOptions, sink: EventSink,
                 cancel: CancelToken | None) -> _Images:
    chosen = _choose(records, o.max_images, o.seed)
    sink(StageChanged(TASK, "Loading images", f"{len(chosen)} images"))
    images, labels, paths, skipped = [], [], [], 0
    for rec in chosen:
        raise_if_cancelled(cancel)
        try:
            images.append(load_image(rec.key, classifier.image_size, classifier.resize))
        except ImageReadError:
            skipped += 1
            continue
        labels.append(rec.label)
        paths.append(rec.key)
    if skipped:
        sink(LogMessage("warning", f"{skipped} image(s) could not be read and were left out of the robustness check."))
    if not images:
        raise DatasetError("No image could be read for the robustness check.",
                           "Check that the run's image folders still exist and are readable.")
    return _Images(np.stack(images).astype(np.float32), np.asarray(labels, np.int64), paths, skipped)


@dataclass
class _Measurement:
    """The model's accuracy on the images, batch by batch, with progress over the whole check."""

    classifier: Any
    images: _Images
    options: RobustnessOptions
    scale: BandScale | None
    sink: EventSink
    cancel: CancelToken | None
    total: int = 0
    done: int = 0

    @property
    def batches(self) -> list[slice]:
        step = self.options.batch_size
        return [slice(i, i + step) for i in range(0, len(self.images.x), step)]

    def _tick(self, detail: str) -> None:
        self.done += 1
        self.sink(TaskProgress(TASK, self.done, self.total, detail))
        raise_if_cancelled(self.cancel)

    def clean(self) -> np.ndarray:
        """The model's answer for each unchanged image."""
        x = self.images.x
        clean = np.empty(len(x), np.int64)
        for b in self.batches:
            clean[b] = _predict(self.classifier.model, x[b])
            self._tick("clean images")
        return clean

    def corrupted(self, name: str, level: float) -> float:
        """Accuracy under one everyday perturbation at one level (each batch seeded on its own)."""
        x, y, scale, seed = self.images.x, self.images.y, self.scale, self.options.seed
        correct = 0
        for k, b in enumerate(self.batches):
            if scale is None:
                perturbed = perturbations.apply(name, x[b], level, seed=seed + k)
            else:
                perturbed = scale.from_units(perturbations.apply(name, scale.to_units(x[b]), level, seed=seed + k,
                                                                 clip=False))
            correct += int((_predict(self.classifier.model, perturbed) == y[b]).sum())
            self._tick(f"{name} {level:g}")
        return correct / len(x)

    def adversarial(self, eps: float, clean: np.ndarray, examples: list[AdversarialExample]) -> float:
        """Accuracy under FGSM at ``eps``; flipped images are added to ``examples`` (up to ``n_examples``)."""
        x, y, model = self.images.x, self.images.y, self.classifier.model
        correct = 0
        for b in self.batches:
            adv = fgsm(model, x[b], y[b], eps, scale=self.scale)
            pred = _predict(model, adv)
            correct += int((pred == y[b]).sum())
            flipped = np.flatnonzero((clean[b] == y[b]) & (pred != y[b]))
            for j in flipped[: max(0, self.options.n_examples - len(examples))]:
                examples.append(self._example(b.start + int(j), adv[j], int(clean[b.start + int(j)]), int(pred[j]),
                                              eps, len(examples)))
            self._tick(f"FGSM epsilon {eps:g}")
        return correct / len(x)

    def _example(self, i: int, adv: np.ndarray, clean_pred: int, adv_pred: int, eps: float,
                 n: int) -> AdversarialExample:
        names, x, scale = self.classifier.class_names, self.images.x, self.scale
        out = Path(self.options.out_dir) if self.options.out_dir is not None else None
        png = ""
        if out is not None:
            png_path = out / f"fgsm_{n:02d}_eps{eps:g}.png"
            shown = ((x[i], adv) if scale is None else (scale.picture(x[i]), scale.picture(adv)))
            save_png(png_path, _example_png(*shown))
            png = f"{out.name}/{png_path.name}"
        return AdversarialExample(self.images.paths[i], names[self.images.y[i]], names[clean_pred], names[adv_pred],
                                  float(eps), png)


def _units(scale: BandScale | None) -> dict[str, str]:
    units = {**perturbations.LEVEL_UNITS, "fgsm": "epsilon (fraction of 0-255)"}
    if scale is not None:
        units = {**units, "gaussian_noise": "noise sigma (of 255 = a band's 0.5-99.5 percentile range)",
                 "brightness": "shift (fraction of a band's range)", "fgsm": "epsilon (fraction of a band's range)"}
    return units


def robustness_report(classifier, records: Sequence[ImageRecord], options: RobustnessOptions | None = None, *,
                      sink: EventSink = null_sink, cancel: CancelToken | None = None,
                      **fields: Any) -> RobustnessReport:
    """Accuracy of a model on ``records`` clean, perturbed (each level) and under FGSM (each epsilon).

    Parameters
    ----------
    classifier : a :class:`~cnn_studio.predict.predictor.Classifier`: the model, its class names in
        output order, and how its run's pipeline sized images (``image_size``, ``resize``); a
        multi-band run's ``bands`` perturb each band's 0–255-scaled range (module docstring).
    records : labelled images (usually the test or validation split).
    options : :class:`RobustnessOptions`; any of its fields may be given as keywords (``fields``) instead.

    Returns
    -------
    RobustnessReport

    Raises
    ------
    DatasetError
        If no image could be read.
    Cancelled
        If ``cancel`` was set (checked between batches).

    Events emitted
    --------------
    StageChanged, TaskProgress (task "robustness"), LogMessage for unreadable files.
    """

    o = replace(options or RobustnessOptions(), **fields)
    bands = classifier.bands
    scale = BandScale.of(bands) if bands is not None and bands.stats else None
    levels, notes = _levels_and_notes(o.levels, scale)
    images = _read_images(records, classifier, o, sink, cancel)
    steps = [(name, float(level)) for name, lvls in levels.items() for level in lvls]
    measure = _Measurement(classifier, images, o, scale, sink, cancel)
    measure.total = (1 + len(steps) + len(o.epsilons)) * len(measure.batches)
    sink(StageChanged(TASK, "Measuring", f"{len(images.x)} images"))
    clean = measure.clean()
    rows: list[dict[str, Any]] = [{"perturbation": name, "level": level, "accuracy": measure.corrupted(name, level)}
                                  for name, level in steps]
    examples: list[AdversarialExample] = []
    for eps in o.epsilons:
        rows.append({"perturbation": "fgsm", "level": float(eps), "accuracy": measure.adversarial(eps, clean, examples)})
    return RobustnessReport(clean_accuracy=float((clean == images.y).mean()), n_images=len(images.x),
                            rows=tuple(rows), examples=tuple(examples), class_names=tuple(classifier.class_names),
                            skipped=images.skipped, units=_units(scale),
                            epsilon_note=BAND_EPSILON_NOTE if scale is not None else EPSILON_NOTE, notes=tuple(notes))


def _records_for(info, subset: str) -> tuple[str, tuple[ImageRecord, ...]]:
    split = info.split
    if split is None:
        raise RunError(f"The run in {info.root} has no split.json, so there are no held-out images to test.",
                       "Train the model with CNN Studio (it writes split.json), then run the check again.")
    order = ("test", "val", "train") if subset == "auto" else (subset,)
    for name in order:
        recs = split.subset(name)
        if recs:
            return name, recs
    raise DatasetError(f"The run's {' / '.join(order)} split has no images.",
                       "Use --subset train, or make a split with a validation share.")


def run_robustness(run_dir: str | Path, *, subset: str = "auto", sink: EventSink = null_sink,
                   cancel: CancelToken | None = None, **fields: Any) -> RobustnessReport:
    """Run the robustness check on a run folder and save the results there.

    Writes (atomically) ``robustness.json``, ``robustness/accuracy.png`` (accuracy vs level per
    perturbation) and ``robustness/fgsm_*.png`` (clean | adversarial | magnified change).

    Parameters
    ----------
    run_dir : the training run folder.
    subset : "auto" (test, else val, else train), "test", "val" or "train".
    fields : :class:`RobustnessOptions` fields (``max_images``, ``levels``, ``epsilons`` ...); the
        seed is the run's and the example pictures go to the run's robustness folder.

    Raises
    ------
    RunError, DatasetError
        If the run has no model or no images to test.
    Cancelled
        If ``cancel`` was set; robustness.json is then not written.
    """

    info = open_run(run_dir)
    name, records = _records_for(info, subset)
    sink(StageChanged(TASK, "Loading model", str(info.model_path)))
    model = load_model(info.model_path)
    class_names = info.class_names or tuple(str(i) for i in range(int(model.outputs[0].shape[-1])))
    out_dir = info.layout.robustness_dir
    classifier = Classifier(model, class_names, info.image_size, info.config.resize, read_run_bands(info.root))
    options = replace(RobustnessOptions(**fields), seed=info.config.seed, out_dir=out_dir)
    report = robustness_report(classifier, records, options, sink=sink, cancel=cancel)
    plot = info.layout.robustness_plot
    save_plot(report, plot)
    report = replace(report, subset=name, plot=f"{out_dir.name}/{plot.name}")
    write_json(info.layout.robustness, report.to_dict())
    keep = {Path(ex.image).name for ex in report.examples}
    for stale in out_dir.glob("fgsm_*.png"):  # examples of an earlier check, no longer in the report
        if stale.name not in keep:
            stale.unlink(missing_ok=True)
    return report
