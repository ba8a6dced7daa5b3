"""Options Greeks and position valuations/exposures (date x portfolio)."""

import dagster as dg
import numpy as np
import pandas as pd

from sigmasight_pipeline.defs.market.assets import market_prices, security_returns
from sigmasight_pipeline.defs.portfolios.assets import portfolio_positions
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.common import (
    add_rows, date_portfolio_asset, last_date_rows, latest_preview, md_table, portfolio_batches, run_metadata, write_tables,
)
from sigmasight_pipeline.engines.options import position_greeks as greeks_engine, realized_volatility
from sigmasight_pipeline.engines.valuation import group_exposures, portfolio_exposures, value_positions
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window

#: Realised volatility window (sessions) for options without an implied volatility.
REALIZED_VOL_WINDOW = 60

MARKET_DEPS = [market_prices, security_returns, portfolio_positions]


def _market_symbols(positions: pd.DataFrame) -> list[str]:
    return sorted(set(positions.underlying_symbol) | set(positions.symbol) | {SYMBOLS.TREASURY_13W})


@date_portfolio_asset(
    group_name="risk",
    deps=MARKET_DEPS,
    description=(
        "Black-Scholes Greeks per position and date: delta, gamma, theta (per calendar day), vega (per vol "
        "point), rho (per 1% rate), per share and per position (x contracts x 100, signed), dollar delta and "
        "dollar gamma. Options without an implied vol use the underlying's 60-session realised vol; the "
        "short rate is ^IRX. Stocks carry delta 1."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "greeks_sane",
            asset="position_greeks",
            blocking=True,
            description=(
                "Per-share |delta| <= 1; gamma and vega >= 0 (so long options have non-negative position gamma "
                "and vega); put-call parity C - P = S - K e^{-rT} on matched call/put pairs."
            ),
        )
    ],
)
def position_greeks(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    batches, rows, frames = [], {}, []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        greeks = pd.DataFrame()
        if len(batch.sessions):
            mkt = market_window(engine, _market_symbols(batch.positions), batch.sessions, REALIZED_VOL_WINDOW + 1)
            vol = realized_volatility(mkt.log_returns, batch.sessions, window=REALIZED_VOL_WINDOW)
            greeks = greeks_engine(batch.positions, mkt.prices, batch.sessions, mkt.prices[SYMBOLS.TREASURY_13W], vol)
            frames.append(greeks.assign(portfolio_id=batch.portfolio_id, short_rate=mkt.prices[SYMBOLS.TREASURY_13W].reindex(greeks.date).to_numpy()))
        add_rows(rows, write_tables(engine, batch, {schema.position_greeks: greeks}))
    all_greeks = pd.concat(frames) if frames else pd.DataFrame()
    all_positions = pd.concat([b.positions.assign(portfolio_id=b.portfolio_id) for b in batches])
    problems = greeks_problems(all_greeks, all_positions)
    flags = all_greeks.flag.value_counts().to_dict() if len(all_greeks) else {}
    preview = last_date_rows(all_greeks)
    if len(preview):
        preview = preview.merge(all_positions[["portfolio_id", "position_id", "symbol", "is_option"]], on=["portfolio_id", "position_id"])
        preview = preview.loc[preview.is_option, [
            "portfolio_id", "symbol", "underlying_price", "implied_vol", "days_to_expiry", "model_price",
            "delta", "gamma", "theta", "vega", "rho", "position_delta", "dollar_delta",
        ]]
    yield dg.MaterializeResult(
        metadata=run_metadata(
            batches, rows,
            flags=dg.MetadataValue.json({str(k): int(v) for k, v in flags.items()}),
            latest_option_greeks=md_table(preview, ",.4f"),
        )
    )
    yield dg.AssetCheckResult(
        check_name="greeks_sane",
        passed=not problems,
        metadata={"problems": "\n".join(problems[:20]) or "none", "rows_checked": len(all_greeks)},
    )


def greeks_problems(greeks: pd.DataFrame, positions: pd.DataFrame, tol: float = 1e-9) -> list[str]:
    """Violations of the Greeks' sanity rules (empty when sane); see the ``greeks_sane`` check."""
    if greeks.empty:
        return []
    g = greeks.merge(positions, on=["portfolio_id", "position_id"], how="left")
    out = []
    bad_delta = g[g.delta.abs() > 1 + tol]
    out += [f"{r.portfolio_id} {r.symbol} {r.date:%Y-%m-%d}: |delta| {r.delta:.6f} > 1" for r in bad_delta.itertuples()]
    bad_convexity = g[(g.gamma < -tol) | (g.vega < -tol)]
    out += [f"{r.portfolio_id} {r.symbol} {r.date:%Y-%m-%d}: negative gamma/vega" for r in bad_convexity.itertuples()]
    long_opt = g[g.is_option & (g.quantity > 0)]
    bad_long = long_opt[(long_opt.position_gamma < -tol) | (long_opt.position_vega < -tol)]
    out += [f"{r.portfolio_id} {r.symbol} {r.date:%Y-%m-%d}: long option with negative position gamma/vega" for r in bad_long.itertuples()]
    # Put-call parity on matched pairs (same underlying, strike, expiry, date), priced with one model.
    opts = g[g.is_option & g.model_price.notna() & (g.flag == "ok")]
    keys = ["portfolio_id", "date", "underlying_symbol", "strike", "expiration"]
    calls = opts[opts.option_type == "C"].drop_duplicates(keys)
    puts = opts[opts.option_type == "P"].drop_duplicates(keys)
    pairs = calls.merge(puts[keys + ["model_price"]], on=keys, suffixes=("_c", "_p"))
    if len(pairs):
        T = pairs.days_to_expiry.to_numpy(float) / 365.0
        r = pairs.short_rate.to_numpy(float) / 100.0
        lhs = pairs.model_price_c - pairs.model_price_p
        rhs = pairs.underlying_price - pairs.strike * np.exp(-r * T)
        broken = pairs[(lhs - rhs).abs() > 1e-6 * pairs.underlying_price]
        out += [f"{r.portfolio_id} {r.underlying_symbol} K={r.strike} {r.date:%Y-%m-%d}: put-call parity broken" for r in broken.itertuples()]
    return out


@date_portfolio_asset(
    group_name="risk",
    deps=[*MARKET_DEPS, position_greeks],
    description=(
        "Market value (signed quantity x price x multiplier), cost basis, unrealised P&L, notional and "
        "delta-adjusted exposure per position; portfolio long/short/gross/net exposures and counts; exposures "
        "by tag and by underlying. Options without a market price are marked to the Black-Scholes model price "
        "from position_greeks (price_source = model)."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "exposures_consistent",
            asset="position_valuations",
            blocking=True,
            description=(
                "gross = long + |short|, net = long + short, long + short counts = options + stocks = positions "
                "held, and the portfolio figures equal the sums of the stored position rows."
            ),
        )
    ],
)
def position_valuations(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    batches, rows, exposures_all, problems = [], {}, [], []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        vals = expo = groups = pd.DataFrame()
        if len(batch.sessions):
            mkt = market_window(engine, _market_symbols(batch.positions), batch.sessions, 1)
            greeks = batch.stored(engine, schema.position_greeks)
            if greeks.empty:
                raise dg.Failure(f"no position_greeks rows for {batch.portfolio_id}: materialize position_greeks first")
            vals = value_positions(batch.positions, mkt.prices, batch.sessions, greeks)
            expo = portfolio_exposures(vals, batch.positions)
            groups = pd.concat(
                [
                    group_exposures(vals, batch.positions, by=by).assign(group_type=by)
                    for by in ("tag", "underlying")
                ]
            ).rename(columns={"group": "group_name"})
            groups["market_value"] = groups["net_exposure"]  # signed sum of the group's market values
        add_rows(
            rows,
            write_tables(
                engine,
                batch,
                {schema.position_valuations: vals, schema.portfolio_exposures: expo, schema.group_exposures: groups},
            ),
        )
        stored = batch.stored(engine, schema.position_valuations)
        stored_expo = batch.stored(engine, schema.portfolio_exposures)
        problems += exposure_problems(stored, stored_expo, batch.positions, batch.portfolio_id)
        exposures_all.append(stored_expo)
    summary = latest_preview(exposures_all, [
        "portfolio_id", "date", "long_exposure", "short_exposure", "gross_exposure", "net_exposure",
        "delta_adjusted_exposure", "position_count", "missing_price_count",
    ])
    yield dg.MaterializeResult(metadata=run_metadata(batches, rows, latest_exposures=md_table(summary)))
    yield dg.AssetCheckResult(
        check_name="exposures_consistent",
        passed=not problems,
        metadata={"problems": "\n".join(problems[:20]) or "none", "dates_checked": sum(len(e) for e in exposures_all)},
    )


def exposure_problems(vals: pd.DataFrame, expo: pd.DataFrame, positions: pd.DataFrame, portfolio_id: str, tol: float = 0.011) -> list[str]:
    """Inconsistencies between stored position valuations and portfolio exposures (empty when consistent)."""
    if expo.empty:
        return []
    out = []
    e = expo.set_index("date")
    gross = (e.long_exposure + e.short_exposure.abs() - e.gross_exposure).abs() > tol
    net = (e.long_exposure + e.short_exposure - e.net_exposure).abs() > tol
    counts = (e.long_count + e.short_count != e.position_count) | (e.option_count + e.stock_count != e.position_count)
    held = vals.groupby("date").position_id.count().reindex(e.index).fillna(0)
    count_held = held != e.position_count
    mv = vals.groupby("date").market_value.sum(min_count=1).reindex(e.index)
    sums = (mv.fillna(0) - e.net_exposure).abs() > tol * held.clip(lower=1)
    for name, mask in (("gross != long + |short|", gross), ("net != long + short", net), ("counts do not add up", counts),
                       ("position_count != positions valued", count_held), ("net != sum of position values", sums)):
        out += [f"{portfolio_id} {d:%Y-%m-%d}: {name}" for d in e.index[mask.to_numpy()]]
    return out
