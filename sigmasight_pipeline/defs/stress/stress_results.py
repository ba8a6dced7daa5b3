"""``stress_results``: stress tests over the named scenarios of the scenario file (date x portfolio)."""

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.date_portfolio import (
    PortfolioBatch, add_rows, date_portfolio_asset, latest_date, latest_preview, portfolio_batches, run_metadata,
    write_tables,
)
from sigmasight_pipeline.defs.metadata import md_table, preview_label
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.risk.factor_exposures import factor_exposures
from sigmasight_pipeline.defs.risk.greeks import position_greeks
from sigmasight_pipeline.defs.risk.rate_sensitivity import rate_sensitivity
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.defs.stress.checks import (
    LOSS_CAP, LOSSES_WITHIN_EQUITY, SCENARIO_COUNT, ZERO_SHOCK_ZERO_PNL, loss_cap, losses_within_equity,
    scenario_count, zero_shock_zero_pnl,
)
from sigmasight_pipeline.engines.stress import stress_test_range
from sigmasight_pipeline.marketdata.base import SYMBOLS
from sigmasight_pipeline.quality.stress import (
    equity_loss_problems, loss_cap_problems, scenario_count_problems, zero_shock_problems,
)
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reads import market_window
from sigmasight_pipeline.warehouse.reference import read_scenarios, stress_scenarios

#: The zero-shock scenario the zero_shock_zero_pnl check runs.
ZERO_SCENARIO = pd.DataFrame({"scenario_id": ["zero"], "name": ["zero"], "category": ["check"], "severity": ["none"]})


def stress_inputs(engine, batch: PortfolioBatch) -> dict:
    """Everything the stress engine needs for a batch's sessions, as stored by the upstream assets."""
    read = lambda table: batch.stored(engine, table)  # noqa: E731
    return {
        "valuations": read(schema.position_valuations),
        "greeks": read(schema.position_greeks),
        "position_betas": read(schema.position_factor_exposures)[["date", "position_id", "factor_name", "beta"]],
        "rate_betas": read(schema.position_rate_sensitivity)[["date", "position_id", "rate_beta"]],
        "factor_cov": read(schema.factor_correlations),  # the stored triangle; the engine rebuilds each date's matrix
        "short_rate": market_window(engine, [SYMBOLS.TREASURY_13W], batch.sessions, 1).prices[SYMBOLS.TREASURY_13W],
    }


@date_portfolio_asset(
    group_name="stress",
    deps=[factor_exposures, rate_sensitivity, position_greeks, position_valuations],
    description=(
        "Every scenario of data/stress_scenarios.yaml applied position by position: linear positions by market "
        "value x sum(beta x shock) (+ rate beta x bp), options fully revalued with Black-Scholes at the shocked "
        "underlying price and rate. Direct P&L uses the named shocks; correlated P&L adds the unshocked "
        "factors' conditional moves E[f_u|f_s] from the factor covariance of the same 150-session window. "
        "A 'VIX' shock moves the VIX level itself: VIX options are revalued at it. Each row carries its loss as "
        "a share of gross exposure and of equity (net liquidation value), and whether it exceeds equity."
    ),
    check_specs=[LOSS_CAP, LOSSES_WITHIN_EQUITY, SCENARIO_COUNT, ZERO_SHOCK_ZERO_PNL],
)
def stress_results(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    engine = warehouse.engine
    scenarios, shocks = read_scenarios(engine)
    file_scenarios, _ = stress_scenarios()
    batches, rows, results_all, violations, count_problems, zero_problems = [], {}, [], [], [], []
    beyond_equity = []
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        res = breakdown = pd.DataFrame()
        if len(batch.sessions):
            inp = stress_inputs(engine, batch)
            if inp["valuations"].empty or inp["factor_cov"].empty:
                raise dg.Failure(f"stress inputs missing for {batch.portfolio_id}: materialize the risk assets first")
            args = dict(positions=batch.positions, valuations=inp["valuations"], greeks=inp["greeks"],
                        position_betas=inp["position_betas"], rate_betas=inp["rate_betas"], factor_cov=inp["factor_cov"],
                        short_rate=inp["short_rate"])
            out = stress_test_range(**args, scenarios=scenarios, shocks=shocks, dates=batch.sessions)
            res, breakdown = out.results, out.factor_breakdown
            # The zero-shock invariant, on the same stored inputs, for the last session of the run.
            zero = shocks.assign(shock=0.0, scenario_id="zero")
            z = stress_test_range(**args, scenarios=ZERO_SCENARIO, shocks=zero.drop_duplicates("factor_name"),
                                  dates=batch.sessions[-1:]).results
            zero_problems += zero_shock_problems(z, batch.portfolio_id)
        add_rows(rows, write_tables(engine, batch, {schema.stress_results: res, schema.stress_factor_breakdown: breakdown}))
        stored = batch.stored(engine, schema.stress_results)
        expo = batch.stored(engine, schema.portfolio_exposures)
        violations += loss_cap_problems(stored, expo, batch.portfolio_id)
        beyond_equity += equity_loss_problems(stored, expo, batch.portfolio_id)
        count_problems += scenario_count_problems(stored, batch.sessions, len(file_scenarios), batch.portfolio_id)
        results_all.append(stored)
    shown = ["direct_pnl", "correlated_pnl", "correlation_effect", "pct_of_gross_exposure", "pct_of_equity",
             "exceeds_equity", "flag"]
    latest = latest_preview(results_all, ["portfolio_id", "scenario_id", *shown])
    latest = latest.merge(scenarios[["scenario_id", "name"]], on="scenario_id").sort_values("correlated_pnl")
    latest = latest[["portfolio_id", "name", *shown]]
    yield dg.MaterializeResult(
        metadata=run_metadata(
            batches, rows, scenarios=len(scenarios),
            **{preview_label("stress", latest_date(results_all)): md_table(latest.head(12))},
        )
    )
    yield loss_cap(violations)
    yield losses_within_equity(beyond_equity)
    yield scenario_count(count_problems, len(file_scenarios))
    yield zero_shock_zero_pnl(zero_problems)
