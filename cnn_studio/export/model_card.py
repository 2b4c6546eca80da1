"""The model card written beside every export: what the model is, what it was trained and tested
on, how well it did, what it cannot do, and how to run it (``model_card.json`` + ``MODEL_CARD.md``)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnn_studio import __version__
from cnn_studio.backbones import registry
from cnn_studio.backbones.weights import weights_origin
from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import read_json, write_json, write_text
from cnn_studio.data.bands import read_run_bands
from cnn_studio.data.split import counts_per_split
from cnn_studio.evaluation.review import read_review
from cnn_studio.export.card_results import metrics_lines
from cnn_studio.export.formats import FORMATS
from cnn_studio.export.verify import MAX_ACCURACY_DROP, MAX_DISAGREEMENT, MIN_IMAGES_CHANGED, describe_answers
from cnn_studio.runs.reproducibility import read_reproducibility, reproducibility_summary
from cnn_studio.runs.run_folder import RunInfo, read_metrics, read_robustness

INPUT_SPEC = "raw RGB 0–255 float32, shape [N, H, W, 3], any size (resized inside)"


def input_spec(bands=None) -> str:
    """The card's input line: :data:`INPUT_SPEC` for pictures; for a multi-band run (``bands``: a
    :class:`~cnn_studio.data.bands.BandInfo`) ``"13 bands, raw values (uint16), shape [N, H, W, 13] ..."``."""
    if bands is None:
        return INPUT_SPEC
    names = ", ".join(bands.name(b) for b in range(1, bands.count + 1))
    used = "" if bands.used == tuple(range(1, bands.count + 1)) else (
        "; the model uses bands " + ", ".join(bands.name(b) for b in bands.used))
    return (f"{bands.count} bands, raw values ({bands.dtype or 'any numeric type'}) as float32, shape "
            f"[N, H, W, {bands.count}], any size (resized inside); bands in file order: {names}{used}; each band is "
            "normalised inside the model with the training set's statistics (bands.json)")
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"
_SETTINGS = ("image_size", "batch_size", "epochs", "fine_tune_epochs", "learning_rate", "fine_tune_learning_rate",
             "fine_tune_layers", "optimizer", "label_smoothing", "class_weight", "dropout", "resize", "augment",
             "precision")


@dataclass
class ModelCard:
    """Everything a reader of an exported model needs to know, as plain JSON-able data."""

    name: str
    backbone: str
    weights_source: str
    classes: list[str]
    input_spec: str
    input_size: int
    resize: str
    dataset: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> images
    split: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, Any] = field(default_factory=dict)
    exports: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, str] = field(default_factory=dict)
    known_limits: list[str] = field(default_factory=list)
    label_review: str = ""  # what the label review changed before training (corrections.csv), or ""
    reproducibility: dict[str, Any] = field(default_factory=dict)  # versions, seeds, dataset fingerprint
    notes: list[str] = field(default_factory=list)  # run files left out because they are damaged
    studies: dict[str, Any] = field(default_factory=dict)  # volumes: how slices are cut and a study answered ({} otherwise)
    created: str = ""
    app_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_markdown(self) -> str:
        """The card as Markdown for people: one block of lines per section, in reading order."""
        L = (self._model_lines() + self._data_lines() + self._settings_lines() + self._studies_lines()
             + self._results_lines() + self._reproducibility_lines() + self._exports_lines()
             + ["", "## Known limits", ""] + [f"- {t}" for t in self.known_limits] + self._usage_lines())
        return "\n".join(L).rstrip() + "\n"

    def _model_lines(self) -> list[str]:
        return [f"# Model card: {self.name}", "",
                f"Made with CNN Studio {self.app_version} on {self.created}.", "",
                "## Model", "",
                f"- Backbone: **{self.backbone}**, pretrained weights: {self.weights_source}",
                f"- Classes ({len(self.classes)}), in output order: {', '.join(self.classes)}",
                f"- Input: {self.input_spec}; the model resizes to {self.input_size}×{self.input_size} "
                f"(resize policy used in training: {self.resize})",
                "- Output: one probability per class (softmax), in the order of labels.txt", ""]

    def _data_lines(self) -> list[str]:
        if not self.dataset:
            return []
        L = ["## Data", "", "| split | " + " | ".join(self.classes) + " | total |",
             "|---" * (len(self.classes) + 2) + "|"]
        for name, counts in self.dataset.items():
            if sum(counts.values()):
                L.append(f"| {name} | " + " | ".join(str(counts.get(c, 0)) for c in self.classes)
                         + f" | {sum(counts.values())} |")
        L += ["", "Split: " + ", ".join(f"{k} {v}" for k, v in self.split.items() if v is not None), ""]
        if self.label_review:
            L += [f"Label review: {self.label_review}", ""]
        return L

    def _settings_lines(self) -> list[str]:
        if not self.settings:
            return []
        return ["## Training settings", ""] + [f"- {k}: {v}" for k, v in self.settings.items()] + [""]

    def _studies_lines(self) -> list[str]:
        if not self.studies:
            return []
        v = self.studies
        return ["## Studies (volumes)", "", v["how"], "", f"- Slice axis: {v['slice_axis']}; slices kept: {v['slices']}",
                f"- A study's answer: the {v['aggregate']} of its slices' probabilities", ""]

    def _results_lines(self) -> list[str]:
        L = ["## Results", ""]
        if self.metrics:
            L += metrics_lines(self.metrics, self.input_size)
        else:
            L.append("Not evaluated yet (run `cnn-studio evaluate RUN_DIR` before exporting to include results).")
        if self.robustness:
            r = self.robustness
            L += ["", f"Robustness check on {r.get('n_images')} images: clean accuracy "
                  f"{r.get('clean_accuracy', 0):.4f}."]
            L += [f"- {row['perturbation']} {row['level']}: accuracy {row['accuracy']:.4f}"
                  for row in r.get("rows", [])]
        if self.notes:
            L += [""] + [f"**Left out:** {n}" for n in self.notes]
        return L

    def _reproducibility_lines(self) -> list[str]:
        if not self.reproducibility:
            return []
        r = self.reproducibility
        libs = ", ".join(f"{k} {v}" for k, v in (r.get("libraries") or {}).items())
        return ["", "## Reproducibility", "",
                f"- CNN Studio {r.get('app_version')}, Python {r.get('python')} on {r.get('platform')}",
                f"- Libraries: {libs}",
                f"- Seed {r.get('seed')}, split seed {r.get('split_seed')}",
                f"- Dataset: {r.get('dataset_files')} files, SHA-256 {r.get('dataset_sha256')} "
                "(over every file's path, class and content hash; the list is in the run's reproducibility.json)"]

    def _exports_lines(self) -> list[str]:
        L = ["", "## Exports", ""]
        for e in self.exports:
            L.append(f"- `{e['file']}` ({e['fmt']}, {e.get('quantization', 'float32')}): {export_check(e)}")
        if any(e.get("agreement") is not None for e in self.exports):
            L += ["", f"Quantized exports are judged by their answers: refused when accuracy falls by more than "
                      f"{MAX_ACCURACY_DROP:.0%} points or the top answer changes on more than {MAX_DISAGREEMENT:.0%} "
                      f"of the images (and, either way, on at least {MIN_IMAGES_CHANGED} images)."]
        return L

    def _usage_lines(self) -> list[str]:
        L = ["", "## How to run it", ""]
        for fmt, code in self.usage.items():
            L += [f"### {fmt}", "", "```python", code, "```", ""]
        return L


def export_check(e: dict[str, Any]) -> str:
    """How an export was verified, for people (float32: probabilities; quantized: answers)."""
    if not e.get("verified"):
        return "NOT verified"
    if e.get("agreement") is not None:
        text = "verified: " + describe_answers({"n": e.get("n_judged", 0), **e}, e.get("judged_on", ""))
        text += f"; max |Δ probability| {e['max_abs_diff']:.2g} (reported, not a gate)"
        if e.get("representative_images"):
            text += f"; calibrated on {e['representative_images']} training images"
        return text
    return f"verified, max |Δ probability| {e['max_abs_diff']:.2g} ≤ {e['tolerance']:g} on {e['n_checked']} images"


def _metrics_summary(d: dict[str, Any]) -> dict[str, Any]:
    if not d:
        return {}
    per_class = d.get("per_class", [])
    f1 = [r["f1"] for r in per_class]
    return {"subset": d.get("subset"), "n_images": d.get("n_images"), "accuracy": d.get("accuracy"),
            "loss": d.get("loss"), "macro_f1": sum(f1) / len(f1) if f1 else None,
            "macro_roc_auc": (d.get("roc_auc") or {}).get("macro"), "top_k_accuracy": d.get("top_k_accuracy", {}),
            "per_class": per_class, "confusion": d.get("confusion"), "created": d.get("created"),
            "intervals": d.get("intervals") or {}, "chance": d.get("chance") or {},
            "calibration": {k: v for k, v in (d.get("calibration") or {}).items()},
            "shortcuts": d.get("shortcuts") or {},
            "study": {k: v for k, v in (d.get("study") or {}).items() if k != "studies"}}


def _known_limits(run: RunInfo, input_size: int, exports: list[dict[str, Any]]) -> list[str]:
    limits = [
        f"It only knows the {len(run.class_names)} classes above: any image gets one of them, even an "
        "image of something else entirely.",
        "It was trained on one dataset; images from other devices, sites or conditions may score lower.",
        f"Images are resized to {input_size}×{input_size}; details smaller than that can be lost.",
        "Probabilities are not calibrated risk estimates; check decisions that matter with an expert.",
    ]

    cal = read_review(run.root).get("calibration") or {}
    if cal.get("applied"):
        limits[-1] = (f"Probabilities were calibrated on {cal['n_images']} validation images (temperature "
                      f"{cal['temperature']:.3g}, ECE {cal['ece_before']:.3f} → {cal['ece_after']:.3f}); they are "
                      "still not risk estimates for other data. Check decisions that matter with an expert.")
    if any(e["fmt"] == "tflite" for e in exports):
        limits.append(f"The TFLite export takes a fixed {input_size}×{input_size} input: resize images first.")
    if any(e.get("quantization", "float32") != "float32" for e in exports):
        limits.append("Quantized exports trade a little accuracy for size; see how often they give the trained "
                      "model's answer and their accuracy above.")
    if study_facts(run):
        limits.append("It answers per slice; a study's answer is only as good as the slices it is given: feed the "
                      "same kind of volumes (sequence, orientation, resolution) cut and windowed as described above.")
    bands = read_run_bands(run.root)
    if bands is not None:
        limits.append(f"It takes {bands.count}-band images with the bands in the same order and units as its "
                      f"training tiles ({bands.dtype}); tiles from another sensor or processing level need the same "
                      "band order and scaling.")
    if any(e.get("quantization") == "int8_full" for e in exports):
        limits.append("The full-integer TFLite export takes uint8 pixels (0–255) and gives uint8 outputs: "
                      "divide them by 256 for probabilities.")
    return limits


def study_facts(run: RunInfo) -> dict[str, Any]:
    """How a volume run's model is fed and how a study is answered, for people deploying it ({} for pictures)."""
    if run.split is None or not any(r.study for part in ("train", "val", "test") for r in run.split.subset(part)):
        return {}
    from cnn_studio.data.medical import WINDOW_PERCENTILES  # pydicom + nibabel: only for volume runs

    cfg = run.config
    lo, hi = WINDOW_PERCENTILES
    how = (f"The model classifies one 2-D slice at a time. To use it outside CNN Studio, cut the volume into slices "
           f"across axis {cfg.slice_axis} of the array as stored, turn each slice with numpy.rot90 (90 degrees "
           f"counter-clockwise), window each slice over its WHOLE volume (the volume's {lo:g}th percentile "
           f"black, its {hi:g}th white, linear in between, as 0–255), repeat the grey slice into 3 channels, classify "
           f"every slice, and take the {cfg.study_aggregate} of the slices' probabilities as the study's answer.")
    return {"slice_axis": cfg.slice_axis, "slices": cfg.slices, "aggregate": cfg.study_aggregate,
            "window_percentiles": [lo, hi], "how": how}


def _optional(read, run: RunInfo, notes: list[str]) -> dict[str, Any] | None:
    """An optional run file through its checked reader; a damaged one is left out with a note saying so."""
    try:
        return read(run.layout)
    except RunError as exc:
        notes.append(exc.message)
        return None


def build_card(run: RunInfo, exports: list[dict[str, Any]], input_size: int) -> ModelCard:
    """The card of ``run`` listing ``exports`` (``{fmt, file, quantization, verified, max_abs_diff, ...}``).

    Reads the run's metrics.json and robustness.json when present.
    """

    cfg = run.config
    dataset: dict[str, dict[str, int]] = {}
    split_info: dict[str, Any] = {}
    label_review = ""
    if run.split is not None:
        dataset = counts_per_split(run.split)
        split_info = {"seed": run.split.seed, "val_fraction": run.split.val_fraction,
                      "test_fraction": run.split.test_fraction, "source": run.split.source,
                      "group_by": run.split.group_by}
        review = (run.split.info or {}).get("corrections") or {}
        split_info["labels_changed"] = int(review.get("labels_changed", 0))
        label_review = str(review.get("summary", "")) if review.get("labels_changed") or review.get("excluded") else ""
    notes: list[str] = []
    metrics = _metrics_summary(_optional(read_metrics, run, notes) or {})
    robustness = _optional(read_robustness, run, notes) or {}
    reproducibility = reproducibility_summary(_optional(lambda layout: read_reproducibility(layout.root), run, notes))
    bands = read_run_bands(run.root)
    n_bands = bands.count if bands is not None else 0
    studies = study_facts(run)
    usage = {FORMATS[e["fmt"]].label + ("" if e.get("quantization", "float32") == "float32" else f" ({e['quantization']})"):
             FORMATS[e["fmt"]].snippet(e["file"], input_size, e.get("quantization", "float32"), bands=n_bands)
             for e in exports}
    settings = {k: v for k, v in cfg.to_dict().items() if k in _SETTINGS}
    choice = run.weights
    weights = choice.value
    if choice.kind == "imagenet":
        origin = weights_origin(registry.get(cfg.backbone), input_size)
        weights = f"ImageNet (Keras Applications{', ' + origin if origin else ''})"
    elif choice.kind == "none":
        weights = "none (trained from scratch)"
    return ModelCard(
        name=run.root.name, backbone=cfg.backbone, weights_source=weights, classes=list(run.class_names),
        input_spec=input_spec(bands), input_size=input_size, resize=cfg.resize, dataset=dataset, split=split_info,
        settings=settings, metrics=metrics, robustness=robustness, exports=exports, usage=usage,
        known_limits=_known_limits(run, input_size, exports), label_review=label_review,
        reproducibility=reproducibility, notes=notes, studies=studies,
        created=_dt.datetime.now().astimezone().isoformat(timespec="seconds"))


def previous_exports(out_dir: Path) -> list[dict[str, Any]]:
    """Exports listed by an existing card in ``out_dir`` whose files are still there."""
    path = Path(out_dir) / CARD_JSON
    if not path.exists():
        return []
    try:
        exports = read_json(path).get("exports", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [e for e in exports if (Path(out_dir) / e.get("file", "")).exists()]


def write_card(card: ModelCard, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``model_card.json`` and ``MODEL_CARD.md`` atomically into ``out_dir``."""
    out = Path(out_dir)
    return write_json(out / CARD_JSON, card.to_dict()), write_text(out / CARD_MD, card.to_markdown())
