"""The CSV report: one row per position held on the anchor date, the 34 columns of :data:`CSV_COLUMNS`.

Values are the JSON's strings (money 2 decimals, Greeks 4, ratios 6, quantities as stored); a missing value
is an empty cell. Rows end with "\\n"; cells are quoted only when they must be (``csv.QUOTE_MINIMAL``).
"""

from __future__ import annotations

import csv
import io

from .sections import CSV_COLUMNS, ReportSections

__all__ = ["CSV_COLUMNS", "csv_text"]


def csv_text(sec: ReportSections | list[dict]) -> str:
    """The CSV text of a report's positions (its sections, or the position rows themselves)."""
    rows = sec.positions if isinstance(sec, ReportSections) else sec
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return buf.getvalue()
