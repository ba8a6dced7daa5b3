"""``security_returns``: daily returns of every priced symbol, partitioned by trading date."""

import dagster as dg

from sigmasight_pipeline.defs.automation import follow_condition

from sigmasight_pipeline.defs.market.checks import RETURNS_PLAUSIBLE, no_session_outputs, returns_plausible
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.metadata import (
    RUN,
    attach_date_partitions,
    date_range_text,
    holidays_text,
    rows_per_date,
)
from sigmasight_pipeline.defs.partitions import partition_dates, single_run, trading_days
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.engines.returns import daily_returns
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_wide, write_partition


@dg.asset(
    partitions_def=trading_days,
    backfill_policy=single_run,
    group_name="market",
    kinds={"python", "sql"},
    deps=[market_prices],
    automation_condition=follow_condition(),
    description=(
        "Simple and log daily returns of every priced symbol, from the previous session's close "
        "(a return needs both closes; gaps give no return)."
    ),
    check_specs=[RETURNS_PLAUSIBLE],
)
def security_returns(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    dates = partition_dates(context)
    sessions, closed = xcal.split_sessions(dates)
    engine = warehouse.engine
    if sessions.empty:
        yield from no_session_outputs(context, closed, schema.security_returns.name, RETURNS_PLAUSIBLE)
        return
    start = xcal.previous_session(sessions.min())
    closes = read_wide(engine, schema.market_prices, "close", start=start, end=sessions.max())
    rets = daily_returns(closes, sessions)
    rows = write_partition(engine, schema.security_returns, rets, dates=dates)
    attach_date_partitions(context, rows_per_date(rets), closed, schema.security_returns.name)
    first_missing = sorted(set(closes.columns) - set(rets.loc[rets.date == sessions.min(), "symbol"]))
    yield dg.MaterializeResult(
        metadata={
            f"{RUN}sessions": len(sessions),
            f"{RUN}date_range": date_range_text(sessions),
            f"{RUN}symbols": int(rets.symbol.nunique()) if rows else 0,
            f"{RUN}holidays_skipped": holidays_text(closed),
            f"no_return_on {sessions.min():%Y-%m-%d} (first session of this run)": ", ".join(first_missing) or "none",
        }
    )
    yield returns_plausible(rets)
