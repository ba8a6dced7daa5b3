"""Typed reads of market history for the engines: the trailing window as of a date, never past it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.engine import Engine

from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import pivot_wide, read_table


@dataclass(frozen=True)
class MarketWindow:
    """Wide (session x symbol) frames from ``start`` to ``end`` inclusive.

    ``start`` is the first session of a ``lookback``-session window ending on the first computed date,
    ``end`` the last computed date; nothing after ``end`` is read, so no computed date can see its future.
    """

    prices: pd.DataFrame
    simple_returns: pd.DataFrame
    log_returns: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp


def market_window(engine: Engine, symbols: Iterable[str], dates: pd.DatetimeIndex, lookback: int) -> MarketWindow:
    """Prices and returns of ``symbols`` for the ``lookback`` sessions before ``dates[0]`` through ``dates[-1]``."""
    symbols = sorted(set(symbols))
    dates = pd.DatetimeIndex(dates).sort_values()
    start = xcal.sessions_window(dates[0], lookback)[0]
    end = dates[-1]
    prices = read_table(engine, schema.market_prices, start=start, end=end, symbols=symbols)
    rets = read_table(engine, schema.security_returns, start=start, end=end, symbols=symbols)
    return MarketWindow(
        prices=pivot_wide(prices, "close", symbols),
        simple_returns=pivot_wide(rets, "simple_return", symbols),
        log_returns=pivot_wide(rets, "log_return", symbols),
        start=start,
        end=end,
    )


def stored_dates(engine: Engine, table) -> pd.DataFrame:
    """Distinct ``portfolio_id, date`` pairs that have rows in ``table`` (for coverage reports)."""
    import sqlalchemy as sa

    from sigmasight_pipeline.warehouse.io import read_frame

    q = sa.select(table.c.portfolio_id, table.c.date).distinct().order_by(table.c.portfolio_id, table.c.date)
    return read_frame(engine, q)
