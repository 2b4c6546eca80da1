"""A dataset summary for people and for JSON: :class:`DatasetReport` and :func:`build_report`.

The same report backs ``cnn-studio scan`` (text or ``--json``), the Data page and the model card:
classes and counts (per split when there is one), image size/mode/format statistics, the
imbalance ratio, every skipped file with its reason, the findings of :mod:`~cnn_studio.data.checks`
(duplicates, label conflicts, leakage), and how pixels are scaled to 8 bits.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from cnn_studio.data.checks import Finding
from cnn_studio.data.decode import decode_notes
from cnn_studio.data.records import SPLIT_NAMES, DatasetIndex, Split
from cnn_studio.data.split import counts_per_split, leakage_report

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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain str/int/float/list/dict only)."""
        return asdict(self)

    def to_text(self) -> str:
        """A readable, plain-text table of the report."""
        lines = [f"Dataset: {self.root}", f"Layout: {_LAYOUT_WORDS.get(self.layout, self.layout)}",
                 f"Images: {self.n_images} usable in {len(self.class_names)} classes, {self.n_skipped} skipped"]
        if self.groups:
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
        lines += ["", "How pixels are converted to 8-bit RGB:"] + [f"  - {n}" for n in self.scaling_notes]
        return "\n".join(lines) + "\n"


_LAYOUT_WORDS = {
    "class_folders": "one folder per class",
    "split_folders": "train/val/test folders, each with one folder per class",
    "csv": "CSV manifest (path,label[,group])",
}


def _rel(path: str, root: str) -> str:
    base = root if os.path.isdir(root) else os.path.dirname(root)
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _class_table(r: DatasetReport) -> list[str]:
    width = max([len("Class")] + [len(c) for c in r.class_names])
    if r.split_counts:
        parts = [s for s in SPLIT_NAMES if any(r.split_counts[s].values())]
        head = f"  {'Class':<{width}}  {'images':>7}" + "".join(f"  {s:>7}" for s in parts)
        rows = [f"  {c:<{width}}  {r.counts[c]:>7}" + "".join(f"  {r.split_counts[s][c]:>7}" for s in parts)
                for c in r.class_names]
        total = f"  {'total':<{width}}  {r.n_images:>7}" + "".join(
            f"  {sum(r.split_counts[s].values()):>7}" for s in parts)
        source = f"Split: {r.split_source}" if r.split_source else "Split:"
        return [source, head] + rows + [total]
    head = f"  {'Class':<{width}}  {'images':>7}"
    return [head] + [f"  {c:<{width}}  {r.counts[c]:>7}" for c in r.class_names] + [
        f"  {'total':<{width}}  {r.n_images:>7}"]


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
    )
