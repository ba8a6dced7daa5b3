"""Report sections: each section of a report built from a :class:`ReportInput`, once, for every output.

Reports only format what the warehouse holds (DESIGN.md). Availability is decided ONCE (in
:class:`Anchored`) and the Markdown, the JSON and the CSV are all rendered from the one
:class:`ReportSections` that :func:`build_sections` builds, so they cannot disagree.

- :mod:`.layout`      engines, required sections, charts, CSV columns, factor order, field groups;
- :mod:`.anchored`    the input restricted to its anchor date, engine availability, held positions;
- :mod:`.risk`        exposures, Greeks, factor exposures, rate sensitivity, correlations, snapshot;
- :mod:`.groups`      exposures by tag (strategy) and by underlying (part of the exposures section);
- :mod:`.stress`      stress results with their scenarios, worst and best five;
- :mod:`.risk_measures` VaR and ES, volatility and tracking error, contributions, the VaR backtest;
- :mod:`.performance` performance windows, today's and cumulative P&L attribution, the drawdown path;
- :mod:`.positions`   the position rows (CSV and JSON) and their summary;
- :mod:`.chart_plan`  which charts are drawn and their data;
- :mod:`.quality`     the data-quality flags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from ..inputs import ReportInput
from .anchored import Anchored, anchor_rows, engine_availability
from .chart_plan import chart_plan
from .layout import (
    CHARTS,
    CSV_COLUMNS,
    ENGINE_LABELS,
    ENGINES,
    EXPOSURE_COUNTS,
    EXPOSURE_MONEY,
    FACTOR_ORDER,
    GREEK_NAMES,
    OPTIONAL_SECTIONS,
    REQUIRED_SECTIONS,
)
from .performance import performance_section
from .risk_measures import risk_measures_section
from .positions import position_rows, positions_summary
from .quality import QualityFlags, quality_flags
from .risk import (
    correlation_section,
    exposures_section,
    factor_section,
    greeks_section,
    rate_section,
    snapshot_section,
)
from .stress import ranked, stress_rows, stress_section

__all__ = [
    "ENGINES",
    "ENGINE_LABELS",
    "REQUIRED_SECTIONS",
    "OPTIONAL_SECTIONS",
    "CHARTS",
    "CSV_COLUMNS",
    "FACTOR_ORDER",
    "EXPOSURE_COUNTS",
    "EXPOSURE_MONEY",
    "GREEK_NAMES",
    "Anchored",
    "QualityFlags",
    "ReportSections",
    "build_sections",
    "engine_availability",
    "anchor_rows",
]


@dataclass
class ReportSections:
    """Every section of one report, built once; the Markdown, JSON and CSV are rendered from it.

    ``engines``: engine -> its JSON ``data`` (None when not available); ``as_of``: engine -> the dates of
    its rows; ``rows``: the raw anchor-date row (or None) of the one-row sections the Markdown shows
    (``snapshot``, ``exposures``, ``correlation_summary``, ``portfolio_rates``); ``stress``: every
    scenario row (with the private ``_`` keys), ``worst``/``best`` five of them; ``top_contributors``: the
    five largest risk contributors (with their private ``_`` ranking keys); ``positions``: the CSV rows;
    ``charts``: chart file -> (drawn, reason), ``chart_data``: the data of each chart drawn.
    """

    anchored: Anchored = field(repr=False)
    generated_at: dt.datetime
    availability: dict[str, tuple[bool, str | None]]
    engines: dict[str, dict | None]
    as_of: dict[str, list[str]]
    rows: dict[str, dict | None]
    stress: list[dict]
    worst: list[dict]
    best: list[dict]
    top_contributors: list[dict]
    positions: list[dict]
    positions_summary: dict
    charts: dict[str, tuple[bool, str | None]]
    chart_data: dict[str, pd.DataFrame] = field(repr=False)
    flags: QualityFlags

    @property
    def inp(self) -> ReportInput:
        return self.anchored.inp

    @property
    def anchor_date(self) -> dt.date:
        return self.anchored.anchor

    @property
    def anchor_iso(self) -> str:
        return self.anchored.anchor_iso

    @property
    def generated_iso(self) -> str:
        return self.generated_at.isoformat(timespec="seconds")


def build_sections(inp: ReportInput, generated_at: dt.datetime) -> ReportSections:
    """Every section of the report of ``inp`` (nothing is read or written); a naive time is taken as UTC."""
    if generated_at.tzinfo is None:
        generated_at = generated_at.replace(tzinfo=dt.timezone.utc)
    a = Anchored(inp)
    stress = stress_rows(a)
    worst, best = ranked(stress)
    flags = quality_flags(a, stress)
    positions = position_rows(a)
    plan, chart_data = chart_plan(a, stress)
    risk_data, top = risk_measures_section(a)
    engines = {
        "exposures": exposures_section(a),
        "greeks": greeks_section(a),
        "factor_exposures": factor_section(a),
        "rate_sensitivity": rate_section(a),
        "correlations": correlation_section(a),
        "stress_tests": stress_section(a, stress, worst, best),
        "snapshot": snapshot_section(a),
        "risk_measures": risk_data,
        "performance": performance_section(a),
    }
    return ReportSections(
        anchored=a,
        generated_at=generated_at,
        availability=dict(a.availability),
        engines=engines,
        as_of={e: a.as_of(e) for e in ENGINES},
        rows={s: a.one_row(s) for s in ("snapshot", "exposures", "correlation_summary", "portfolio_rates")},
        stress=stress,
        worst=worst,
        best=best,
        top_contributors=top,
        positions=positions,
        positions_summary=positions_summary(a, positions),
        charts=plan,
        chart_data=chart_data,
        flags=flags,
    )
