"""Market data assets: closing prices and daily returns, partitioned by trading date, shared by every portfolio."""


import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.partitions import partition_dates, single_run, trading_days
from sigmasight_pipeline.defs.resources import MarketDataResource, WarehouseResource
from sigmasight_pipeline.engines.returns import daily_returns
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.base import universe
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_wide, write_partition
from sigmasight_pipeline.warehouse.portfolios import held_symbols


def split_sessions(dates: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, dict[str, str]]:
    """The XNYS sessions among ``dates`` and, for the others, why there is no session."""
    sessions = pd.DatetimeIndex([d for d in dates if xcal.is_session(d)])
    closed = {d.strftime("%Y-%m-%d"): xcal.non_session_reason(d) for d in dates if d not in sessions}
    return sessions, closed


def no_session_result(closed: dict[str, str]) -> dg.MaterializeResult:
    """An explicit no-op for partitions without an exchange session (weekday holidays)."""
    return dg.MaterializeResult(
        metadata={
            "no_op": True,
            "reason": "; ".join(f"{d}: {r}" for d, r in closed.items()),
            "dagster/row_count": 0,
        }
    )


def _date_range_md(dates: pd.DatetimeIndex) -> str:
    return f"{dates.min():%Y-%m-%d} .. {dates.max():%Y-%m-%d}" if len(dates) else "none"


@dg.asset(
    partitions_def=trading_days,
    backfill_policy=single_run,
    group_name="market",
    kinds={"python", "sql"},
    # The universe is every held symbol: a changed book changes what is priced.
    deps=[dg.AssetDep("portfolio_positions", partition_mapping=dg.AllPartitionMapping())],
    description=(
        "Adjusted closes of the universe (every held symbol and option underlying, the seven factor ETFs, "
        "^TNX and ^IRX in percent) for each XNYS session, from the configured source. Holidays are "
        "explicit no-ops."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "universe_priced",
            asset="market_prices",
            description="Every symbol of the universe has a close on every session of the partition; missing ones are named.",
        )
    ],
)
def market_prices(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource
):
    dates = partition_dates(context)
    sessions, closed = split_sessions(dates)
    engine = warehouse.engine
    if sessions.empty:
        yield no_session_result(closed)
        yield dg.AssetCheckResult(check_name="universe_priced", passed=True, metadata={"no_op": True})
        return
    symbols = universe(held_symbols(engine))
    source = market_data.get_source()
    closes, report = source.fetch(symbols, sessions.min().date(), sessions.max().date())
    closes = closes.loc[closes.index.isin(sessions)]
    long = closes.stack().dropna().rename("close").reset_index()  # pandas 3 stack() keeps NaN: no close, no row
    long.columns = ["date", "symbol", "close"]
    long["source"] = source.name
    rows = write_partition(engine, schema.market_prices, long, dates=dates)
    context.log.info(report.summary())

    have = long.groupby("symbol").size()
    incomplete = {s: int(len(sessions) - have.get(s, 0)) for s in symbols if have.get(s, 0) < len(sessions)}
    factor_cols = [c for c in ("SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV", "^TNX", "^IRX") if c in closes]
    last = closes[factor_cols].iloc[[-1]].T.rename(columns=lambda c: f"{c:%Y-%m-%d}")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "source": source.name,
            "sessions": len(sessions),
            "date_range": _date_range_md(sessions),
            "symbols_requested": len(symbols),
            "symbols_missing": ", ".join(report.symbols_missing) or "none",
            "holidays_skipped": "; ".join(f"{d}: {r}" for d, r in closed.items()) or "none",
            "download_attempts": report.attempts,
            "last_closes": dg.MetadataValue.md(last.round(4).to_markdown()),
        }
    )
    yield dg.AssetCheckResult(
        check_name="universe_priced",
        passed=not incomplete,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "symbols_incomplete": ", ".join(f"{s} ({n} sessions missing)" for s, n in sorted(incomplete.items())) or "none",
            "symbols_checked": len(symbols),
        },
    )


@dg.asset(
    partitions_def=trading_days,
    backfill_policy=single_run,
    group_name="market",
    kinds={"python", "sql"},
    deps=[market_prices],
    description=(
        "Simple and log daily returns of every priced symbol, from the previous session's close "
        "(a return needs both closes; gaps give no return)."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "returns_plausible",
            asset="security_returns",
            description="No daily return of a security beyond +-50% (a bad tick or an unadjusted split).",
        )
    ],
)
def security_returns(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    dates = partition_dates(context)
    sessions, closed = split_sessions(dates)
    engine = warehouse.engine
    if sessions.empty:
        yield no_session_result(closed)
        yield dg.AssetCheckResult(check_name="returns_plausible", passed=True, metadata={"no_op": True})
        return
    start = xcal.previous_session(sessions.min())
    closes = read_wide(engine, schema.market_prices, "close", start=start, end=sessions.max())
    rets = daily_returns(closes, sessions)
    rows = write_partition(engine, schema.security_returns, rets, dates=dates)
    first_missing = sorted(set(closes.columns) - set(rets.loc[rets.date == sessions.min(), "symbol"]))
    extreme = rets.loc[rets.simple_return.abs() > 0.5]
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "sessions": len(sessions),
            "date_range": _date_range_md(sessions),
            "symbols": int(rets.symbol.nunique()) if rows else 0,
            "holidays_skipped": "; ".join(f"{d}: {r}" for d, r in closed.items()) or "none",
            "no_return_on_first_session": ", ".join(first_missing) or "none",
        }
    )
    yield dg.AssetCheckResult(
        check_name="returns_plausible",
        passed=extreme.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "extreme_returns": dg.MetadataValue.md(extreme.head(20).to_markdown(index=False)) if len(extreme) else "none"
        },
    )

