"""``portfolio_snapshots``: daily portfolio snapshots with P&L from position price changes (date x portfolio)."""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import (
    add_rows, date_portfolio_asset, latest_preview, portfolio_batches, preview_metadata, run_metadata, write_tables,
)
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.greeks import position_greeks
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.defs.snapshots.checks import SNAPSHOT_SUMS, snapshot_sums
from sigmasight_pipeline.engines.book import positions_on
from sigmasight_pipeline.engines.snapshots import daily_position_pnl, portfolio_snapshots as snapshot_engine
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.quality.snapshots import snapshot_problems
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_table


@date_portfolio_asset(
    group_name="snapshots",
    deps=[position_valuations, position_greeks],
    description=(
        "One snapshot per portfolio and session: value, exposures, counts, Greeks totals and daily P&L = sum over "
        "positions of (market value_t - market value_t-1 at the previous close) minus the net cash paid for the "
        "day's trades and fees (a position opened that day counts from its trade price), realised P&L (FIFO), "
        "daily return on the previous day's gross exposure, and cumulative P&L. The first snapshot's P&L is "
        "measured from entry prices, flagged, and has no daily return."
    ),
    check_specs=[SNAPSHOT_SUMS],
)
def portfolio_snapshots(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    batches, rows, problems, snaps = [], {}, [], []
    for batch in portfolio_batches(context, engine, flat_sessions=True):  # a flat book: its closing day's P&L
        batches.append(batch)
        snap = pnl = pd.DataFrame()
        if len(batch.sessions):
            pid, sessions = batch.portfolio_id, batch.sessions
            vals = batch.stored(engine, schema.position_valuations)
            expo = batch.stored(engine, schema.portfolio_exposures)
            greeks = batch.stored(engine, schema.position_greeks)
            if vals.empty and not batch.flat:
                raise dg.Failure(f"no position_valuations rows for {pid}: materialize position_valuations first")
            prev_day = xcal.previous_session(sessions[0])
            prev_vals = read_table(engine, schema.position_valuations, dates=[prev_day], portfolio_id=pid)
            prev_snap = read_table(engine, schema.portfolio_snapshots, dates=[prev_day], portfolio_id=pid)
            previous = None
            if len(prev_vals):  # the book held the day before, at its stored prices
                before = positions_on(batch.ledger, prev_day)[["position_id", "quantity", "multiplier", "entry_price"]]
                previous = before.merge(prev_vals[["position_id", "price"]], on="position_id", how="left")
            trades = batch.ledger.day_trades(sessions)
            pnl = daily_position_pnl(batch.positions, vals, previous, trades, dates=sessions)
            snap = snapshot_engine(vals, expo, greeks, pnl, prev_snap.iloc[0].to_dict() if len(prev_snap) else None,
                                   realized_to_date=batch.ledger.realized_to(sessions))
        add_rows(rows, write_tables(engine, batch, {schema.portfolio_snapshots: snap, schema.position_daily_pnl: pnl}))
        stored = batch.stored(engine, schema.portfolio_snapshots)
        stored_pnl = batch.stored(engine, schema.position_daily_pnl)
        stored_vals = batch.stored(engine, schema.position_valuations)
        problems += snapshot_problems(stored, stored_vals, stored_pnl, batch.portfolio_id)
        snaps.append(stored)
    allsnap = pd.concat(snaps) if snaps else pd.DataFrame()
    latest = latest_preview(snaps, [
        "portfolio_id", "date", "total_value", "daily_pnl", "daily_return", "cumulative_pnl", "gross_exposure",
        "net_exposure", "is_first_snapshot",
    ])
    first = allsnap[allsnap.is_first_snapshot.astype(bool)] if len(allsnap) else allsnap
    yield dg.MaterializeResult(
        metadata=run_metadata(
            batches, rows,
            **preview_metadata("snapshot", snaps, latest),
            first_snapshots=", ".join(f"{r.portfolio_id} {r.date:%Y-%m-%d}" for r in first.itertuples()) or "none",
        )
    )
    yield snapshot_sums(problems, len(allsnap))
