"""Checks on the market data: every symbol priced, plausible returns, stale prices and unclassified held symbols.

``universe_priced`` and ``returns_plausible`` are evaluated by their asset on the rows it just stored (their
specs are here, the asset declares them); ``stale_prices`` and ``unclassified_symbols`` are checks of their own
that read the warehouse. Each calls an invariant of ``quality.market`` or ``marketdata.security_master``.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from sigmasight_pipeline.defs.metadata import attach_date_partitions, no_session_result
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.security_master import UNKNOWN_SECTOR, unclassified
from sigmasight_pipeline.quality import market as q
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame
from sigmasight_pipeline.warehouse.portfolios import held_symbols

#: A held symbol whose latest close is MORE than this many sessions older than the latest stored session is stale.
STALE_AFTER_SESSIONS = 3

UNIVERSE_PRICED = dg.AssetCheckSpec(
    "universe_priced",
    asset="market_prices",
    description="Every symbol of the universe has a close on every session of the partition; missing ones are named.",
)

RETURNS_PLAUSIBLE = dg.AssetCheckSpec(
    "returns_plausible",
    asset="security_returns",
    description="No daily return of a security beyond +-50% (a bad tick or an unadjusted split).",
)


def no_session_check(spec: dg.AssetCheckSpec) -> dg.AssetCheckResult:
    """The check of a run without an exchange session: nothing stored, nothing to check."""
    return dg.AssetCheckResult(check_name=spec.name, passed=True, metadata={"no_op": True})


def no_session_outputs(
    context: dg.AssetExecutionContext, closed: dict[str, str], table: str, spec: dg.AssetCheckSpec
) -> list:
    """What a market asset yields for a run of weekday holidays only: each partition's reason attached, the
    explicit no-op, and its check passed with nothing to check."""
    attach_date_partitions(context, {}, closed, table)
    return [no_session_result(closed), no_session_check(spec)]


def universe_priced(stored: pd.DataFrame, symbols: Iterable[str], sessions: pd.DatetimeIndex) -> dg.AssetCheckResult:
    """``universe_priced`` on the closes stored for ``sessions`` (WARN: a missing close is named, not blocking)."""
    symbols = list(symbols)
    incomplete = q.incomplete_symbols(stored, symbols, len(sessions))
    return dg.AssetCheckResult(
        check_name=UNIVERSE_PRICED.name,
        passed=not incomplete,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "symbols_incomplete": ", ".join(f"{s} ({n} sessions missing)" for s, n in sorted(incomplete.items())) or "none",
            "symbols_checked": len(symbols),
        },
    )


def returns_plausible(stored: pd.DataFrame) -> dg.AssetCheckResult:
    """``returns_plausible`` on the returns stored (WARN)."""
    extreme = q.extreme_returns(stored)
    return dg.AssetCheckResult(
        check_name=RETURNS_PLAUSIBLE.name,
        passed=extreme.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "extreme_returns": dg.MetadataValue.md(extreme.head(20).to_markdown(index=False)) if len(extreme) else "none"
        },
    )


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
    stale = q.stale_symbols(staleness, STALE_AFTER_SESSIONS)
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


def unclassified_held(engine) -> tuple[list[str], list[str]]:
    """``(held symbols, those whose sector is unknown)``: the market-data symbols of every portfolio's positions
    (an option counts as its underlying, by which it is classified) against the stored security master."""
    held = held_symbols(engine)
    if not held:
        return [], []
    m = schema.security_master
    master = read_frame(engine, sa.select(m.c.symbol, m.c.sector).where(m.c.symbol.in_(held)))
    return held, unclassified(held, master)


@dg.asset_check(
    asset="market_prices",
    name="unclassified_symbols",
    blocking=False,
    description=(
        "Every held symbol (positions of every portfolio; an option by its underlying) has a known sector in the "
        "security master, which market_prices refreshes from its source (yfinance online, the shipped file "
        f"offline). A symbol nobody classifies is grouped as {UNKNOWN_SECTOR!r} in sector views, never silently "
        "in another group; this WARNING names each one, so it can be added to data/security_master.csv. "
        "Not blocking: the numbers themselves do not depend on a sector."
    ),
)
def unclassified_symbols(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    held, missing = unclassified_held(warehouse.engine)
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(missing)} held symbol(s) without a sector ({UNKNOWN_SECTOR}): {', '.join(missing)}" if missing else None
        ),
        metadata={
            "unclassified": ", ".join(missing) or "none",
            "symbols_checked": len(held),
        },
    )
