"""Warehouse: round trips, idempotent partition writes and atomic failure, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import _records, read_table, read_wide, upsert, write_partition
from sigmasight_pipeline.warehouse.reference import (
    factor_definitions,
    load_reference_data,
    read_scenarios,
    stress_scenarios,
)

D1, D2 = dt.date(2025, 1, 2), dt.date(2025, 1, 3)


def _prices(date, close_spy=590.123456, close_tnx=4.57):
    return pd.DataFrame(
        {"date": [date, date], "symbol": ["SPY", "^TNX"], "close": [close_spy, close_tnx], "source": ["sample", "sample"]}
    )


def _rows(engine, table):
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(table)))


def test_round_trip_keeps_exact_values(engine):
    write_partition(engine, schema.market_prices, _prices(D1), dates=[D1])
    got = read_table(engine, schema.market_prices)
    assert list(got.symbol) == ["SPY", "^TNX"]
    assert got.close.tolist() == [590.123456, 4.57]
    assert got.date.dt.date.tolist() == [D1, D1]
    wide = read_wide(engine, schema.market_prices, "close")
    assert wide.loc[pd.Timestamp(D1), "SPY"] == 590.123456


def test_money_is_rounded_to_cents_and_exact(engine):
    frame = pd.DataFrame(
        {
            "date": [D1], "portfolio_id": ["p1"], "scenario_id": ["market_down_10"],
            "direct_pnl": [0.1 + 0.2], "correlated_pnl": [-1234.5678], "correlation_effect": [-1234.8678],
            "pct_of_gross_exposure": [0.0123], "loss_cap_applied": [False], "flag": ["ok"], "exceeds_equity": [False],
        }
    )
    write_partition(engine, schema.stress_results, frame, dates=[D1], portfolio_ids=["p1"])
    with engine.connect() as conn:
        row = conn.execute(sa.select(sa.cast(schema.stress_results.c.correlated_pnl, sa.String))).scalar_one()
    assert row in ("-1234.57",) or float(row) == -1234.57
    got = read_table(engine, schema.stress_results)
    assert got.direct_pnl[0] == 0.30


def test_records_are_python_scalars_with_none_for_null(engine):
    """The rows an insert binds: Python float/bool/str/date (psycopg adapts no numpy type), NUMERIC rounded to
    its scale, None for NaN in any column kind; and they store as NULL."""
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime([D1, D1]), "portfolio_id": ["p1", "p1"], "scenario_id": ["a", "b"],
            "direct_pnl": [1.005, -2.0], "correlated_pnl": [0.1 + 0.2, 3.0], "correlation_effect": [0.0, 0.0],
            "pct_of_gross_exposure": [0.12345678, float("nan")], "gross_exposure": [float("nan"), 10.0],
            "loss_cap_applied": [True, False], "flag": ["ok", "ok"], "exceeds_equity": [pd.NA, True],
        }
    )
    recs = _records(schema.stress_results, frame)
    assert recs[0] == {
        "date": D1, "portfolio_id": "p1", "scenario_id": "a", "direct_pnl": 1.0, "correlated_pnl": 0.3,
        "correlation_effect": 0.0, "pct_of_gross_exposure": 0.12345678, "gross_exposure": None,
        "loss_cap_applied": True, "flag": "ok", "exceeds_equity": None,
    }  # money to cents (1.005 is 1.00499999... in binary: 1.0), a Float ratio as it is
    assert recs[1]["pct_of_gross_exposure"] is None and recs[1]["exceeds_equity"] is True
    assert [type(v) for v in recs[0].values()] == [
        dt.date, str, str, float, float, float, float, type(None), bool, str, type(None),
    ]
    write_partition(engine, schema.stress_results, frame.assign(exceeds_equity=[False, True]), dates=[D1],
                    portfolio_ids=["p1"])  # (exceeds_equity is NOT NULL)
    got = read_table(engine, schema.stress_results)
    assert got.gross_exposure.isna().tolist() == [True, False]
    assert got.pct_of_gross_exposure.isna().tolist() == [False, True]
    assert got.pct_of_gross_exposure[0] == 0.12345678 and got.direct_pnl.tolist() == [1.0, -2.0]


def test_rerun_of_a_partition_gives_identical_rows_without_duplicates(engine):
    write_partition(engine, schema.market_prices, _prices(D1), dates=[D1])
    write_partition(engine, schema.market_prices, _prices(D2, 591.0), dates=[D2])
    before = _rows(engine, schema.market_prices)
    for _ in range(3):
        write_partition(engine, schema.market_prices, _prices(D1), dates=[D1])
    assert _rows(engine, schema.market_prices) == before
    assert len(before) == 4


def test_rewrite_replaces_the_partition_only(engine):
    write_partition(engine, schema.market_prices, _prices(D1), dates=[D1])
    write_partition(engine, schema.market_prices, _prices(D2), dates=[D2])
    # A new run for D1 that no longer has ^TNX: the stale row goes, D2 is untouched.
    write_partition(engine, schema.market_prices, _prices(D1).iloc[:1], dates=[D1])
    got = read_table(engine, schema.market_prices)
    assert got[["date", "symbol"]].astype(str).values.tolist() == [
        ["2025-01-02", "SPY"], ["2025-01-03", "SPY"], ["2025-01-03", "^TNX"]
    ]


def test_failed_write_leaves_previous_rows_intact(engine):
    write_partition(engine, schema.market_prices, _prices(D1), dates=[D1])
    before = _rows(engine, schema.market_prices)
    bad = pd.concat([_prices(D1, 600.0), _prices(D1, 601.0)])  # duplicate primary key midway through the insert
    with pytest.raises(sa.exc.IntegrityError):
        write_partition(engine, schema.market_prices, bad, dates=[D1])
    assert _rows(engine, schema.market_prices) == before


def test_rows_outside_the_partition_are_refused(engine):
    with pytest.raises(ValueError, match="outside the partition"):
        write_partition(engine, schema.market_prices, _prices(D2), dates=[D1])
    assert _rows(engine, schema.market_prices) == []


def test_upsert_updates_by_primary_key(engine):
    row = {"symbol": "XYZ", "name": "X", "asset_type": "stock", "sector": "Tech", "industry": "Software"}
    upsert(engine, schema.security_master, [row])
    upsert(engine, schema.security_master, [{**row, "sector": "Technology"}])
    got = _rows(engine, schema.security_master)
    assert got == [("XYZ", "X", "stock", "Technology", "Software", None, None)]  # category, dividend_yield unset



def test_reference_data_loads_idempotently(engine):
    first = load_reference_data(engine)
    second = load_reference_data(engine)
    assert first == second
    assert first["factor_definitions"] == 7
    assert first["stress_scenarios"] == 18
    scen, shocks = read_scenarios(engine)
    assert len(scen) == 18 and scen.scenario_id.is_unique
    crash = shocks[shocks.scenario_id == "financial_crisis_2008"].set_index("factor_name").shock.to_dict()
    assert crash == {"Market": -0.45, "Value": -0.30, "Size": -0.25, "Quality": 0.20, "Low Volatility": -0.35}


def test_factor_set_is_the_seven_with_unique_proxies():
    f = factor_definitions()
    assert list(f.factor_name) == ["Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility"]
    assert list(f.proxy_symbol) == ["SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV"]
    assert "SLY" not in set(f.proxy_symbol)


def test_every_scenario_shock_names_a_known_factor():
    scen, shocks = stress_scenarios()
    assert set(shocks.factor_name) <= set(factor_definitions().factor_name) | {"Interest Rate", "VIX"}  # VIX: its level
    rates = shocks[shocks.factor_name == "Interest Rate"].set_index("scenario_id").shock
    assert rates["rate_spike_300bp"] == 0.03 and rates["rates_down_25bp"] == -0.0025
