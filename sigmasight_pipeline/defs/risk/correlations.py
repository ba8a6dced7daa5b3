"""``position_correlations``: pairwise correlations, clusters and concentration of a book (date x portfolio).

Reads its 90-session window from the warehouse as of the partition date, never past it.
"""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import (
    add_rows, date_portfolio_asset, latest_preview, portfolio_batches, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.portfolios.portfolio_positions import portfolio_positions
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.inputs import CORRELATION_WINDOW, stored_valuations
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.engines import correlations as corr_engine
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window


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
            vals = stored_valuations(engine, batch)
            # The dollars that move with the returns: market value for stocks, delta-adjusted exposure
            # (with the x100 multiplier) for options; equal to market value for stocks.
            weights = vals[["date", "position_id"]].assign(market_value=vals.delta_adjusted_exposure)
            result = corr_engine.position_correlations(batch.positions, mkt.log_returns, weights, batch.sessions, window=CORRELATION_WINDOW)
            frames = {schema.position_correlations: result.pairs, schema.correlation_summaries: result.summary,
                      schema.correlation_clusters: result.clusters}
        add_rows(rows, write_tables(engine, batch, frames))
        latest.append(batch.stored(engine, schema.correlation_summaries))
    table = latest_preview(latest, ["portfolio_id", "positions_included", "overall_correlation", "concentration_score", "effective_positions", "clusters"])
    return dg.MaterializeResult(metadata=run_metadata(batches, rows, **preview_metadata("correlation_summary", latest, table, ",.4f")))
