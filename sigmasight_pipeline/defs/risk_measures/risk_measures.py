"""``risk_measures``: VaR and expected shortfall (historical with full revaluation, parametric factor model),
their Euler contributions, ex-ante volatility and tracking error, and the 99% VaR backtest (date x portfolio).

Reads, once per batch, what the upstream assets stored for its sessions and the 250-session market window
ending on each of them (never a row after the partition date); the engine is ``engines.risk_measures``.
"""

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa

from sigmasight_pipeline.defs.date_portfolio import (
    PortfolioBatch, add_rows, date_portfolio_asset, last_date_rows, latest_date, portfolio_batches, run_metadata,
    write_tables,
)
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.metadata import md_table, preview_label
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.factor_exposures import factor_exposures
from sigmasight_pipeline.defs.risk.greeks import position_greeks
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.defs.risk_measures.checks import (
    BACKTEST_ZONE, CONTRIBUTIONS_ADD_UP, ES_AT_LEAST_VAR, LIMITED_HISTORY, backtest_zone, contributions_add_up,
    es_at_least_var, limited_history,
)
from sigmasight_pipeline.defs.snapshots.portfolio_snapshots import portfolio_snapshots
from sigmasight_pipeline.engines import risk_measures as rm
from sigmasight_pipeline.engines.factors import MARKET
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.quality.risk_measures import (
    backtest_problems, contribution_sum_problems, es_at_least_var_problems, limited_history_problems,
)
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame, read_table
from sigmasight_pipeline.warehouse.reference import factor_definitions

TABLES = (schema.portfolio_risk_measures, schema.position_risk_contributions, schema.factor_risk_contributions,
          schema.risk_backtest)


def market_inputs(engine, symbols: set[str], sessions: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.Series]:
    """``(returns, short_rate)`` over the risk window of the first session through the last: the simple returns
    of ``symbols`` on every XNYS session from the window's start (a session without data is a row of NaN, a
    symbol without data a column of NaN; columns sorted) and ^IRX's closes (percent, by date). Only the columns
    used are read (``security_returns.simple_return``, ``market_prices.close`` of ^IRX); nothing after the last
    session."""
    start, end = xcal.sessions_window(sessions[0], rm.RISK_WINDOW)[0], sessions[-1]
    calendar = xcal.sessions_in_range(start, end)
    names = pd.Index(sorted(symbols))
    r = schema.security_returns
    rows = read_frame(engine, sa.select(r.c.date, r.c.symbol, r.c.simple_return)
                      .where(r.c.date >= start.date(), r.c.date <= end.date(), r.c.symbol.in_(list(names))))
    grid = np.full((len(calendar), len(names)), np.nan)
    if len(rows):
        t, k = calendar.get_indexer(rows["date"]), names.get_indexer(rows["symbol"])
        ok = (t >= 0) & (k >= 0)
        grid[t[ok], k[ok]] = rows["simple_return"].to_numpy(dtype=float)[ok]
    p = schema.market_prices
    irx = read_frame(engine, sa.select(p.c.date, p.c.close)
                     .where(p.c.symbol == SYMBOLS.TREASURY_13W, p.c.date >= start.date(), p.c.date <= end.date()))
    short_rate = pd.Series(irx["close"].to_numpy(dtype=float), index=pd.DatetimeIndex(irx["date"]))
    return pd.DataFrame(grid, index=calendar, columns=names), short_rate


def risk_inputs(engine, batch: PortfolioBatch, factors: list[str], market_proxy: str) -> dict:
    """The engine's inputs for a batch's sessions, as stored by the upstream assets (only the columns the engine
    reads), and its market window (:func:`market_inputs`)."""
    read = lambda table, *columns: batch.stored_columns(engine, table, ["date", *columns])  # noqa: E731
    valuations = read(schema.position_valuations, "position_id", "market_value", "delta_adjusted_exposure")
    if valuations.empty:
        raise dg.Failure(f"no position_valuations rows for {batch.portfolio_id}: materialize position_valuations first")
    factor_cov = read(schema.factor_correlations, "factor_a", "factor_b", "covariance")
    if factor_cov.empty:
        raise dg.Failure(f"no factor_correlations rows for {batch.portfolio_id}: materialize factor_exposures first")
    symbols = set(batch.positions.underlying_symbol) | set(batch.positions.symbol) | {market_proxy, SYMBOLS.TREASURY_13W}
    returns, short_rate = market_inputs(engine, symbols, batch.sessions)
    exposures = read(schema.portfolio_exposures, "net_exposure")
    return {
        "positions": batch.positions,
        "valuations": valuations,
        "greeks": read(schema.position_greeks, "position_id", "underlying_price", "implied_vol", "days_to_expiry",
                       "dividend_yield"),
        "position_betas": batch.stored_betas(engine, factors),
        "factor_cov": factor_cov,
        "returns": returns,
        "market_returns": returns[market_proxy],
        "short_rate": short_rate,
        "equity": exposures.set_index("date")["net_exposure"],  # the book's net liquidation value
        "dates": batch.sessions,
        "factors": factors,
    }


def backtest_rows(engine, batch: PortfolioBatch, measures: pd.DataFrame) -> pd.DataFrame:
    """The batch's backtest: each session's realised P&L (its stored snapshot; a first snapshot, measured from
    entry, has no daily P&L to test) against the 99% 1-day historical VaR of the previous session (this run's,
    else as stored), over the last 250 backtested sessions (earlier ones as stored)."""
    pid, sessions = batch.portfolio_id, batch.sessions
    first_prev = xcal.previous_session(sessions[0])
    calendar = xcal.sessions_in_range(first_prev, sessions[-1])
    previous = pd.Series(calendar[:-1], index=calendar[1:]).reindex(sessions)

    def var_99(frame: pd.DataFrame) -> pd.Series:
        rows = frame[(frame["method"] == rm.HISTORICAL) & (frame["measure"] == "var")
                     & np.isclose(frame["level"], rm.BACKTEST_LEVEL) & (frame["horizon_days"] == 1)]
        return rows.set_index("date")["value"]

    var = var_99(measures)
    older = sorted(set(previous) - set(var.index))
    if older:
        var = pd.concat([var_99(read_table(engine, schema.portfolio_risk_measures, dates=older, portfolio_id=pid)), var])
    snaps = batch.stored_columns(engine, schema.portfolio_snapshots, ["date", "daily_pnl", "is_first_snapshot"])
    pnl = snaps[~snaps["is_first_snapshot"].astype(bool)].set_index("date")["daily_pnl"].reindex(sessions)
    window_start = xcal.sessions_window(first_prev, rm.RISK_WINDOW)[0]
    prior = read_table(engine, schema.risk_backtest, start=window_start, end=first_prev, portfolio_id=pid)
    return rm.var_backtest(sessions, previous.to_numpy(), var.reindex(previous.to_numpy()).to_numpy(dtype=float),
                           pnl.to_numpy(dtype=float), prior.sort_values("date")["exception"].astype(bool).tolist())


#: The rows of the VaR / ES preview, in order.
TAIL_ROWS = [("var", 0.95, "VaR 95%"), ("var", 0.99, "VaR 99%"), ("es", 0.95, "ES 95%"), ("es", 0.975, "ES 97.5%"),
             ("es", 0.99, "ES 99%")]


def var_es_table(measures: list[pd.DataFrame]) -> pd.DataFrame:
    """Each portfolio's latest date: VaR and ES by method and level, 1-day and 10-day (scaled), with the flag
    of the 1-day row (history, filled returns, symbols left out, negative VaR)."""
    columns = ["portfolio_id", "method", "measure", "1-day", "10-day (x sqrt 10)", "flag"]
    out = []
    for frame in measures:
        if frame.empty:
            continue
        last = frame[frame["date"] == frame["date"].max()]
        cells = {(m, k, round(lv, 9), h): (v, f) for m, k, lv, h, v, f in zip(
            last["method"], last["measure"], last["level"], last["horizon_days"], last["value"], last["flag"])}
        for method in (rm.HISTORICAL, rm.PARAMETRIC):
            for measure, level, label in TAIL_ROWS:
                one = cells.get((method, measure, round(level, 9), 1))
                ten = cells.get((method, measure, round(level, 9), rm.SCALED_HORIZON))
                if one is None and ten is None:
                    continue
                out.append([frame["portfolio_id"].iloc[0], method, label, one and one[0], ten and ten[0], one and one[1]])
    return pd.DataFrame(out, columns=columns)


def risk_summary_table(measures: list[pd.DataFrame], backtests: list[pd.DataFrame]) -> pd.DataFrame:
    """Each portfolio's latest date: ex-ante volatility and tracking error (annual, dollars and of equity), the
    factor / specific split of the parametric variance, and the backtest zone."""
    out = []
    for frame, bt in zip(measures, backtests):
        if frame.empty:
            continue
        last = frame[(frame["date"] == frame["date"].max()) & (frame["method"] == rm.PARAMETRIC)]
        get = last.set_index(["measure", "horizon_days"])["value"]
        zone = bt[bt["date"] == bt["date"].max()].iloc[0] if len(bt) else None
        out.append({
            "portfolio_id": frame["portfolio_id"].iloc[0],
            "ex-ante vol (annual $)": get.get(("volatility", rm.TRADING_DAYS)),
            "vol of equity": get.get(("volatility_of_equity", rm.TRADING_DAYS)),
            "tracking error (annual $)": get.get(("tracking_error", rm.TRADING_DAYS)),
            "TE of equity": get.get(("tracking_error_of_equity", rm.TRADING_DAYS)),
            "factor share": get.get(("factor_share", 1)), "specific share": get.get(("specific_share", 1)),
            "backtest": (f"{zone.zone}: {zone.exceptions} exc. in {zone.window_sessions}, Kupiec p {zone.kupiec_p_value:.3f}"
                         if zone is not None else "no previous VaR"),
        })
    return pd.DataFrame(out)


def top_contributors(contributions: list[pd.DataFrame], positions: list[pd.DataFrame], n: int = 5) -> pd.DataFrame:
    """Each portfolio's ``n`` largest contributors to the latest date's 97.5% historical ES, with their share of
    it and their share of the parametric sigma."""
    out = []
    for frame, book in zip(contributions, positions):
        if frame.empty:
            continue
        last = frame[frame["date"] == frame["date"].max()]
        hist = last[(last["method"] == rm.HISTORICAL) & np.isclose(last["level"], 0.975)]
        par = last[last["method"] == rm.PARAMETRIC].set_index("position_id")["share"]
        top = hist.nlargest(n, "contribution").merge(book[["position_id", "symbol"]], on="position_id", how="left")
        out.append(pd.DataFrame({
            "portfolio_id": top["portfolio_id"], "symbol": top["symbol"],
            "ES 97.5% contribution": top["contribution"], "share of ES": top["share"],
            "share of parametric sigma": top["position_id"].map(par).to_numpy(),
        }))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


@date_portfolio_asset(
    group_name="risk_measures",
    deps=[market_prices, security_returns, position_valuations, position_greeks, factor_exposures, portfolio_snapshots],
    description=(
        "VaR (95%, 99%) and expected shortfall (95%, 97.5%, 99%), 1-day and 10-day (x sqrt 10): historical "
        "simulation over the 250 sessions ending on the partition date, today's book with every option fully "
        "revalued by Black-Scholes-Merton (a symbol's missing return filled with Market beta x market return), "
        "and the parametric factor model (x'Fx + specific risk from the 150-session regression). Euler "
        "contributions by position (historical ES, parametric sigma) and by factor and specific risk; ex-ante "
        "volatility and tracking error against the market proxy; the 99% VaR backtest (exceptions in the last "
        "250 sessions, Kupiec, Basel zone) against the snapshot's daily P&L."
    ),
    check_specs=[ES_AT_LEAST_VAR, CONTRIBUTIONS_ADD_UP, BACKTEST_ZONE, LIMITED_HISTORY],
)
def risk_measures(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    definitions = factor_definitions()
    factors = list(definitions.factor_name)
    market_proxy = dict(zip(definitions.factor_name, definitions.proxy_symbol))[MARKET]
    batches, rows = [], {}
    latest = {t.name: [] for t in TABLES}  # each batch's rows of its latest date, for the previews
    books, es_var, sums, backtest, history, measured, backtested = [], [], [], [], [], 0, 0
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        pid = batch.portfolio_id
        if len(batch.sessions):
            try:
                out = rm.risk_measures_range(**risk_inputs(engine, batch, factors, market_proxy))
            except ValueError as exc:  # e.g. a date without a factor covariance
                raise dg.Failure(f"risk measures of {pid}: {exc}", metadata={"portfolio": pid}) from exc
            # the biggest table first: write_tables turns each frame into rows inside its one transaction, and on
            # SQLite the first delete takes the database's write lock (which the other runs' writes wait for)
            frames = {
                schema.position_risk_contributions: out.position_contributions,
                schema.portfolio_risk_measures: out.measures,
                schema.factor_risk_contributions: out.factor_contributions,
                schema.risk_backtest: backtest_rows(engine, batch, out.measures),
            }
        else:  # nothing to compute: the batch's dates are cleared
            frames = {t: pd.DataFrame(columns=[c.name for c in t.columns if c.name != "portfolio_id"]) for t in TABLES}
        written = write_tables(engine, batch, frames)
        add_rows(rows, {t.name: written[t.name] for t in TABLES})
        # The checks judge the frames just written: the tables' columns are double precision, integers, dates and
        # text, which the warehouse stores as given (NaN as NULL), so they are the stored rows.
        got = {t.name: frame for t, frame in frames.items()}
        measures, backtests = got["portfolio_risk_measures"], got["risk_backtest"]
        es_var += es_at_least_var_problems(measures, pid)
        sums += contribution_sum_problems(measures, got["position_risk_contributions"],
                                          got["factor_risk_contributions"], pid)
        backtest += backtest_problems(backtests, pid)
        history += limited_history_problems(measures, pid)
        measured += len(measures)
        backtested += len(backtests)
        for name, frame in got.items():
            latest[name].append(last_date_rows(frame).assign(portfolio_id=pid))
        books.append(batch.positions)
    measures = latest["portfolio_risk_measures"]
    date = latest_date(measures)
    yield dg.MaterializeResult(
        metadata=run_metadata(
            batches, rows,
            **{
                preview_label("VaR and ES", date): md_table(var_es_table(measures)),
                # money to 2 decimals, fractions to 4 (tabulate takes a format per column)
                preview_label("volatility, tracking error, backtest", date): md_table(
                    risk_summary_table(measures, latest["risk_backtest"]), ("", ",.2f", ".4f", ",.2f", ".4f", ".4f", ".4f")),
                preview_label("top five contributors", date): md_table(
                    top_contributors(latest["position_risk_contributions"], books), ("", "", ",.2f", ".4f", ".4f")),
            },
        )
    )
    yield es_at_least_var(es_var, measured)
    yield contributions_add_up(sums)
    yield backtest_zone(backtest, backtested)
    yield limited_history(history)
