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

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.errors import DatasetError, ImageReadError, RunError
from cnn_studio.core.events import EventSink, LogMessage, StageChanged, TaskProgress, null_sink
from cnn_studio.core.fsutil import atomic_path, write_json
from cnn_studio.data.bands import BandInfo, composite, read_run_bands
from cnn_studio.data.pipeline import load_image
from cnn_studio.data.records import ImageRecord
from cnn_studio.explain import perturbations
from cnn_studio.explain.feature_maps import LayerTap
from cnn_studio.runs.run_folder import load_model, open_run

TASK = "robustness"
DEFAULT_EPSILONS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.03)
EPSILON_NOTE = "epsilon is a fraction of the 0-255 pixel range: each pixel moves by at most epsilon x 255"
BAND_EPSILON_NOTE = ("epsilon is a fraction of each band's range (its 0.5-99.5 percentiles in the training set): "
                     "each value moves by at most epsilon x that range")


@dataclass(frozen=True)
class BandScale:
    """Raw band values ↔ a 0–255 scale per band (``low`` → 0, ``high`` → 255), for perturbing multi-band images."""

    low: np.ndarray
    span: np.ndarray
    rgb: tuple[int, int, int]

    @classmethod
    def of(cls, bands: BandInfo) -> BandScale:
        low = np.array([s.low for s in bands.stats], np.float32)
        high = np.array([s.high for s in bands.stats], np.float32)
        fallback = np.array([max(s.max - s.min, 1e-6) for s in bands.stats], np.float32)
        span = np.where(high > low, high - low, fallback).astype(np.float32)
        return cls(low, span, bands.rgb)

    def to_units(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.low) / self.span * 255.0).astype(np.float32)

    def from_units(self, u: np.ndarray) -> np.ndarray:
        return (u / 255.0 * self.span + self.low).astype(np.float32)

    def picture(self, x: np.ndarray) -> np.ndarray:
        """The RGB composite of one image, float 0–255 (for the example PNGs)."""
        windows = list(zip(self.low.tolist(), (self.low + self.span).tolist(), strict=True))
        return composite(x, self.rgb, windows).astype(np.float32)


def fgsm(model, images: np.ndarray, labels: Sequence[int], epsilon: float, *, scale: BandScale | None = None) -> np.ndarray:
    """White-box Fast Gradient Sign Method on raw pixels: ``clip(x + epsilon·255·sign(∇x loss), 0, 255)``.

    Parameters
    ----------
    model : the classifier (raw RGB 0–255 in).
    images : float ``(N, H, W, 3)`` raw pixels.
    labels : the true class of each image.
    epsilon : step as a fraction of the 0–255 range (0.01 → at most 2.55 grey levels per pixel).

    scale : for a multi-band model: each band moves by at most ``epsilon`` × its range, unclipped.

    Returns
    -------
    numpy.ndarray
        float32 adversarial images, same shape, in [0, 255] (raw band values with ``scale``).
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(images, np.float32))
    y = tf.convert_to_tensor(np.asarray(labels, np.int64))
    tap = LayerTap(model, model.layers[-1].name)
    with tf.GradientTape() as tape:
        tape.watch(x)
        _, out = tap(x, logits=True)
        out = tf.cast(out, tf.float32)
        if tap.gives_logits:  # from logits: the gradient survives a saturated softmax
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out)
        else:
            loss = -tf.math.log(tf.clip_by_value(tf.gather(out, y, batch_dims=1), 1e-12, 1.0))
    grad = tape.gradient(loss, x)
    if scale is not None:
        return (x + float(epsilon) * tf.constant(scale.span) * tf.sign(grad)).numpy().astype(np.float32)
    adv = x + float(epsilon) * 255.0 * tf.sign(grad)
    return tf.clip_by_value(adv, 0.0, 255.0).numpy().astype(np.float32)


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


def _save_png(path: Path, image: np.ndarray) -> None:

    with atomic_path(path) as tmp:
        Image.fromarray(image, "RGB").save(tmp, format="PNG")


def robustness_report(model, records: Sequence[ImageRecord], class_names: Sequence[str], *, image_size: int,
                      resize: str = "stretch", levels: dict[str, Sequence[float]] | None = None,
                      epsilons: Sequence[float] = DEFAULT_EPSILONS, max_images: int = 200,
                      batch_size: int = 32, n_examples: int = 4, seed: int = 0, out_dir: str | Path | None = None,
                      sink: EventSink = null_sink, cancel: CancelToken | None = None,
                      bands: BandInfo | None = None) -> RobustnessReport:
    """Accuracy of ``model`` on ``records`` clean, perturbed (each level) and under FGSM (each epsilon).

    Parameters
    ----------
    model : the classifier.
    records : labelled images (usually the test or validation split).
    class_names : names in output order.
    image_size, resize : how the run's pipeline sized images.
    levels : perturbation name → levels (default :data:`perturbations.DEFAULT_LEVELS`).
    epsilons : FGSM steps as fractions of the 0–255 range.
    max_images : at most this many records are used (a seeded sample).
    n_examples : how many flipped FGSM examples to keep; their PNGs go to ``out_dir`` if given.
    bands : a multi-band run's band info: perturbations on each band's 0–255-scaled range (module docstring).

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

    levels = dict(perturbations.DEFAULT_LEVELS if levels is None else levels)
    scale = BandScale.of(bands) if bands is not None and bands.stats else None
    notes: list[str] = []
    if scale is not None:
        for name, why in perturbations.PICTURE_ONLY.items():
            if levels.pop(name, None) is not None:
                notes.append(f"{name} left out: {why}.")
    chosen = _choose(records, max_images, seed)
    sink(StageChanged(TASK, "Loading images", f"{len(chosen)} images"))
    images, labels, paths, skipped = [], [], [], 0
    for rec in chosen:
        raise_if_cancelled(cancel)
        try:
            images.append(load_image(rec.key, image_size, resize))
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
    x_all = np.stack(images).astype(np.float32)
    y_all = np.asarray(labels, np.int64)
    batches = [slice(i, i + batch_size) for i in range(0, len(x_all), batch_size)]
    steps = [(name, float(level)) for name, lvls in levels.items() for level in lvls]
    total = (1 + len(steps) + len(epsilons)) * len(batches)
    done = 0

    def tick(detail: str) -> None:
        nonlocal done
        done += 1
        sink(TaskProgress(TASK, done, total, detail))
        raise_if_cancelled(cancel)

    sink(StageChanged(TASK, "Measuring", f"{len(x_all)} images"))
    clean = np.empty(len(x_all), np.int64)
    for b in batches:
        clean[b] = _predict(model, x_all[b])
        tick("clean images")
    clean_acc = float((clean == y_all).mean())
    rows: list[dict[str, Any]] = []
    for name, level in steps:
        correct = 0
        for k, b in enumerate(batches):
            if scale is None:
                perturbed = perturbations.apply(name, x_all[b], level, seed=seed + k)
            else:
                perturbed = scale.from_units(perturbations.apply(name, scale.to_units(x_all[b]), level, seed=seed + k,
                                                                 clip=False))
            correct += int((_predict(model, perturbed) == y_all[b]).sum())
            tick(f"{name} {level:g}")
        rows.append({"perturbation": name, "level": level, "accuracy": correct / len(x_all)})
    examples: list[AdversarialExample] = []
    out = Path(out_dir) if out_dir is not None else None
    for eps in epsilons:
        correct = 0
        for b in batches:
            adv = fgsm(model, x_all[b], y_all[b], eps, scale=scale)
            pred = _predict(model, adv)
            correct += int((pred == y_all[b]).sum())
            flipped = np.flatnonzero((clean[b] == y_all[b]) & (pred != y_all[b]))
            for j in flipped[: max(0, n_examples - len(examples))]:
                i = b.start + int(j)
                png = ""
                if out is not None:
                    png_path = out / f"fgsm_{len(examples):02d}_eps{eps:g}.png"
                    shown = ((x_all[i], adv[j]) if scale is None else (scale.picture(x_all[i]), scale.picture(adv[j])))
                    _save_png(png_path, _example_png(*shown))
                    png = f"{out.name}/{png_path.name}"
                examples.append(AdversarialExample(paths[i], class_names[y_all[i]], class_names[clean[i]],
                                                   class_names[int(pred[j])], float(eps), png))
            tick(f"FGSM epsilon {eps:g}")
        rows.append({"perturbation": "fgsm", "level": float(eps), "accuracy": correct / len(x_all)})
    units = {**perturbations.LEVEL_UNITS, "fgsm": "epsilon (fraction of 0-255)"}
    if scale is not None:
        units = {**units, "gaussian_noise": "noise sigma (of 255 = a band's 0.5-99.5 percentile range)",
                 "brightness": "shift (fraction of a band's range)", "fgsm": "epsilon (fraction of a band's range)"}
    return RobustnessReport(clean_accuracy=clean_acc, n_images=len(x_all), rows=tuple(rows),
                            examples=tuple(examples), class_names=tuple(class_names), skipped=skipped, units=units,
                            epsilon_note=BAND_EPSILON_NOTE if scale is not None else EPSILON_NOTE, notes=tuple(notes))


def _level_label(value: float) -> str:
    return f"{value:g}"


def draw_plot(report: RobustnessReport, *, panel: tuple[int, int] = (300, 200)) -> np.ndarray:
    """Accuracy vs level, one panel per perturbation (FGSM last), drawn with Pillow: uint8 RGB.

    Levels are evenly spaced in the order they were tried; the dashed line is clean accuracy.
    """

    names = list(dict.fromkeys(r["perturbation"] for r in report.rows))
    cols = 3
    rows_n = max(1, -(-len(names) // cols))
    pw, ph = panel
    img = Image.new("RGB", (cols * pw, rows_n * ph), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 36, 12, 22, 30
    for n, name in enumerate(names):
        ox, oy = (n % cols) * pw, (n // cols) * ph
        x0, x1, y0, y1 = ox + left, ox + pw - right, oy + top, oy + ph - bottom
        pts = [r for r in report.rows if r["perturbation"] == name]
        draw.text((ox + left, oy + 4), name.replace("_", " "), fill="black")
        draw.rectangle([x0, y0, x1, y1], outline=(160, 160, 160))
        for frac in (0.0, 0.5, 1.0):
            y = y1 - frac * (y1 - y0)
            draw.line([x0 - 3, y, x0, y], fill="black")
            draw.text((ox + 4, y - 6), f"{frac:.1f}", fill="black")
        yc = y1 - report.clean_accuracy * (y1 - y0)
        for xs in range(int(x0), int(x1), 8):
            draw.line([xs, yc, min(xs + 4, x1), yc], fill=(120, 120, 120))

        def x_of(i: int, count: int, lo: float = x0 + 12, hi: float = x1 - 12) -> float:
            return (lo + hi) / 2 if count == 1 else lo + i * (hi - lo) / (count - 1)

        xy = [(x_of(i, len(pts)), y1 - float(r["accuracy"]) * (y1 - y0)) for i, r in enumerate(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=(31, 119, 180), width=2)
        for (x, y), r in zip(xy, pts, strict=True):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(31, 119, 180))
            draw.text((x - 10, y1 + 4), _level_label(float(r["level"])), fill="black")
    return np.asarray(img)


def save_plot(report: RobustnessReport, path: str | Path) -> Path:
    """Draw :func:`draw_plot` and write it atomically as PNG."""
    path = Path(path)
    _save_png(path, draw_plot(report))
    return path


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


def run_robustness(run_dir: str | Path, *, subset: str = "auto", max_images: int = 200,
                   levels: dict[str, Sequence[float]] | None = None, epsilons: Sequence[float] = DEFAULT_EPSILONS,
                   sink: EventSink = null_sink, cancel: CancelToken | None = None) -> RobustnessReport:
    """Run the robustness check on a run folder and save the results there.

    Writes (atomically) ``robustness.json``, ``robustness/accuracy.png`` (accuracy vs level per
    perturbation) and ``robustness/fgsm_*.png`` (clean | adversarial | magnified change).

    Parameters
    ----------
    run_dir : the training run folder.
    subset : "auto" (test, else val, else train), "test", "val" or "train".

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
    image_size = info.image_size
    class_names = info.class_names or tuple(str(i) for i in range(int(model.outputs[0].shape[-1])))
    out_dir = info.layout.robustness_dir
    report = robustness_report(model, records, class_names, image_size=image_size, resize=info.config.resize,
                               levels=levels, epsilons=epsilons, max_images=max_images, seed=info.config.seed,
                               out_dir=out_dir, sink=sink, cancel=cancel, bands=read_run_bands(info.root))
    plot = info.layout.robustness_plot
    save_plot(report, plot)
    report = replace(report, subset=name, plot=f"{out_dir.name}/{plot.name}")
    write_json(info.layout.robustness, report.to_dict())
    keep = {Path(ex.image).name for ex in report.examples}
    for stale in out_dir.glob("fgsm_*.png"):  # examples of an earlier check, no longer in the report
        if stale.name not in keep:
            stale.unlink(missing_ok=True)
    return report
