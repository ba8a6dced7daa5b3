"""What the risk assets read besides their own rows: the market symbols a book needs, its stored valuations,
the upstream assets, and the history windows (sessions) of the engines."""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import PortfolioBatch
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.portfolios.portfolio_positions import portfolio_positions
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.warehouse import schema

#: Realised volatility window (sessions) for options without an implied volatility.
REALIZED_VOL_WINDOW = 60
FACTOR_WINDOW = 150  # sessions ending on the partition date
MIN_OBS = 60  # fewer overlapping returns: no beta
CORRELATION_WINDOW = 90

#: The market and book assets every risk asset depends on.
MARKET_DEPS = [market_prices, security_returns, portfolio_positions]


def market_symbols(positions: pd.DataFrame) -> list[str]:
    """The price series a book needs: its symbols, their underlyings and the short rate (^IRX)."""
    return sorted(set(positions.underlying_symbol) | set(positions.symbol) | {SYMBOLS.TREASURY_13W})


def stored_valuations(engine, batch: PortfolioBatch) -> pd.DataFrame:
    """The batch's stored ``position_valuations`` (exposures); a Failure when there are none yet."""
    vals = batch.stored(engine, schema.position_valuations)
    if vals.empty:
        raise dg.Failure(f"no position_valuations rows for {batch.portfolio_id}: materialize position_valuations first")
    return vals
