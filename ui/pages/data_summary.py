"""The Data step's words about what was read: the summary line above the class table and the banner
(an error or a warning, with what to do)."""

from __future__ import annotations

from html import escape

from cnn_studio.ui.messages import severity_colour

from cnn_studio.data.prepare import Prepared


def summary_html(result: Prepared) -> str:
    """The line above the class table: what was found ("240 tiles, 13 bands, uint16"; "36 studies, 1,152
    slices, 12 patients"; "16 images"), in how many classes, how it is divided, what was skipped."""
    index, report, split = result.index, result.report, result.split
    counts = index.counts()
    n = sum(counts.values())
    found = report.headline() if report is not None else f"{n:,} images"
    parts = [f"<b>{escape(found)}</b> in <b>{len(counts)} classes</b> from <code>{escape(index.root)}</code>"]
    if split is not None:
        unit = report.unit if report is not None else "image"
        if index.studies:
            def studies(recs) -> str:
                k = len({r.study for r in recs if r.study})
                return f"{len(recs):,} slices ({k:,} {'study' if k == 1 else 'studies'})"
            parts.append(f"{studies(split.train)} to train on, {studies(split.val)} to validate"
                         + (f", {studies(split.test)} to test" if split.test else ""))
        else:
            word = "" if unit == "image" else f" {unit}s"
            parts.append(f"{len(split.train):,}{word} to train on, {len(split.val):,} to validate"
                         + (f", {len(split.test):,} to test" if split.test else ""))
    if index.skipped:
        parts.append(f"{len(index.skipped):,} file(s) skipped (listed on the right)")
    return " · ".join(parts)


def banner_html(text: str, hint: str, severity: str) -> str:
    """The banner's text: ``text`` in the severity's colour, then what to do (``hint``)."""
    colour = severity_colour(severity).name()
    return f"<b style='color:{colour}'>{escape(text)}</b>" + (f"<br>What to do: {escape(hint)}" if hint else "")
