"""What a report is made of: :class:`ReportInput`, read from the warehouse for ONE portfolio and ONE date.

Every section frame holds the rows of its warehouse table for the anchor date (the partition date) and
nothing else. A section with no rows for that date is *not available*; the report says so with the reason
(``no rows in position_greeks for 2025-03-14``). Nothing ever falls back to another date: the only frame
that spans several dates is ``snapshot_history`` (the cumulative P&L chart), and it stops at the anchor
date. Column names are those of :mod:`sigmasight_pipeline.warehouse.schema`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame, read_table
from sigmasight_pipeline.warehouse.portfolios import get_portfolio, read_positions

__all__ = [
    "SECTION_TABLES",
    "DATED_SECTIONS",
    "ReportInput",
    "load_report_input",
    "load_report_inputs",
    "as_date",
]

#: ReportInput attribute -> the warehouse table its rows come from (used in "not available" reasons).
SECTION_TABLES: dict[str, str] = {
    "valuations": schema.position_valuations.name,
    "exposures": schema.portfolio_exposures.name,
    "greeks": schema.position_greeks.name,
    "position_factors": schema.position_factor_exposures.name,
    "portfolio_factors": schema.portfolio_factor_exposures.name,
    "factor_window": schema.factor_regression_windows.name,
    "position_rates": schema.position_rate_sensitivity.name,
    "portfolio_rates": schema.portfolio_rate_sensitivity.name,
    "correlation_summary": schema.correlation_summaries.name,
    "correlation_clusters": schema.correlation_clusters.name,
    "stress_results": schema.stress_results.name,
    "stress_breakdown": schema.stress_factor_breakdown.name,
    "snapshot": schema.portfolio_snapshots.name,
    "position_pnl": schema.position_daily_pnl.name,
}

#: Sections whose every row must carry ``date == anchor_date``.
DATED_SECTIONS: tuple[str, ...] = tuple(SECTION_TABLES)

_TABLES = {
    "valuations": schema.position_valuations,
    "exposures": schema.portfolio_exposures,
    "greeks": schema.position_greeks,
    "position_factors": schema.position_factor_exposures,
    "portfolio_factors": schema.portfolio_factor_exposures,
    "factor_window": schema.factor_regression_windows,
    "position_rates": schema.position_rate_sensitivity,
    "portfolio_rates": schema.portfolio_rate_sensitivity,
    "correlation_summary": schema.correlation_summaries,
    "correlation_clusters": schema.correlation_clusters,
    "stress_results": schema.stress_results,
    "stress_breakdown": schema.stress_factor_breakdown,
    "snapshot": schema.portfolio_snapshots,
    "position_pnl": schema.position_daily_pnl,
}


def as_date(value) -> dt.date:
    """A date from a ``date``, ``datetime``, pandas ``Timestamp`` or ISO string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass
class ReportInput:
    """Everything one report formats, for one portfolio and one anchor date.

    ``positions``: the ``positions`` table as :func:`read_positions` returns it (``tags`` a tuple,
    ``sector``/``industry`` from the security master). The section frames are the warehouse rows of
    the anchor date; ``snapshot_history`` is ``portfolio_snapshots`` up to and including it.
    ``scenarios``: the stored stress scenarios (``scenario_id, name, category, severity`` and, when read
    from the warehouse, ``display_order``). ``failed_checks``: descriptions of asset checks that failed
    upstream (filled by the caller). ``flags``: extra data-quality notes from the caller (market-data
    gaps, ...); the report derives the standard flags (limited history, missing prices, model prices,
    Greeks and stress flags) from the rows themselves.
    """

    portfolio: dict
    anchor_date: dt.date
    positions: pd.DataFrame = field(default_factory=_empty)
    valuations: pd.DataFrame = field(default_factory=_empty)
    exposures: pd.DataFrame = field(default_factory=_empty)
    greeks: pd.DataFrame = field(default_factory=_empty)
    position_factors: pd.DataFrame = field(default_factory=_empty)
    portfolio_factors: pd.DataFrame = field(default_factory=_empty)
    factor_window: pd.DataFrame = field(default_factory=_empty)
    position_rates: pd.DataFrame = field(default_factory=_empty)
    portfolio_rates: pd.DataFrame = field(default_factory=_empty)
    correlation_summary: pd.DataFrame = field(default_factory=_empty)
    correlation_clusters: pd.DataFrame = field(default_factory=_empty)
    stress_results: pd.DataFrame = field(default_factory=_empty)
    stress_breakdown: pd.DataFrame = field(default_factory=_empty)
    scenarios: pd.DataFrame = field(default_factory=_empty)
    snapshot: pd.DataFrame = field(default_factory=_empty)
    position_pnl: pd.DataFrame = field(default_factory=_empty)
    snapshot_history: pd.DataFrame = field(default_factory=_empty)
    failed_checks: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.anchor_date = as_date(self.anchor_date)
        self.portfolio = dict(self.portfolio)
        for key in ("portfolio_id", "name"):
            if not self.portfolio.get(key):
                raise ValueError(f"ReportInput.portfolio needs {key!r}")
        self.portfolio.setdefault("owner", None)
        self.failed_checks = [str(c) for c in (self.failed_checks or [])]
        self.flags = [str(f) for f in (self.flags or [])]

    @property
    def portfolio_id(self) -> str:
        return str(self.portfolio["portfolio_id"])

    @property
    def portfolio_name(self) -> str:
        return str(self.portfolio["name"])

    def section(self, name: str) -> pd.DataFrame:
        """The frame of a section by its attribute name (``None`` reads as an empty frame)."""
        frame = getattr(self, name)
        return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()


def load_report_inputs(engine: Engine, portfolio_id: str, anchor_dates) -> Iterator[ReportInput]:
    """One :class:`ReportInput` per anchor date (in the order given) for one portfolio, reading each
    warehouse table ONCE for all the dates (a ranged run reports every session of its range).

    Every dated section of a report holds the rows of its own anchor date only: a table without rows for
    that date gives an empty frame (the report then says "not available"), never another date's rows.
    ``snapshot_history`` is ``portfolio_snapshots`` with ``date <= anchor_date`` (no look-ahead).
    ``failed_checks`` and ``flags`` are left empty for the caller to fill.
    """
    anchors = [as_date(d) for d in anchor_dates]
    if not anchors:
        return
    row = get_portfolio(engine, portfolio_id)
    pid = str(row["portfolio_id"])
    portfolio = {"portfolio_id": pid, "name": row["name"], "owner": row.get("owner")}
    by_table = {name: _by_date(read_table(engine, table, dates=anchors, portfolio_id=pid)) for name, table in _TABLES.items()}
    s = schema.stress_scenarios
    scenarios = read_frame(
        engine,
        sa.select(s.c.scenario_id, s.c.name, s.c.category, s.c.severity, s.c.display_order).order_by(
            s.c.display_order, s.c.scenario_id
        ),
    )
    snap = schema.portfolio_snapshots
    history = read_frame(
        engine,
        sa.select(snap.c.date, snap.c.daily_pnl, snap.c.cumulative_pnl, snap.c.total_value)
        .where((snap.c.portfolio_id == pid) & (snap.c.date <= max(anchors)))
        .order_by(snap.c.date),
    )
    history_ends = pd.DatetimeIndex(history["date"]).searchsorted(pd.DatetimeIndex(anchors), side="right")
    positions = read_positions(engine, pid)
    for anchor, history_end in zip(anchors, history_ends):
        yield ReportInput(
            portfolio=portfolio,
            anchor_date=anchor,
            positions=positions,
            scenarios=scenarios,
            snapshot_history=history.iloc[:history_end],
            **{name: _rows_on(parts, anchor) for name, parts in by_table.items()},
        )


def _by_date(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """A table's rows for a range, split once by date: (empty frame with its columns, {date: rows})."""
    if frame.empty:
        return frame, {}
    days = pd.DatetimeIndex(frame["date"]).date
    return frame.iloc[0:0], {d: rows.reset_index(drop=True) for d, rows in frame.groupby(days, sort=False)}


def _rows_on(parts: tuple[pd.DataFrame, dict], anchor: dt.date) -> pd.DataFrame:
    empty, by_day = parts
    return by_day.get(anchor, empty)


def load_report_input(engine: Engine, portfolio_id: str, anchor_date) -> ReportInput:
    """Read one portfolio's report input for ``anchor_date`` from the warehouse (see
    :func:`load_report_inputs`, of which this is the one-date case)."""
    return next(load_report_inputs(engine, portfolio_id, [anchor_date]))
