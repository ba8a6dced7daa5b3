"""``factor_exposures``: factor betas per position and dollar exposures per portfolio (date x portfolio).

Reads its 150-session window from the warehouse as of the partition date, never past it.
"""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import (
    PortfolioBatch, add_rows, date_portfolio_asset, latest_preview, portfolio_batches, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.portfolios.portfolio_positions import portfolio_positions
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.checks import (
    HISTORY_WINDOW, NO_DUPLICATE_FACTORS, history_window, history_window_problems, no_duplicate_factors,
)
from sigmasight_pipeline.defs.risk.inputs import FACTOR_WINDOW, MIN_OBS, stored_valuations
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.engines import factors as factor_engine
from sigmasight_pipeline.quality.factors import duplicate_factor_problems
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window
from sigmasight_pipeline.warehouse.reference import factor_definitions


def compute_factor_exposures(engine, batch: PortfolioBatch, proxies: dict[str, str]) -> dict:
    """A batch's position and portfolio factor exposures, regression windows and factor covariance: one OLS per
    symbol over the ``FACTOR_WINDOW`` sessions ending on each session, on the factor returns of ``proxies``
    (factor name -> proxy symbol); dollar exposures from the stored valuations and exposures."""
    frames = {t: pd.DataFrame() for t in (schema.position_factor_exposures, schema.portfolio_factor_exposures,
                                         schema.factor_regression_windows, schema.factor_correlations)}
    if len(batch.sessions):
        symbols = set(batch.positions.underlying_symbol) | set(proxies.values())
        mkt = market_window(engine, symbols, batch.sessions, FACTOR_WINDOW)
        design = factor_engine.factor_returns(mkt.simple_returns[list(proxies.values())], proxies)
        assets = mkt.simple_returns[sorted(set(batch.positions.underlying_symbol))]
        symbol_betas = factor_engine.rolling_factor_betas(assets, design, batch.sessions, FACTOR_WINDOW, MIN_OBS)
        vals = stored_valuations(engine, batch)
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
    return frames


@date_portfolio_asset(
    group_name="risk",
    deps=[market_prices, security_returns, portfolio_positions, position_valuations],
    description=(
        "Factor betas of every position from one multivariate OLS per symbol over the 150 sessions ending on "
        "the partition date: daily returns on the Market (SPY) and the style spreads (VTV, VUG, MTUM, QUAL, "
        "SIZE, USMV minus SPY), so the Market beta is the total market beta. Options take their underlying's "
        "betas on their delta-adjusted exposure. Portfolio dollar exposure = sum of position exposure x beta. "
        "Each position row also carries its symbol's daily residual standard deviation (the specific risk of the "
        "parametric VaR). Also stores the design's condition number / max VIF and the factor covariance of the "
        "window."
    ),
    check_specs=[HISTORY_WINDOW, NO_DUPLICATE_FACTORS],
)
def factor_exposures(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    definitions = factor_definitions()
    proxies = dict(zip(definitions.factor_name, definitions.proxy_symbol))
    batches, rows, window_problems, dup_problems, latest = [], {}, [], [], []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        frames = compute_factor_exposures(engine, batch, proxies)
        add_rows(rows, write_tables(engine, batch, frames))
        stored_pos = batch.stored(engine, schema.position_factor_exposures)
        stored_port = batch.stored(engine, schema.portfolio_factor_exposures)
        stored_win = batch.stored(engine, schema.factor_regression_windows)
        window_problems += history_window_problems(stored_pos, stored_win, batch.portfolio_id)
        dup_problems += duplicate_factor_problems(stored_pos, stored_port, definitions, batch.portfolio_id)
        latest.append(stored_port)
    table = latest_preview(latest, ["portfolio_id", "factor_name", "dollar_exposure", "beta_net", "beta_gross", "positions_without_beta"])
    yield dg.MaterializeResult(
        metadata=run_metadata(batches, rows, **preview_metadata("portfolio_factor_exposures", latest, table, ",.4f"))
    )
    yield history_window(window_problems)
    yield no_duplicate_factors(dup_problems, definitions)
