"""One report built: its sections (:mod:`.sections`) rendered to Markdown, JSON and CSV, plus its chart plan.

Availability is decided once, in the sections, and every output is rendered from that one map, so the
Markdown and the JSON cannot disagree. Nothing is read or written here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from .csv_report import csv_text
from .inputs import ReportInput
from .json_report import report_document
from .markdown import render_markdown
from .sections import build_sections

__all__ = ["RenderedReport", "build_report"]


@dataclass
class RenderedReport:
    """One rendered report. ``availability`` is the single map both ``markdown`` and ``json`` came from.

    ``charts``: chart file -> (to be produced, reason when not); ``chart_data``: the frames the charts
    plot (already restricted to the anchor date / history up to it), consumed by
    :func:`sigmasight_pipeline.reporting.charts.render_charts`.
    """

    markdown: str
    json: dict
    csv: str
    availability: dict[str, tuple[bool, str | None]]
    charts: dict[str, tuple[bool, str | None]] = field(default_factory=dict)
    chart_data: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    anchor_date: dt.date | None = None

    @property
    def engines_available(self) -> int:
        return sum(1 for ok, _ in self.availability.values() if ok)

    @property
    def engines_missing(self) -> int:
        return sum(1 for ok, _ in self.availability.values() if not ok)

    @property
    def chart_files(self) -> list[str]:
        """The chart files this report links to (those to be written beside it)."""
        return [name for name, (ok, _) in self.charts.items() if ok]


def build_report(inp: ReportInput, generated_at: dt.datetime) -> RenderedReport:
    """Render one report (Markdown, JSON dict, CSV text, chart plan) from ``inp``; nothing is read or written."""
    sec = build_sections(inp, generated_at)
    return RenderedReport(
        markdown=render_markdown(sec),
        json=report_document(sec),
        csv=csv_text(sec),
        availability=dict(sec.availability),
        charts=sec.charts,
        chart_data=sec.chart_data,
        anchor_date=sec.anchor_date,
    )
