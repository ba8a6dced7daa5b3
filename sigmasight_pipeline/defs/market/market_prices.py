"""``market_prices``: closing prices of the universe, partitioned by trading date, shared by every portfolio.

With the prices of a run it stores, in the same transaction, what the book needs to read them (books.md,
"Market data that a real book needs"): the split history of the universe's stocks and funds (``stock_splits``,
upserted by symbol and ex-date: splits are not per date) and the security master rows of the universe
(``security_master``: the source's classification when online, the shipped file offline).
"""

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
from sigmasight_pipeline.marketdata.base import has_splits, universe
from sigmasight_pipeline.marketdata.calendar import split_sessions
from sigmasight_pipeline.marketdata.security_master import lookup
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import write_partition
from sigmasight_pipeline.warehouse.portfolios import held_symbols
from sigmasight_pipeline.warehouse.reference import store_security_master
from sigmasight_pipeline.warehouse.splits import store_splits

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
        "explicit no-ops. Also stores, in the same transaction, the split history of the universe's stocks "
        "and funds (stock_splits) and its security master rows (security_master)."
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
    splits = source.fetch_splits([s for s in symbols if has_splits(s)])
    for error in source.last_split_errors:
        context.log.warning(error)
    master = lookup(symbols, fetch_info=source.fetch_security_info)
    with engine.begin() as conn:
        write_partition(engine, schema.market_prices, long, dates=dates, connection=conn)
        store_splits(conn, splits, source.name)
        store_security_master(conn, master)
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
            f"{RUN}splits": splits_text(splits),
            f"{RUN}split_errors": "; ".join(source.last_split_errors) or "none",
            f"{RUN}security_master_rows": len(master),
            preview_label("closes", closes.index[-1]): dg.MetadataValue.md(last.round(4).to_markdown()),
        }
    )
    yield universe_priced(long, symbols, sessions)


def splits_text(splits) -> dg.MetadataValue | str:
    """The splits a run loaded as a Markdown table (symbol, ex-date, ratio N / M), or "none"."""
    if splits is None or splits.empty:
        return "none"
    table = splits.assign(ex_date=splits["ex_date"].dt.strftime("%Y-%m-%d"))
    return dg.MetadataValue.md(table.to_markdown(index=False, floatfmt="g"))
