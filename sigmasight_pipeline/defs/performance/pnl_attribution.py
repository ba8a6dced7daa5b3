"""``pnl_attribution``: the day's snapshot P&L by factor, specific and residual (date x portfolio)."""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from sigmasight_pipeline.defs.date_portfolio import (
    add_rows, date_portfolio_asset, latest_preview, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.performance.checks import (
    ATTRIBUTION_COVERAGE, ATTRIBUTION_SUMS_TO_PNL, attribution_coverage, attribution_sums_to_pnl,
)
from sigmasight_pipeline.defs.performance.inputs import (
    batches_by_portfolio, rows_of, stored_betas, stored_returns, stored_rows, stored_snapshots,
)
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.factor_exposures import factor_exposures
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.defs.snapshots.portfolio_snapshots import portfolio_snapshots
from sigmasight_pipeline.engines.attribution import attribute_pnl
from sigmasight_pipeline.engines.factors import DEFAULT_FACTOR_PROXIES, factor_returns
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.quality.performance import attribution_coverage_problems, attribution_sum_problems
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame

PREVIEW = ["portfolio_id", "line", "exposure", "factor_return", "pnl", "flag"]
PREVIEW_FORMAT = ("", "", ",.2f", ".3%", ",.2f", "")  # the factor's return as a percentage
#: The stored columns the preview reads back.
STORED = ["date", "line", "line_order", "exposure", "factor_return", "pnl", "flag"]


def compute_attribution(engine, portfolio_id: str, sessions: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(rows, snapshots)``: the attribution rows of ``sessions`` (``engines.attribution``) and the stored
    snapshots of those sessions they attribute. Reads the snapshots, the stored exposures and betas of the
    sessions before them, and the market returns of the sessions, each once and only the columns used."""
    snaps = stored_snapshots(engine, portfolio_id, sessions, ["daily_pnl", "is_first_snapshot"], history=False)
    calendar = xcal.sessions_in_range(xcal.previous_session(sessions[0]), sessions[-1])
    previous = calendar[calendar.get_indexer(sessions) - 1]  # t-1 of every session
    read = lambda table, columns: stored_rows(engine, table, portfolio_id, previous, columns)  # noqa: E731
    p = schema.positions
    positions = read_frame(engine, sa.select(p.c.position_id, p.c.symbol, p.c.underlying_symbol)
                           .where(p.c.portfolio_id == portfolio_id).order_by(p.c.position_id))
    market_symbol = positions["underlying_symbol"].where(positions["underlying_symbol"].fillna("").str.strip() != "",
                                                         positions["symbol"])
    symbols = pd.DataFrame({"position_id": positions["position_id"], "market_symbol": market_symbol})
    proxies = dict(DEFAULT_FACTOR_PROXIES)
    rets = stored_returns(engine, set(symbols["market_symbol"]) | set(proxies.values()), sessions[0], sessions[-1])
    rows = attribute_pnl(
        snapshots=snaps[["date", "daily_pnl", "is_first_snapshot"]],
        factor_exposures=read(schema.portfolio_factor_exposures, ["date", "factor_name", "dollar_exposure"]),
        position_exposures=read(schema.position_valuations, ["date", "position_id", "delta_adjusted_exposure"]),
        position_betas=stored_betas(engine, portfolio_id, previous, list(proxies)),
        position_symbols=symbols,
        factor_returns=factor_returns(rets[list(proxies.values())], proxies),
        symbol_returns=rets,
        sessions=calendar,
    )
    return rows, snaps


@date_portfolio_asset(
    group_name="performance",
    deps=[portfolio_snapshots, factor_exposures, position_valuations, security_returns],
    description=(
        "Where the day's P&L came from: the snapshot's daily P&L = sum over factors of the previous session's "
        "dollar exposure x the factor's return (Market: SPY's; a style: its ETF's minus SPY's) + specific "
        "(each position's previous exposure x its return beyond what its betas explain) + residual (option "
        "convexity and theta, trades, positions without betas). Lines rounded to the cent with the residual as "
        "the remainder, so they add up to the snapshot P&L exactly; a first snapshot (P&L since entry) has none."
    ),
    check_specs=[ATTRIBUTION_SUMS_TO_PNL, ATTRIBUTION_COVERAGE],
)
def pnl_attribution(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    batches, rows, latest, sum_problems, coverage, checked = [], {}, [], [], [], 0
    for pid, portfolio_batches_, sessions in batches_by_portfolio(context, engine):
        rows_all, snaps = compute_attribution(engine, pid, sessions) if len(sessions) else (pd.DataFrame(), None)
        for batch in portfolio_batches_:
            batches.append(batch)
            add_rows(rows, write_tables(engine, batch, {schema.pnl_attribution: rows_of(rows_all, batch)}))
        if len(sessions):
            # the checks judge the rows just written: their pnl is already in cents, as the table stores it
            sum_problems += attribution_sum_problems(rows_all, snaps, pid)
            coverage += attribution_coverage_problems(rows_all, pid)
            checked += len(snaps)
            if len(rows_all):  # the preview shows the latest date as stored (exposures rounded to the cent)
                last = stored_rows(engine, schema.pnl_attribution, pid, [rows_all["date"].max()], STORED)
                latest.append(last.assign(portfolio_id=pid).sort_values(["date", "line_order"]))
    table = latest_preview(latest, PREVIEW)
    table = table.astype(object).where(table.notna(), None)  # no "nan" in the UI: specific and residual have no exposure
    yield dg.MaterializeResult(
        metadata=run_metadata(batches, rows, **preview_metadata("attribution", latest, table, PREVIEW_FORMAT))
    )
    yield attribution_sums_to_pnl(sum_problems, checked)
    yield attribution_coverage(coverage)
