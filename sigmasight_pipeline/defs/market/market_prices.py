"""``market_prices``: closing prices of the universe, partitioned by trading date, shared by every portfolio."""

import dagster as dg

from sigmasight_pipeline.defs.automation import market_condition
from sigmasight_pipeline.defs.market.checks import UNIVERSE_PRICED, no_session_outputs, universe_priced
from sigmasight_pipeline.defs.metadata import (
    RUN,
    attach_date_partitions,
    date_range_text,
    holidays_text,
    preview_label,
    rows_per_date,
)
from sigmasight_pipeline.defs.partitions import partition_dates, single_run, trading_days
from sigmasight_pipeline.defs.resources import MarketDataResource, WarehouseResource
from sigmasight_pipeline.marketdata.base import universe
from sigmasight_pipeline.marketdata.calendar import split_sessions
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import write_partition
from sigmasight_pipeline.warehouse.portfolios import held_symbols

#: The series previewed: the seven factor ETFs and the two yields.
PREVIEW_SYMBOLS = ("SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV", "^TNX", "^IRX")


@dg.asset(
    partitions_def=trading_days,
    backfill_policy=single_run,
    group_name="market",
    kinds={"python", "sql"},
    # The universe is every held symbol: a changed book changes what is priced.
    deps=[dg.AssetDep("portfolio_positions", partition_mapping=dg.AllPartitionMapping())],
    automation_condition=market_condition(),
    description=(
        "Adjusted closes of the universe (every held symbol and option underlying, the seven factor ETFs, "
        "^TNX and ^IRX in percent) for each XNYS session, from the configured source. Holidays are "
        "explicit no-ops."
    ),
    check_specs=[UNIVERSE_PRICED],
)
def market_prices(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource
):
    dates = partition_dates(context)
    sessions, closed = split_sessions(dates)
    engine = warehouse.engine
    if sessions.empty:
        yield from no_session_outputs(context, closed, schema.market_prices.name, UNIVERSE_PRICED)
        return
    symbols = universe(held_symbols(engine))
    source = market_data.get_source()
    closes, report = source.fetch(symbols, sessions.min().date(), sessions.max().date())
    closes = closes.loc[closes.index.isin(sessions)]
    long = closes.stack().dropna().rename("close").reset_index()  # pandas 3 stack() keeps NaN: no close, no row
    long.columns = ["date", "symbol", "close"]
    long["source"] = source.name
    write_partition(engine, schema.market_prices, long, dates=dates)
    context.log.info(report.summary())
    attach_date_partitions(context, rows_per_date(long), closed, schema.market_prices.name)

    factor_cols = [c for c in PREVIEW_SYMBOLS if c in closes]
    last = closes[factor_cols].iloc[[-1]].T.rename(columns=lambda c: f"{c:%Y-%m-%d}")
    yield dg.MaterializeResult(
        metadata={
            "source": source.name,
            f"{RUN}sessions": len(sessions),
            f"{RUN}date_range": date_range_text(sessions),
            f"{RUN}symbols_requested": len(symbols),
            f"{RUN}symbols_missing": ", ".join(report.symbols_missing) or "none",
            f"{RUN}holidays_skipped": holidays_text(closed),
            f"{RUN}download_attempts": report.attempts,
            preview_label("closes", closes.index[-1]): dg.MetadataValue.md(last.round(4).to_markdown()),
        }
    )
    yield universe_priced(long, symbols, sessions)
