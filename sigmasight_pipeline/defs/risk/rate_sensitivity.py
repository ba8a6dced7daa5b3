"""``rate_sensitivity``: interest-rate betas, dollars per basis point and linear shock P&L (date x portfolio).

Reads its 150-session window from the warehouse as of the partition date, never past it.
"""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import (
    PortfolioBatch, add_rows, date_portfolio_asset, latest_preview, portfolio_batches, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.factor_exposures import factor_exposures
from sigmasight_pipeline.defs.risk.greeks import position_greeks
from sigmasight_pipeline.defs.risk.inputs import FACTOR_WINDOW, MIN_OBS, stored_valuations
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.engines import rates as rate_engine
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window


def compute_rate_sensitivity(engine, batch: PortfolioBatch) -> dict:
    """A batch's position and portfolio rate sensitivity: rate betas on the 10-year yield change over the
    ``FACTOR_WINDOW`` sessions ending on each session, with the stored valuations, Greeks and Market exposure."""
    per_position = portfolio = pd.DataFrame()
    if len(batch.sessions):
        underlyings = sorted(set(batch.positions.underlying_symbol))
        mkt = market_window(engine, [*underlyings, SYMBOLS.TREASURY_10Y], batch.sessions, FACTOR_WINDOW + 1)
        symbol_betas = rate_engine.rolling_rate_betas(
            mkt.simple_returns[underlyings], mkt.prices[SYMBOLS.TREASURY_10Y], batch.sessions, FACTOR_WINDOW, MIN_OBS
        )
        vals = stored_valuations(engine, batch)
        greeks = batch.stored(engine, schema.position_greeks)
        per_position = rate_engine.position_rate_sensitivity(batch.positions, symbol_betas, vals, greeks)
        factors = batch.stored(engine, schema.portfolio_factor_exposures)
        portfolio = rate_engine.portfolio_rate_sensitivity(per_position, factors[factors.factor_name == "Market"])
    return {schema.position_rate_sensitivity: per_position, schema.portfolio_rate_sensitivity: portfolio}


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
        frames = compute_rate_sensitivity(engine, batch)
        add_rows(rows, write_tables(engine, batch, frames))
        latest.append(batch.stored(engine, schema.portfolio_rate_sensitivity))
    table = latest_preview(latest, ["portfolio_id", "dollar_per_bp", "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_market_down_10", "pnl_market_up_10"])
    return dg.MaterializeResult(metadata=run_metadata(batches, rows, **preview_metadata("portfolio_rate_sensitivity", latest, table)))
