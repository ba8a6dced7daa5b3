"""``position_valuations``: market values and exposures per position, portfolio and group (date x portfolio)."""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import (
    PortfolioBatch, add_rows, date_portfolio_asset, latest_preview, portfolio_batches, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.checks import EXPOSURES_CONSISTENT, exposures_consistent
from sigmasight_pipeline.defs.risk.greeks import position_greeks
from sigmasight_pipeline.defs.risk.inputs import MARKET_DEPS, market_symbols
from sigmasight_pipeline.engines.valuation import group_exposures, portfolio_exposures, value_positions
from sigmasight_pipeline.quality.valuation import exposure_problems
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window


def compute_valuations(engine, batch: PortfolioBatch) -> dict:
    """A batch's ``position_valuations``, ``portfolio_exposures`` and ``group_exposures`` (by tag and by
    underlying) from its stored Greeks (an option without a market price is marked to their model price); a
    flat book (every position closed) values nothing and has zero exposures."""
    vals = expo = groups = pd.DataFrame()
    if batch.flat:  # every position closed: nothing to value, zero exposures
        expo = portfolio_exposures(vals, batch.positions, flat_dates=batch.sessions)
    elif len(batch.sessions):
        mkt = market_window(engine, market_symbols(batch.positions), batch.sessions, 1)
        greeks = batch.stored(engine, schema.position_greeks)
        if greeks.empty:
            raise dg.Failure(f"no position_greeks rows for {batch.portfolio_id}: materialize position_greeks first")
        vals = value_positions(batch.positions, mkt.prices, batch.sessions, greeks)
        held = batch.positions[["position_id", "quantity", "realized_to_date"]]  # the day's book (engines.book)
        vals = vals.merge(held.rename(columns={"realized_to_date": "realized_pnl"}), on="position_id", how="left")
        expo = portfolio_exposures(vals, batch.positions)
        groups = pd.concat(
            [group_exposures(vals, batch.positions, by=by).assign(group_type=by) for by in ("tag", "underlying")]
        ).rename(columns={"group": "group_name"})
        groups["market_value"] = groups["net_exposure"]  # signed sum of the group's market values
    return {schema.position_valuations: vals, schema.portfolio_exposures: expo, schema.group_exposures: groups}


@date_portfolio_asset(
    group_name="risk",
    deps=[*MARKET_DEPS, position_greeks],
    description=(
        "Market value (signed quantity x price x multiplier), cost basis, unrealised P&L, notional and "
        "delta-adjusted exposure per position; portfolio long/short/gross/net exposures and counts; exposures "
        "by tag and by underlying. Options without a market price are marked to the Black-Scholes-Merton model "
        "price from position_greeks (price_source = model). The delta-adjusted exposure of VIX options is "
        "volatility exposure (volatility_delta_exposure), kept out of the equity delta-adjusted figures."
    ),
    check_specs=[EXPOSURES_CONSISTENT],
)
def position_valuations(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    batches, rows, exposures_all, problems = [], {}, [], []
    for batch in portfolio_batches(context, engine, flat_sessions=True):
        batches.append(batch)
        frames = compute_valuations(engine, batch)
        add_rows(
            rows,
            write_tables(engine, batch, frames),
        )
        stored = batch.stored(engine, schema.position_valuations)
        stored_expo = batch.stored(engine, schema.portfolio_exposures)
        problems += exposure_problems(stored, stored_expo, batch.positions, batch.portfolio_id)
        exposures_all.append(stored_expo)
    summary = latest_preview(exposures_all, [
        "portfolio_id", "date", "long_exposure", "short_exposure", "gross_exposure", "net_exposure",
        "delta_adjusted_exposure", "volatility_delta_exposure", "position_count", "missing_price_count",
    ])
    yield dg.MaterializeResult(metadata=run_metadata(batches, rows, **preview_metadata("exposures", exposures_all, summary)))
    yield exposures_consistent(problems, sum(len(e) for e in exposures_all))
