"""``portfolio_performance``: returns, volatility, drawdown, Sharpe and the rest per window, from the stored
snapshots (date x portfolio)."""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from sigmasight_pipeline.defs.date_portfolio import (
    add_rows, date_portfolio_asset, last_date_rows, latest_preview, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.performance.checks import PERFORMANCE_HISTORY, performance_history
from sigmasight_pipeline.defs.performance.inputs import (
    MARKET_PROXY, batches_by_portfolio, rows_of, stored_returns, stored_snapshots,
)
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.snapshots.portfolio_snapshots import portfolio_snapshots
from sigmasight_pipeline.engines import performance as perf_engine
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.quality.performance import limited_history_problems
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame

#: Days of ^IRX quotes read before the first return (a quote missing that day takes the last earlier one).
RATE_LOOKBACK_DAYS = 10

PREVIEW = ["portfolio_id", "window_name", "n_returns", "cumulative_return", "annualized_return", "annual_volatility",
           "sharpe_ratio", "sortino_ratio", "max_drawdown", "current_drawdown", "beta", "tracking_error", "flag"]


def compute_performance(engine, portfolio_id: str, sessions: pd.DatetimeIndex) -> pd.DataFrame:
    """The rows of ``sessions`` from the portfolio's stored snapshots up to the last of them, SPY's returns and
    ^IRX (``engines.performance``); nothing dated after the last session is read."""
    snaps = stored_snapshots(engine, portfolio_id, sessions, ["daily_return"], history=True)
    first, last = snaps["date"].min(), sessions[-1]
    spy = stored_returns(engine, [MARKET_PROXY], first, last)[MARKET_PROXY]
    p = schema.market_prices
    irx = read_frame(engine, sa.select(p.c.date, p.c.close).where(
        p.c.symbol == SYMBOLS.TREASURY_13W, p.c.date >= (first - pd.Timedelta(days=RATE_LOOKBACK_DAYS)).date(),
        p.c.date <= last.date()).order_by(p.c.date))
    try:
        returns = perf_engine.return_series(snaps, spy, irx.set_index(pd.to_datetime(irx["date"]))["close"])
    except ValueError as exc:  # no short rate to measure excess returns against
        raise dg.Failure(f"{portfolio_id}: {exc}: materialize market_prices over the book's history") from exc
    start, back = perf_engine.sessions_needed(sessions, returns["date"].min() if len(returns) else None)
    calendar = xcal.sessions_in_range(min(start, xcal.sessions_window(sessions[0], back + 1)[0]), last)
    return perf_engine.performance_windows(returns, sessions, calendar)


@date_portfolio_asset(
    group_name="performance",
    deps=[portfolio_snapshots, market_prices, security_returns],
    description=(
        "How the book has done, per window ending on the date (month and year to date, trailing 21/63/126/252 "
        "sessions, since the first snapshot), from the snapshots' daily returns (daily P&L / the previous "
        "day's equity base; a first snapshot has none): time-weighted cumulative and annualised return, annual "
        "volatility, Sharpe and Sortino against ^IRX, maximum drawdown with its peak and trough dates, current "
        "drawdown, Calmar, best and worst day, share of positive days, and beta, alpha, correlation and tracking "
        "error against SPY. empyrical's conventions; fewer than 2 returns: no figure, and the reason."
    ),
    check_specs=[PERFORMANCE_HISTORY],
)
def portfolio_performance(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    batches, rows, stored_all, problems, limited_rows = [], {}, [], [], 0
    for pid, portfolio_batches_, sessions in batches_by_portfolio(context, engine):
        rows_all = compute_performance(engine, pid, sessions) if len(sessions) else pd.DataFrame()
        for batch in portfolio_batches_:
            batches.append(batch)
            add_rows(rows, write_tables(engine, batch, {schema.portfolio_performance: rows_of(rows_all, batch)}))
        if len(sessions):
            # the check and the preview read the rows just written: double precision, integers, dates and text,
            # which the table stores as given (NaN and NaT as NULL)
            problems += limited_history_problems(rows_all, pid)
            limited_rows += int((rows_all["flag"] != perf_engine.FLAG_OK).sum())
            stored_all.append(last_date_rows(rows_all).assign(portfolio_id=pid))
    order = {w.name: i for i, w in enumerate(perf_engine.WINDOWS)}
    table = latest_preview(stored_all, PREVIEW)
    table = table.assign(_order=table["window_name"].map(order)).sort_values(["portfolio_id", "_order"])[PREVIEW]
    table = table.astype(object).where(table.notna(), None)  # a window without a figure shows blanks, not "nan"
    yield dg.MaterializeResult(
        metadata=run_metadata(batches, rows, **preview_metadata("performance", stored_all, table, ",.4f"))
    )
    yield performance_history(problems, limited_rows)
