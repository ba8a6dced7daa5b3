"""Factor exposures, interest-rate sensitivity and position correlations (date x portfolio).

Each reads its trailing window from the warehouse as of the partition date, never past it.
"""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.market.assets import market_prices, security_returns
from sigmasight_pipeline.defs.portfolios.assets import portfolio_positions
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.common import (
    PortfolioBatch, add_rows, date_portfolio_asset, latest_preview, md_table, portfolio_batches, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.risk.valuation_assets import position_greeks, position_valuations
from sigmasight_pipeline.engines import correlations as corr_engine
from sigmasight_pipeline.engines import factors as factor_engine
from sigmasight_pipeline.engines import rates as rate_engine
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window
from sigmasight_pipeline.warehouse.reference import factor_definitions

FACTOR_WINDOW = 150  # sessions ending on the partition date
MIN_OBS = 60  # fewer overlapping returns: no beta
CORRELATION_WINDOW = 90


def _exposures(engine, batch: PortfolioBatch) -> pd.DataFrame:
    vals = batch.stored(engine, schema.position_valuations)
    if vals.empty:
        raise dg.Failure(f"no position_valuations rows for {batch.portfolio_id}: materialize position_valuations first")
    return vals


@date_portfolio_asset(
    group_name="risk",
    deps=[market_prices, security_returns, portfolio_positions, position_valuations],
    description=(
        "Factor betas of every position from one multivariate OLS per symbol over the 150 sessions ending on "
        "the partition date: daily returns on the Market (SPY) and the style spreads (VTV, VUG, MTUM, QUAL, "
        "SIZE, USMV minus SPY), so the Market beta is the total market beta. Options take their underlying's "
        "betas on their delta-adjusted exposure. Portfolio dollar exposure = sum of position exposure x beta. "
        "Also stores the design's condition number / max VIF and the factor covariance of the window."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "history_window",
            asset="factor_exposures",
            blocking=True,
            description=(
                "Every regression used the 150 sessions ending on the partition date (fewer only when flagged "
                "limited_history, never a beta from fewer than 60) and no observation after it."
            ),
        ),
        dg.AssetCheckSpec(
            "no_duplicate_factors",
            asset="factor_exposures",
            blocking=True,
            description=(
                "Unique (position, factor, date) and (portfolio, factor, date); the factor set equals the seven "
                "definitions and no two factors share a proxy."
            ),
        ),
    ],
)
def factor_exposures(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    definitions = factor_definitions()
    proxies = dict(zip(definitions.factor_name, definitions.proxy_symbol))
    batches, rows, window_problems, dup_problems, latest = [], {}, [], [], []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        frames = {t: pd.DataFrame() for t in (schema.position_factor_exposures, schema.portfolio_factor_exposures,
                                             schema.factor_regression_windows, schema.factor_correlations)}
        if len(batch.sessions):
            symbols = set(batch.positions.underlying_symbol) | set(proxies.values())
            mkt = market_window(engine, symbols, batch.sessions, FACTOR_WINDOW)
            design = factor_engine.factor_returns(mkt.simple_returns[list(proxies.values())], proxies)
            assets = mkt.simple_returns[sorted(set(batch.positions.underlying_symbol))]
            symbol_betas = factor_engine.rolling_factor_betas(assets, design, batch.sessions, FACTOR_WINDOW, MIN_OBS)
            vals = _exposures(engine, batch)
            per_position = factor_engine.position_factor_exposures(batch.positions, symbol_betas, vals)
            windows = symbol_betas.drop_duplicates(["date", "symbol"])[["date", "symbol", "window_start", "window_end"]]
            per_position = per_position.merge(
                batch.positions[["position_id", "underlying_symbol"]], on="position_id"
            ).merge(windows, left_on=["date", "underlying_symbol"], right_on=["date", "symbol"], how="left")
            expo = batch.stored(engine, schema.portfolio_exposures)
            equity = pd.DataFrame({
                "date": expo.date,
                "net_exposure": expo.delta_adjusted_exposure,
                "gross_exposure": expo.delta_adjusted_long - expo.delta_adjusted_short,
            })
            frames = {
                schema.position_factor_exposures: per_position,
                schema.portfolio_factor_exposures: factor_engine.portfolio_factor_exposures(per_position, equity),
                schema.factor_regression_windows: factor_engine.factor_diagnostics(design, batch.sessions, FACTOR_WINDOW),
                schema.factor_correlations: factor_engine.factor_correlations(design, batch.sessions, FACTOR_WINDOW),
            }
        add_rows(rows, write_tables(engine, batch, frames))
        stored_pos = batch.stored(engine, schema.position_factor_exposures)
        stored_port = batch.stored(engine, schema.portfolio_factor_exposures)
        stored_win = batch.stored(engine, schema.factor_regression_windows)
        window_problems += history_window_problems(stored_pos, stored_win, batch.portfolio_id)
        dup_problems += duplicate_factor_problems(stored_pos, stored_port, definitions, batch.portfolio_id)
        latest.append(stored_port)
    table = latest_preview(latest, ["portfolio_id", "factor_name", "dollar_exposure", "beta_net", "beta_gross", "positions_without_beta"])
    yield dg.MaterializeResult(metadata=run_metadata(batches, rows, portfolio_factor_exposures=md_table(table, ",.4f")))
    yield dg.AssetCheckResult(
        check_name="history_window", passed=not window_problems,
        metadata={"problems": "\n".join(window_problems[:20]) or "none", "window": FACTOR_WINDOW, "min_obs": MIN_OBS},
    )
    yield dg.AssetCheckResult(
        check_name="no_duplicate_factors", passed=not dup_problems,
        metadata={"problems": "\n".join(dup_problems[:20]) or "none", "factors": ", ".join(definitions.factor_name)},
    )


def history_window_problems(pos: pd.DataFrame, windows: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Regressions whose window is not the 150 sessions ending on the partition date (see ``history_window``)."""
    out = []
    for frame, what in ((pos, "position"), (windows, "design")):
        if frame.empty:
            continue
        after = frame[frame.window_end.notna() & (frame.window_end > frame.date)]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: window ends {r.window_end:%Y-%m-%d}, after the date" for r in after.itertuples()]
        dates = frame.date.unique()  # the calendar once per date, not once per row
        expected_end = frame.date.map({d: xcal.session_on_or_before(d) for d in dates})
        wrong_end = frame[frame.window_end.notna() & (frame.window_end != expected_end)]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: window ends {r.window_end:%Y-%m-%d}" for r in wrong_end.itertuples()]
        expected_start = frame.date.map({d: xcal.sessions_window(d, FACTOR_WINDOW)[0] for d in dates})
        early = frame[frame.window_start.notna() & (frame.window_start < expected_start)]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: window starts before the 150-session window" for r in early.itertuples()]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: {r.n_obs} observations > {FACTOR_WINDOW}" for r in frame[frame.n_obs > FACTOR_WINDOW].itertuples()]
    if len(pos):
        short_unflagged = pos[(pos.n_obs < FACTOR_WINDOW) & (pos.flag == "ok")]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} position {r.position_id}: {r.n_obs} obs without a limited_history flag" for r in short_unflagged.itertuples()]
        too_few = pos[(pos.n_obs < MIN_OBS) & pos.beta.notna()]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} position {r.position_id}: a beta from {r.n_obs} < {MIN_OBS} observations" for r in too_few.itertuples()]
    return out


def duplicate_factor_problems(pos: pd.DataFrame, port: pd.DataFrame, definitions: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Duplicated factor rows, a factor set other than the definitions, or a proxy shared by two factors."""
    out = []
    for frame, keys in ((pos, ["date", "position_id", "factor_name"]), (port, ["date", "factor_name"])):
        dup = frame[frame.duplicated(keys, keep=False)]
        out += [f"{portfolio_id}: duplicated rows for {dict(zip(keys, k))}" for k in dup[keys].drop_duplicates().itertuples(index=False)]
    expected = set(definitions.factor_name)
    for d, names in port.groupby("date").factor_name:
        if set(names) != expected:
            out.append(f"{portfolio_id} {d:%Y-%m-%d}: factors {sorted(set(names))} != definitions {sorted(expected)}")
    shared = definitions[definitions.proxy_symbol.duplicated(keep=False)]
    out += [f"proxy {p} shared by {', '.join(g.factor_name)}" for p, g in shared.groupby("proxy_symbol")]
    return out


@date_portfolio_asset(
    group_name="risk",
    deps=[market_prices, security_returns, position_valuations, position_greeks, factor_exposures],
    description=(
        "Rate beta of every position: its daily return regressed on the daily change of the 10-year yield in "
        "basis points (absolute change x 10,000 of the decimal ^TNX yield) over the 150 sessions ending on the "
        "date; dollars per bp = exposure x rate beta + option rho / 100. Portfolio: dollars per bp and linear "
        "P&L for rates +-100/200 bp and market +-5/10/20%."
    ),
)
def rate_sensitivity(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    engine = warehouse.engine
    batches, rows, latest = [], {}, []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        per_position = portfolio = pd.DataFrame()
        if len(batch.sessions):
            underlyings = sorted(set(batch.positions.underlying_symbol))
            mkt = market_window(engine, [*underlyings, SYMBOLS.TREASURY_10Y], batch.sessions, FACTOR_WINDOW + 1)
            symbol_betas = rate_engine.rolling_rate_betas(
                mkt.simple_returns[underlyings], mkt.prices[SYMBOLS.TREASURY_10Y], batch.sessions, FACTOR_WINDOW, MIN_OBS
            )
            vals = _exposures(engine, batch)
            greeks = batch.stored(engine, schema.position_greeks)
            per_position = rate_engine.position_rate_sensitivity(batch.positions, symbol_betas, vals, greeks)
            factors = batch.stored(engine, schema.portfolio_factor_exposures)
            portfolio = rate_engine.portfolio_rate_sensitivity(per_position, factors[factors.factor_name == "Market"])
        add_rows(rows, write_tables(engine, batch, {schema.position_rate_sensitivity: per_position, schema.portfolio_rate_sensitivity: portfolio}))
        latest.append(batch.stored(engine, schema.portfolio_rate_sensitivity))
    table = latest_preview(latest, ["portfolio_id", "dollar_per_bp", "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_market_down_10", "pnl_market_up_10"])
    return dg.MaterializeResult(metadata=run_metadata(batches, rows, portfolio_rate_sensitivity=md_table(table)))


@date_portfolio_asset(
    group_name="risk",
    deps=[security_returns, position_valuations, portfolio_positions],
    description=(
        "Pairwise correlations of daily log returns over the 90 sessions ending on the date (options on their "
        "underlying's returns) for positions worth at least $10k and 1% of the book, at least 20 overlapping "
        "returns per pair; value-weighted overall correlation, clusters (|rho| >= 0.7), concentration and "
        "effective number of positions from the real weights."
    ),
)
def position_correlations(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    engine = warehouse.engine
    batches, rows, latest = [], {}, []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        frames = {schema.position_correlations: pd.DataFrame(), schema.correlation_summaries: pd.DataFrame(),
                  schema.correlation_clusters: pd.DataFrame()}
        if len(batch.sessions):
            mkt = market_window(engine, batch.positions.underlying_symbol, batch.sessions, CORRELATION_WINDOW)
            vals = _exposures(engine, batch)
            # The dollars that move with the returns: market value for stocks, delta-adjusted exposure
            # (with the x100 multiplier) for options; equal to market value for stocks.
            weights = vals[["date", "position_id"]].assign(market_value=vals.delta_adjusted_exposure)
            result = corr_engine.position_correlations(batch.positions, mkt.log_returns, weights, batch.sessions, window=CORRELATION_WINDOW)
            frames = {schema.position_correlations: result.pairs, schema.correlation_summaries: result.summary,
                      schema.correlation_clusters: result.clusters}
        add_rows(rows, write_tables(engine, batch, frames))
        latest.append(batch.stored(engine, schema.correlation_summaries))
    table = latest_preview(latest, ["portfolio_id", "positions_included", "overall_correlation", "concentration_score", "effective_positions", "clusters"])
    return dg.MaterializeResult(metadata=run_metadata(batches, rows, correlation_summary=md_table(table, ",.4f")))
