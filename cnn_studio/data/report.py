"""A dataset summary for people and for JSON: :class:`DatasetReport` and :func:`build_report`.

The same report backs ``cnn-studio scan`` (text or ``--json``), the Data page and the model card:
classes and counts (per split when there is one), image size/mode/format statistics, the
imbalance ratio, every skipped file with its reason, the findings of :mod:`~cnn_studio.data.checks`
(duplicates, label conflicts, leakage), and how pixels are scaled to 8 bits.

Its :meth:`DatasetReport.headline` names what was found in the data's own terms: "240 images" for
pictures, "240 tiles, 13 bands, uint16" for multi-band arrays (with each band's value range), and
"36 studies, 1,152 slices, 12 patients" for volumes and DICOM series.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from cnn_studio.core.errors import DatasetError
from cnn_studio.data.bands import band_summary
from cnn_studio.data.checks import Finding
from cnn_studio.data.decode import decode_notes
from cnn_studio.data.records import SPLIT_NAMES, DatasetIndex, Split
from cnn_studio.data.split import counts_per_split, leakage_report
from cnn_studio.data.volumes import StudyCounts, study_counts

_REASON_WORDS = {
    "empty": "empty file",
    "not_an_image": "not an image",
    "unreadable": "unreadable",
    "truncated": "truncated",
    "too_large": "too large",
    "unsupported": "unsupported variant",
    "missing": "missing (listed in CSV)",
}


@dataclass
class DatasetReport:
    """Everything a person (or a model card) needs to know about a scanned dataset."""

    root: str
    layout: str
    class_names: list[str]
    counts: dict[str, int]
    n_images: int
    n_skipped: int
    size_stats: dict[str, dict[str, int]]  # {"width": {"min":..,"median":..,"max":..}, "height": {...}}
    modes: dict[str, int]
    formats: dict[str, int]
    imbalance_ratio: float | None
    skipped: list[dict[str, str]]
    notes: list[str]
    scaling_notes: list[str]
    split_counts: dict[str, dict[str, int]] | None = None
    split_source: str | None = None
    groups: int = 0
    leakage: dict[str, list[str]] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    # multi-band arrays (0 bands: pictures)
    bands: int = 0
    dtype: str = ""  # the arrays' sample type ("uint16"); several joined by ", " when they differ
    band_names: list[str] = field(default_factory=list)
    band_ranges: list[dict[str, Any]] = field(default_factory=list)  # [{"band": 1, "name", "min", "max"}]
    # volumes and DICOM series (0 studies: none)
    studies: int = 0
    patients: int = 0  # distinct patient ids among the studies (0: not known)
    study_counts: dict[str, int] = field(default_factory=dict)  # studies per class

    @property
    def unit(self) -> str:
        """What one usable item is called: "slice", "tile" or "image"."""
        return "slice" if self.studies else "tile" if self.bands else "image"

    def headline(self) -> str:
        """What was found, in the data's own terms.

        Examples
        --------
        >>> DatasetReport("d", "class_folders", ["a", "b"], {"a": 120, "b": 120}, 240, 0, {}, {}, {}, 1.0,
        ...               [], [], [], bands=13, dtype="uint16").headline()
        '240 tiles, 13 bands, uint16'
        >>> DatasetReport("d", "class_folders", ["a", "b"], {"a": 576, "b": 576}, 1152, 0, {}, {}, {}, 1.0,
        ...               [], [], [], studies=36, patients=12).headline()
        '36 studies, 1,152 slices, 12 patients'
        """
        if self.studies:
            return StudyCounts(self.studies, self.n_images, self.patients).describe()
        if self.bands:
            return ", ".join(x for x in (_count(self.n_images, "tile"), _count(self.bands, "band"), self.dtype) if x)
        return _count(self.n_images, "image")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain str/int/float/list/dict only)."""
        return asdict(self)

    def to_text(self) -> str:
        """A readable, plain-text table of the report."""
        lines = [f"Dataset: {self.root}", f"Layout: {_LAYOUT_WORDS.get(self.layout, self.layout)}"]
        if self.bands or self.studies:
            lines.append(f"Found: {self.headline()} in {len(self.class_names)} classes, {self.n_skipped} files skipped")
        else:
            lines.append(f"Images: {self.n_images} usable in {len(self.class_names)} classes, {self.n_skipped} skipped")
        if self.groups and not self.studies:
            lines.append(f"Groups (patients/sources): {self.groups}")
        lines.append("")
        lines += _class_table(self)
        if self.imbalance_ratio is not None:
            lines.append(f"Imbalance (largest / smallest class): {self.imbalance_ratio:.1f} : 1")
        if self.size_stats:
            w, h = self.size_stats["width"], self.size_stats["height"]
            lines += ["", "Image size (pixels)   min      median   max",
                      f"  width              {w['min']:<8} {w['median']:<8} {w['max']}",
                      f"  height             {h['min']:<8} {h['median']:<8} {h['max']}"]
        lines.append("Formats: " + ", ".join(f"{k} ({v})" for k, v in self.formats.items()))
        lines.append("Pixel modes: " + ", ".join(f"{k} ({v})" for k, v in self.modes.items()))
        if self.band_ranges:
            lines += ["", f"Bands ({self.dtype}), values in the scanned files:"] + _band_table(self.band_ranges)
        if self.findings:
            lines += ["", "Findings:"]
            for f in self.findings:
                lines.append(f"  [{f['severity'].upper()}] {f['message']}")
                if f.get("hint"):
                    lines.append(f"      -> {f['hint']}")
                for p in f.get("paths", [])[:5]:
                    lines.append(f"      {_rel(p, self.root)}")
                if len(f.get("paths", [])) > 5:
                    lines.append(f"      ... and {len(f['paths']) - 5} more")
        if self.leakage:
            lines += ["", f"Groups in more than one split: {len(self.leakage)}"]
            lines += [f"  {g}: {', '.join(s)}" for g, s in list(self.leakage.items())[:10]]
        if self.skipped:
            lines += ["", f"Skipped files ({len(self.skipped)}):"]
            for s in self.skipped[:50]:
                detail = f" - {s['detail']}" if s.get("detail") else ""
                lines.append(f"  {_rel(s['path'], self.root)}: {_REASON_WORDS.get(s['reason'], s['reason'])}{detail}")
            if len(self.skipped) > 50:
                lines.append(f"  ... and {len(self.skipped) - 50} more (see --json)")
        if self.notes:
            lines += ["", "Notes:"] + [f"  {n}" for n in self.notes]
        if self.bands:
            lines += ["", "How bands are read:", "  - every band keeps its raw values; the model scales each band with "
                      "the mean and spread of the training images (stored in the run, inside the model)",
                      "  - pictures (thumbnails, heat maps) show three bands as red, green and blue, each "
                      "windowed by its 0.5th-99.5th percentiles"]
        else:
            lines += ["", "How pixels are converted to 8-bit RGB:"] + [f"  - {n}" for n in self.scaling_notes
                                                                      if not (self.studies and "middle slice" in n)]
        if self.studies:
            lines += ["", "How volumes are read:", "  - each NIfTI file or DICOM series is one study, cut into 2-D "
                      "slices (the notes above say which were left out)",
                      "  - a slice is windowed over its whole volume (0.5th-99.5th percentile), so the slices of a "
                      "study are comparable and empty slices stay dark",
                      "  - every slice of a study, and every study of a patient, stays in one split"]
        return "\n".join(lines) + "\n"


_LAYOUT_WORDS = {
    "class_folders": "one folder per class",
    "split_folders": "train/val/test folders, each with one folder per class",
    "csv": "CSV manifest (path,label[,group])",
}


def _count(n: int, word: str) -> str:
    """``"1 tile"``, ``"1,152 images"``."""
    return f"{n:,} {word if n == 1 else word + 's'}"


def fmt_value(v: float) -> str:
    """A band value for people: whole numbers with thousands separators, others to 4 significant digits."""
    v = float(v)
    return f"{int(v):,}" if v.is_integer() else f"{v:.4g}"


def _band_table(ranges: list[dict[str, Any]]) -> list[str]:
    width = max([len("name")] + [len(str(r.get("name") or "")) for r in ranges])
    lines = [f"  band  {'name':<{width}}  {'min':>10}  {'max':>10}"]
    for r in ranges:
        lines.append(f"  {r['band']:>4}  {str(r.get('name') or ''):<{width}}  {fmt_value(r['min']):>10}  "
                     f"{fmt_value(r['max']):>10}")
    return lines


def _rel(path: str, root: str) -> str:
    base = root if os.path.isdir(root) else os.path.dirname(root)
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _class_table(r: DatasetReport) -> list[str]:
    width = max([len("Class")] + [len(c) for c in r.class_names])
    unit = f"{r.unit}s"
    studies = (f"  {'studies':>7}", lambda c: f"  {r.study_counts.get(c, 0):>7}",
               f"  {r.studies:>7}") if r.studies else ("", lambda c: "", "")
    if r.split_counts:
        parts = [s for s in SPLIT_NAMES if any(r.split_counts[s].values())]
        head = f"  {'Class':<{width}}{studies[0]}  {unit:>7}" + "".join(f"  {s:>7}" for s in parts)
        rows = [f"  {c:<{width}}{studies[1](c)}  {r.counts[c]:>7}" + "".join(
            f"  {r.split_counts[s][c]:>7}" for s in parts) for c in r.class_names]
        total = f"  {'total':<{width}}{studies[2]}  {r.n_images:>7}" + "".join(
            f"  {sum(r.split_counts[s].values()):>7}" for s in parts)
        source = f"Split: {r.split_source}" if r.split_source else "Split:"
        return [source, head] + rows + [total]
    head = f"  {'Class':<{width}}{studies[0]}  {unit:>7}"
    return [head] + [f"  {c:<{width}}{studies[1](c)}  {r.counts[c]:>7}" for c in r.class_names] + [
        f"  {'total':<{width}}{studies[2]}  {r.n_images:>7}"]


def _stats(values: list[int]) -> dict[str, int]:
    return {"min": min(values), "median": int(statistics.median(values)), "max": max(values)}


def build_report(index: DatasetIndex, split: Split | None = None,
                 findings: list[Finding] | None = None) -> DatasetReport:
    """Summarise a scanned dataset (and its split and check findings, when given).

    Parameters
    ----------
    index
        From :func:`cnn_studio.data.index.scan`.
    split
        From :func:`cnn_studio.data.split.make_split`; adds per-split counts and group leakage.
    findings
        From :func:`cnn_studio.data.checks.run_checks`.

    Returns
    -------
    DatasetReport

    Examples
    --------
    >>> print(build_report(index, split, run_checks(index, split)).to_text())  # doctest: +SKIP
    """
    counts = index.counts()
    recs = index.records
    sized = [r for r in recs if r.width and r.height]
    size_stats = ({"width": _stats([r.width for r in sized]), "height": _stats([r.height for r in sized])}
                  if sized else {})
    nonzero = [n for n in counts.values() if n > 0]
    ratio = round(max(nonzero) / min(nonzero), 2) if len(nonzero) >= 2 else None
    groups = len({r.group for r in recs if r.group})
    arrays = [r for r in recs if r.bands]
    study_label = {r.study: r.label for r in recs if r.study}
    per_class = Counter(index.class_names[label] for label in study_label.values())
    volumes = study_counts(index)
    return DatasetReport(
        root=index.root,
        layout=index.layout,
        class_names=list(index.class_names),
        counts=counts,
        n_images=len(recs),
        n_skipped=len(index.skipped),
        size_stats=size_stats,
        modes=dict(Counter(r.mode for r in recs).most_common()),
        formats=dict(Counter(r.fmt for r in recs).most_common()),
        imbalance_ratio=ratio,
        skipped=[s.to_dict() for s in index.skipped],
        notes=list(index.notes),
        scaling_notes=list(decode_notes()),
        split_counts=counts_per_split(split) if split is not None else None,
        split_source=split.source if split is not None else None,
        groups=groups,
        leakage=leakage_report(split) if split is not None else {},
        findings=[f.to_dict() for f in findings or []],
        bands=index.bands,
        dtype=", ".join(dict.fromkeys(r.dtype for r in arrays if r.dtype)),
        band_names=list(index.band_names),
        band_ranges=_band_ranges(index) if arrays else [],
        studies=volumes.studies,
        patients=volumes.patients,
        study_counts={c: per_class.get(c, 0) for c in index.class_names} if study_label else {},
    )


def _band_ranges(index: DatasetIndex) -> list[dict[str, Any]]:
    """Each band's value range over the scanned arrays: ``[{"band": 1, "name": "B01", "min": .., "max": ..}]``."""
    try:
        stats = band_summary(index.records, names=index.band_names)
    except DatasetError:  # mixed band counts: the checks report that as an error finding
        return []
    return [{"band": b.band, "name": b.name, "min": b.min, "max": b.max, "mean": b.mean} for b in stats]
