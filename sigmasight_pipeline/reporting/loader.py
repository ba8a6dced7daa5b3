"""Reading report inputs from the warehouse: :func:`load_report_inputs` (a range of anchor dates of one
portfolio, each table read once) and :func:`load_report_input` (one date).

This is the only module that reads the warehouse. What the inputs hold is :class:`.inputs.ReportInput`'s;
what a range's reports share is computed here once (:func:`.sections.ranges.prepare_range`).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import books_as_of
from sigmasight_pipeline.warehouse.entry_warnings import read_entry_warnings
from sigmasight_pipeline.warehouse.io import read_frame, read_table
from sigmasight_pipeline.warehouse.portfolios import get_portfolio

from .inputs import FrameCache, ReportInput, as_date, history_upto, records
from .sections.ranges import prepare_range

__all__ = ["collection_paused", "load_report_input", "load_report_inputs"]

#: ReportInput attribute -> the warehouse table its anchor-date rows are read from
_TABLES = {
    "valuations": schema.position_valuations,
    "exposures": schema.portfolio_exposures,
    "group_exposures": schema.group_exposures,
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
    "risk_measures": schema.portfolio_risk_measures,
    "position_risk": schema.position_risk_contributions,
    "factor_risk": schema.factor_risk_contributions,
    "risk_backtest": schema.risk_backtest,
    "performance": schema.portfolio_performance,
    "attribution": schema.pnl_attribution,
}


def load_report_inputs(engine: Engine, portfolio_id: str, anchor_dates) -> Iterator[ReportInput]:
    """One :class:`ReportInput` per anchor date (in the order given) for one portfolio, reading each
    warehouse table ONCE for all the dates (a ranged run reports every session of its range).

    Every dated section of a report holds the rows of its own anchor date only: a table without rows for
    that date gives an empty frame (the report then says "not available"), never another date's rows.
    The histories (``snapshot_history``, ``attribution_history``, ``backtest_history``) are each read once
    for the range and cut at every anchor: rows with ``date <= anchor_date`` (no look-ahead).
    ``failed_checks`` and ``flags`` are left empty for the caller to fill.

    The inputs share one :class:`FrameCache`, filled here once for the range: each table's records
    (built for the whole range, then split by date), the P&L history up to each date, and what
    :func:`.sections.ranges.prepare_range` computes once for the range and cuts at every date (the drawdown
    path, the VaR backtest window, the cumulative attribution).
    """
    anchors = [as_date(d) for d in anchor_dates]
    if not anchors:
        return
    with collection_paused():  # the range's rows and records: long-lived, no garbage among them
        inputs = _range_inputs(engine, portfolio_id, anchors)
    yield from inputs


def _range_inputs(engine: Engine, portfolio_id: str, anchors: list[dt.date]) -> list[ReportInput]:
    """:func:`load_report_inputs` of a non-empty list of anchors, as a list."""
    row = get_portfolio(engine, portfolio_id)
    pid = str(row["portfolio_id"])
    portfolio = {"portfolio_id": pid, "name": row["name"], "owner": row.get("owner")}
    cache = FrameCache(memoize=True)
    by_table = {
        name: _by_date(_float_columns(read_table(engine, table, dates=anchors, portfolio_id=pid), table), cache, pid)
        for name, table in _TABLES.items()
    }
    s = schema.stress_scenarios
    scenarios = read_frame(
        engine,
        sa.select(s.c.scenario_id, s.c.name, s.c.category, s.c.severity, s.c.display_order).order_by(
            s.c.display_order, s.c.scenario_id
        ),
    )
    last = max(anchors)
    snap, attr, back = schema.portfolio_snapshots, schema.pnl_attribution, schema.risk_backtest
    history = _history(engine, snap, pid, last, snap.c.daily_pnl, snap.c.cumulative_pnl, snap.c.total_value,
                       snap.c.daily_return, snap.c.is_first_snapshot)
    attribution = _history(engine, attr, pid, last, attr.c.line, attr.c.line_type, attr.c.line_order, attr.c.pnl,
                           order=(attr.c.line_order, attr.c.line))
    backtest = _history(engine, back, pid, last, back.c.var_date, back.c.var_99, back.c.realized_pnl,
                        back.c.exception)
    stamps = pd.DatetimeIndex(anchors)
    ends = {
        name: pd.DatetimeIndex(frame["date"]).searchsorted(stamps, side="right")
        for name, frame in (("snapshot_history", history), ("attribution_history", attribution),
                            ("backtest_history", backtest))
    }
    pnl_history = history_upto(history, pid, last)  # the P&L history of every anchor, cut below
    pnl_ends = pd.DatetimeIndex(pnl_history["date"]).searchsorted(stamps, side="right")
    books = books_as_of(engine, pid, anchors)  # the book on each anchor date, from the ledger
    entry_warnings = read_entry_warnings(engine, pid)
    out = []
    for i, anchor in enumerate(anchors):
        inp = ReportInput(
            portfolio=portfolio,
            anchor_date=anchor,
            positions=books[anchor],
            scenarios=scenarios,
            snapshot_history=history.iloc[:ends["snapshot_history"][i]],
            attribution_history=attribution.iloc[:ends["attribution_history"][i]],
            backtest_history=backtest.iloc[:ends["backtest_history"][i]],
            entry_warnings=entry_warnings,
            **{name: _rows_on(parts, anchor) for name, parts in by_table.items()},
        )
        # history_upto(slice, pid, anchor) is the range's P&L history cut at the anchor: the slice holds
        # the rows dated up to the anchor, in date order
        cache.put(inp.snapshot_history, ("history_upto", pid, anchor), pnl_history.iloc[:pnl_ends[i]])
        inp.cache = cache
        out.append(inp)
    prepare_range(out, history=history, attribution=attribution, backtest=backtest)
    return out


@contextmanager
def collection_paused():
    """Python's cyclic garbage collector paused for the block (and resumed after it, if it was running).

    Reading a range allocates some 10^5 container objects (the records of every row, the split frames)
    that all live until the range is reported. Each burst of allocations sets off collections, and the
    full ones traverse the whole heap (a Dagster process holds several 10^5 objects of its own) to free
    nothing: ~0.2 s each, several per range. Paused, the block allocates the same objects without them.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _history(engine: Engine, table: sa.Table, portfolio_id: str, last: dt.date, *columns, order=()) -> pd.DataFrame:
    """``date`` and ``columns`` of one portfolio's rows of ``table`` dated up to ``last``, by date (then ``order``);
    double-precision columns as float64 (as :func:`_float_columns`)."""
    query = (
        sa.select(table.c.date, *columns)
        .where((table.c.portfolio_id == portfolio_id) & (table.c.date <= last))
        .order_by(table.c.date, *order)
    )
    return _float_columns(read_frame(engine, query), table)


def _float_columns(frame: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    """Double-precision columns as float64 (NULL -> NaN) even when every value read is NULL: a one-date read
    of a null (a first snapshot's daily return, an exact fit's t-statistics) then equals the same date's rows
    cut from a ranged read, where pandas already made the column float64."""
    for col in table.columns:
        if isinstance(col.type, sa.Float) and col.name in frame.columns and frame[col.name].dtype == object:
            frame[col.name] = frame[col.name].astype("float64")
    return frame


def _by_date(frame: pd.DataFrame, cache: FrameCache, portfolio_id: str) -> tuple[pd.DataFrame, dict]:
    """A table's rows for a range, split once by date: (empty frame with its columns, {date: rows}).

    A date's rows keep their order (the table's, primary-key order). What the report derives from each
    date's rows goes into ``cache``, computed for the whole range at once: their records, and their
    :func:`anchor_mask` for that date (every row is of that date; the portfolio is compared row by row).
    """
    empty = frame.iloc[0:0]
    cache.put(empty, "records", [])
    if frame.empty:
        return empty, {}
    stamps = pd.DatetimeIndex(frame["date"])
    if stamps.tz is not None:  # a date is the wall-clock date, as DatetimeIndex.date gives it
        stamps = stamps.tz_localize(None)
    days = stamps.to_numpy().astype("datetime64[D]")
    ordinal = days.view("int64")  # NaT is the smallest
    if len(days) > 1 and not (ordinal[1:] >= ordinal[:-1]).all():  # group the days, keeping row order
        order = np.argsort(ordinal, kind="stable")
        frame, days, ordinal = frame.take(order), days[order], ordinal[order]
    frame = frame.reset_index(drop=True)
    recs = records(frame)
    of_portfolio = _of_portfolio(frame, portfolio_id)
    starts = np.flatnonzero(np.r_[True, ordinal[1:] != ordinal[:-1]]).tolist() + [len(days)]
    parts = {}
    for start, stop in zip(starts[:-1], starts[1:]):
        if np.isnat(days[start]):  # rows without a date belong to no report
            continue
        part = frame.iloc[start:stop]
        part.index = pd.RangeIndex(stop - start)  # as reset_index(drop=True), without its copy
        day = days[start].astype(object)  # datetime64[D] -> datetime.date
        cache.put(part, "records", recs[start:stop])
        cache.put(part, ("anchor_mask", day, portfolio_id), of_portfolio[start:stop].copy())
        parts[day] = part
    return empty, parts


def _of_portfolio(frame: pd.DataFrame, portfolio_id: str) -> np.ndarray:
    """The portfolio part of :func:`row_mask` (all rows when the frame has no portfolio id)."""
    if "portfolio_id" not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return np.fromiter(
        ((v if type(v) is str else str(v)) == portfolio_id for v in frame["portfolio_id"].tolist()),
        dtype=bool, count=len(frame),
    )


def _rows_on(parts: tuple[pd.DataFrame, dict], anchor: dt.date) -> pd.DataFrame:
    empty, by_day = parts
    return by_day.get(anchor, empty)


def load_report_input(engine: Engine, portfolio_id: str, anchor_date) -> ReportInput:
    """Read one portfolio's report input for ``anchor_date`` from the warehouse (see
    :func:`load_report_inputs`, of which this is the one-date case)."""
    return next(load_report_inputs(engine, portfolio_id, [anchor_date]))
