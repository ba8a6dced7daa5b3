"""Checks on the market data that read the warehouse: stale prices of held symbols."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame
from sigmasight_pipeline.warehouse.portfolios import held_symbols

#: A held symbol whose latest close is MORE than this many sessions older than the latest stored session is stale.
STALE_AFTER_SESSIONS = 3


def price_staleness(engine) -> tuple[pd.Timestamp | None, dict[str, tuple[str, int | None]]]:
    """The latest stored session and, per held symbol, ``(last close date or "none", sessions behind)``.

    Held symbols are the market-data symbols of every portfolio's positions (an option contributes its
    underlying, already mapped to its price symbol, e.g. VIX -> ^VIX). "Sessions behind" counts the XNYS
    sessions after the symbol's last close up to the latest stored session (None: never priced).
    """
    t = schema.market_prices
    latest = read_frame(engine, sa.select(sa.func.max(t.c.date).label("d")))
    if latest.empty or pd.isna(latest.d.iloc[0]):
        return None, {}
    latest_session = pd.Timestamp(latest.d.iloc[0]).normalize()
    symbols = held_symbols(engine)
    if not symbols:
        return latest_session, {}
    last = read_frame(
        engine,
        sa.select(t.c.symbol, sa.func.max(t.c.date).label("last_date")).where(t.c.symbol.in_(symbols)).group_by(t.c.symbol),
    )
    last_dates = {r.symbol: pd.Timestamp(r.last_date).normalize() for r in last.itertuples()}
    out: dict[str, tuple[str, int | None]] = {}
    for sym in symbols:
        d = last_dates.get(sym)
        if d is None:
            out[sym] = ("none", None)
        else:
            behind = len(xcal.sessions_in_range(d + pd.Timedelta(days=1), latest_session))
            out[sym] = (f"{d:%Y-%m-%d}", behind)
    return latest_session, out


@dg.asset_check(
    asset="market_prices",
    name="stale_prices",
    blocking=True,
    description=(
        f"Every held symbol (positions of every portfolio; options by their underlying) has a close no more than "
        f"{STALE_AFTER_SESSIONS} XNYS sessions older than the latest stored session. A stale or missing price would "
        "value positions and compute returns on old numbers, so a failure is an ERROR that blocks the assets "
        "downstream of market_prices in the same run. Metadata names each stale symbol with its last close date."
    ),
)
def stale_prices(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    latest, staleness = price_staleness(warehouse.engine)
    if latest is None:
        return dg.AssetCheckResult(passed=True, metadata={"latest_session": "none", "note": "no prices stored yet"})
    stale = {s: d for s, (d, behind) in staleness.items() if behind is None or behind > STALE_AFTER_SESSIONS}
    last_close = {s: d for s, (d, _) in staleness.items()}
    return dg.AssetCheckResult(
        passed=not stale,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{len(stale)} held symbol(s) without a close within {STALE_AFTER_SESSIONS} sessions of {latest:%Y-%m-%d}: "
            + ", ".join(f"{s} (last {d})" for s, d in sorted(stale.items()))
            if stale
            else None
        ),
        metadata={
            "latest_session": f"{latest:%Y-%m-%d}",
            "symbols_checked": len(staleness),
            "stale_symbols": dg.MetadataValue.json(dict(sorted(stale.items()))),
            "stale": ", ".join(f"{s}: {d}" for s, d in sorted(stale.items())) or "none",
            "last_close_by_symbol": dg.MetadataValue.json(dict(sorted(last_close.items()))),
            "max_sessions_behind": STALE_AFTER_SESSIONS,
        },
    )
