"""CSV text from rows that hold file names: every field that needs it is quoted, line breaks included.

Python's ``csv.writer`` quotes a field only for the characters of its own line terminator, so with
``lineterminator="\\n"`` a file name holding a carriage return (``"a\\rb.png"``) was written bare, and
a spreadsheet or ``csv.reader`` saw an extra row. :func:`csv_text` writes each row with ``"\\r\\n"``
as the terminator (so ``\\r`` and ``\\n`` both force quotes) and ends lines with ``"\\n"``; it is what
every CSV written from file names uses (predictions, corrections, skipped files).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any


def csv_line(row: Iterable[Any]) -> str:
    """One CSV line ending in ``"\\n"``; fields with a comma, a quote, ``\\r`` or ``\\n`` are quoted."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(row)
    return buf.getvalue()[:-2] + "\n"


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """The lines of :func:`csv_line` for each row, joined (a header is just the first row)."""
    return "".join(csv_line(r) for r in rows)
