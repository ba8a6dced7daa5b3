"""``position_greeks``: Black-Scholes-Merton Greeks per position and date (date x portfolio)."""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import (
    PortfolioBatch, add_rows, date_portfolio_asset, last_date_rows, portfolio_batches, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.metadata import RUN
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.checks import GREEKS_SANE, greeks_sane
from sigmasight_pipeline.defs.risk.inputs import MARKET_DEPS, REALIZED_VOL_WINDOW, market_symbols
from sigmasight_pipeline.engines.options import position_greeks as greeks_engine, realized_volatility
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window


def compute_greeks(engine, batch: PortfolioBatch) -> tuple[pd.DataFrame, pd.Series]:
    """``(position Greeks, short rate)`` of a batch's sessions: sigma the uploaded implied vol, else the
    underlying's realised vol over ``REALIZED_VOL_WINDOW`` sessions; the short rate ^IRX (percent, by date)."""
    mkt = market_window(engine, market_symbols(batch.positions), batch.sessions, REALIZED_VOL_WINDOW + 1)
    vol = realized_volatility(mkt.log_returns, batch.sessions, window=REALIZED_VOL_WINDOW)
    short_rate = mkt.prices[SYMBOLS.TREASURY_13W]
    return greeks_engine(batch.positions, mkt.prices, batch.sessions, short_rate, vol), short_rate


@date_portfolio_asset(
    group_name="risk",
    deps=MARKET_DEPS,
    description=(
        "Black-Scholes-Merton Greeks per position and date: delta, gamma, theta (per calendar day), vega (per "
        "vol point), rho (per 1% rate), per share and per position (x contracts x 100, signed), dollar delta "
        "and dollar gamma. sigma is the uploaded implied vol, else the underlying's 60-session realised vol "
        "(vol_source implied | realized | none); q is the underlying's dividend yield from the security "
        "master (0 when unknown); the short rate is ^IRX. VIX options are priced off VIX spot (pricing_note: "
        "the futures curve is not modelled). Stocks carry delta 1."
    ),
    check_specs=[GREEKS_SANE],
)
def position_greeks(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    batches, rows, frames = [], {}, []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        greeks = pd.DataFrame()
        if len(batch.sessions):
            greeks, short_rate = compute_greeks(engine, batch)
            frames.append(greeks.assign(portfolio_id=batch.portfolio_id, short_rate=short_rate.reindex(greeks.date).to_numpy()))
        add_rows(rows, write_tables(engine, batch, {schema.position_greeks: greeks}))
    all_greeks = pd.concat(frames) if frames else pd.DataFrame()
    all_positions = pd.concat([b.positions.assign(portfolio_id=b.portfolio_id) for b in batches])
    flags = all_greeks.flag.value_counts().to_dict() if len(all_greeks) else {}
    vol_sources = {}  # which volatility priced the options: rows (date x option) per vol_source
    if len(all_greeks):
        keys = ["portfolio_id", "position_id"]
        options = all_greeks.merge(all_positions.loc[all_positions.is_option.astype(bool), keys], on=keys)
        vol_sources = options.vol_source.value_counts().to_dict()
    preview = last_date_rows(all_greeks)
    if len(preview):
        preview = preview.merge(all_positions[["portfolio_id", "position_id", "symbol", "is_option"]], on=["portfolio_id", "position_id"])
        preview = preview.loc[preview.is_option, [
            "portfolio_id", "symbol", "underlying_price", "implied_vol", "vol_source", "dividend_yield", "days_to_expiry", "model_price",
            "delta", "gamma", "theta", "vega", "rho", "position_delta", "dollar_delta",
        ]]
    yield dg.MaterializeResult(
        metadata=run_metadata(
            batches, rows,
            **{f"{RUN}flags": dg.MetadataValue.json({str(k): int(v) for k, v in flags.items()})},
            **{f"{RUN}option_vol_sources": dg.MetadataValue.json({str(k): int(v) for k, v in vol_sources.items()})},
            **preview_metadata("option_greeks", [all_greeks], preview, ",.4f"),
        )
    )
    yield greeks_sane(all_greeks, all_positions)
