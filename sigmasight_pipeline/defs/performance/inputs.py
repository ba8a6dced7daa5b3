"""What the performance assets read: a run's batches grouped by portfolio (performance and attribution read a
portfolio's stored rows, not its book, so they compute each portfolio once over all its sessions of the run
and write per batch), the market proxy, and the stored rows of a set of dates (only the columns used)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.date_portfolio import PortfolioBatch, portfolio_batches
from sigmasight_pipeline.engines.factors import DEFAULT_FACTOR_PROXIES, MARKET
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import pivot_wide, read_frame

#: The market proxy of performance (beta, correlation, tracking error): the Market factor's ETF (SPY).
MARKET_PROXY = DEFAULT_FACTOR_PROXIES[MARKET]


def batches_by_portfolio(context: dg.AssetExecutionContext, engine: Engine) -> Iterator[tuple[str, list[PortfolioBatch], pd.DatetimeIndex]]:
    """``(portfolio_id, its batches, all its sessions in the run)`` for every portfolio of the run."""
    grouped: dict[str, list[PortfolioBatch]] = {}
    for batch in portfolio_batches(context, engine):
        grouped.setdefault(batch.portfolio_id, []).append(batch)
    for pid, batches in grouped.items():
        sessions = pd.DatetimeIndex(sorted({d for b in batches for d in b.sessions}))
        yield pid, batches, sessions


def rows_of(frame: pd.DataFrame, batch: PortfolioBatch) -> pd.DataFrame:
    """The rows of ``frame`` (a portfolio's computed rows) that belong to ``batch``'s sessions."""
    if frame.empty:
        return frame
    return frame[pd.to_datetime(frame["date"]).isin(batch.sessions)]


def stored_snapshots(engine: Engine, portfolio_id: str, sessions: pd.DatetimeIndex, columns: list[str], *,
                     history: bool) -> pd.DataFrame:
    """``date`` and ``columns`` of the portfolio's stored snapshots: of ``sessions`` only, or (``history``) every
    one up to the last of them. A session of ``sessions`` without its snapshot is a Failure (the upstream asset
    has not run for it)."""
    t = schema.portfolio_snapshots
    query = sa.select(t.c.date, *[t.c[c] for c in columns]).where(t.c.portfolio_id == portfolio_id)
    if history:
        query = query.where(t.c.date <= sessions[-1].date())
    else:
        query = query.where(t.c.date.in_([d.date() for d in sessions]))
    snaps = read_frame(engine, query.order_by(t.c.date))
    if snaps.empty:
        snaps = pd.DataFrame(columns=["date", *columns])
    missing = sessions.difference(pd.DatetimeIndex(pd.to_datetime(snaps["date"])) if len(snaps) else pd.DatetimeIndex([]))
    if len(missing):
        raise dg.Failure(
            f"no portfolio_snapshots rows for {portfolio_id} on {len(missing)} session(s) from "
            f"{missing[0]:%Y-%m-%d}: materialize portfolio_snapshots first",
            metadata={"portfolio": portfolio_id},
        )
    return snaps.assign(date=pd.to_datetime(snaps["date"]))


def stored_rows(engine: Engine, table: sa.Table, portfolio_id: str, dates: Iterable, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the portfolio's stored rows of ``table`` on ``dates`` (only those columns are read)."""
    days = sorted({pd.Timestamp(d).date() for d in dates})
    query = (sa.select(*[table.c[c] for c in columns])
             .where(table.c.portfolio_id == portfolio_id, table.c.date.in_(days))
             .order_by(*table.primary_key.columns))
    frame = read_frame(engine, query)
    return frame.assign(date=pd.to_datetime(frame["date"])) if len(frame) else pd.DataFrame(columns=columns)


def stored_betas(engine: Engine, portfolio_id: str, dates: Iterable, factors: list[str]) -> pd.DataFrame:
    """The portfolio's stored position betas on ``dates``, one row per (date, position): ``date, position_id`` and
    a beta column per factor of ``factors``, pivoted by the database (``position_factor_exposures`` holds a row
    per factor: read long, that is seven Python rows per position and date)."""
    t = schema.position_factor_exposures
    days = sorted({pd.Timestamp(d).date() for d in dates})
    query = (sa.select(t.c.date, t.c.position_id,
                       *[sa.func.max(sa.case((t.c.factor_name == f, t.c.beta))).label(f) for f in factors])
             .where(t.c.portfolio_id == portfolio_id, t.c.date.in_(days))
             .group_by(t.c.date, t.c.position_id)
             .order_by(t.c.date, t.c.position_id))
    frame = read_frame(engine, query)
    return frame if len(frame) else pd.DataFrame(columns=["date", "position_id", *factors])


def stored_returns(engine: Engine, symbols: Iterable[str], start, end) -> pd.DataFrame:
    """Simple returns of ``symbols`` from ``start`` through ``end`` (sessions x symbols, NaN where missing;
    columns in sorted order), reading only ``security_returns.simple_return``."""
    r = schema.security_returns
    names = sorted(set(symbols))
    rows = read_frame(engine, sa.select(r.c.date, r.c.symbol, r.c.simple_return).where(
        r.c.date >= pd.Timestamp(start).date(), r.c.date <= pd.Timestamp(end).date(), r.c.symbol.in_(names)))
    wide = pivot_wide(rows, "simple_return", names)
    wide.index = pd.DatetimeIndex(wide.index)
    return wide
