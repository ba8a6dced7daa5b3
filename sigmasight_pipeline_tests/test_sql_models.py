"""dbt-like SQL models (``dbt_like_sql/``): compilation, build order, builds on SQLite AND PostgreSQL with exact
mart rows, idempotent rebuilds, model tests, and the Dagster assets and checks built from them."""

from __future__ import annotations

import datetime as dt
import math
import re
import textwrap
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.defs.sql_models.sql_models import build_sql_model_assets, sql_models
from sigmasight_pipeline.sqlmodels import (
    ModelBuildError,
    SqlProjectError,
    build_all,
    build_model,
    drop_models,
    load_manifest,
    model_tests,
    run_model_test,
    run_model_tests,
)
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import upsert, write_partition

D1, D2, D3 = "2025-01-02", "2025-01-03", "2025-01-06"
DATES = [D1, D2, D3]
MARTS = ("mart_portfolio_daily", "mart_factor_exposures_latest", "mart_stress_worst_cases")


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


@pytest.fixture(autouse=True)
def _drop_models_after(request):
    """Models built on the session's PostgreSQL database are dropped again (views would pin the tables)."""
    yield
    engines = {id(e): e for f, e in request.node.funcargs.items() if f in ("engine", "postgres_engine", "sqlite_engine")}
    for eng in engines.values():
        drop_models(eng, load_manifest())


# ------------------------------------------------------------------------------------------------------
# Seed data: two portfolios, three dates, known numbers
# ------------------------------------------------------------------------------------------------------
def _snapshot(date, pid, total, pnl, cum, ret, delta, first):
    return {
        "date": date, "portfolio_id": pid, "total_value": total, "long_exposure": total, "short_exposure": 0.0,
        "gross_exposure": total, "net_exposure": total, "delta_adjusted_exposure": total * 0.9, "notional": total,
        "dollar_delta": delta * 100.0, "dollar_gamma": 12.5, "daily_pnl": pnl, "cumulative_pnl": cum,
        "position_count": 3, "long_count": 3, "short_count": 0, "option_count": 1, "stock_count": 2,
        "missing_price_count": 0, "portfolio_delta": delta, "portfolio_gamma": 0.25, "portfolio_theta": -1.5, "portfolio_vega": 3.0,
        "portfolio_rho": 0.5, "daily_return": ret, "is_first_snapshot": first, "pnl_basis": "mark",
    }


def _exposure(date, pid, gross, net, options):
    return {
        "date": date, "portfolio_id": pid, "long_exposure": (gross + net) / 2, "short_exposure": (net - gross) / 2,
        "gross_exposure": gross, "net_exposure": net, "notional": gross, "delta_adjusted_exposure": net,
        "delta_adjusted_long": gross, "delta_adjusted_short": 0.0, "options_exposure": options,
        "stock_exposure": gross - options, "total_cost_basis": 1000.0, "total_unrealized_pnl": 10.0,
        "long_count": 2, "short_count": 1, "option_count": 1, "stock_count": 2, "position_count": 3,
        "missing_price_count": 0,
    }


def _factor(date, pid, factor, dollars, beta_net):
    return {
        "date": date, "portfolio_id": pid, "factor_name": factor, "dollar_exposure": dollars, "beta_net": beta_net,
        "beta_gross": None if beta_net is None else beta_net / 2, "positions_with_beta": 0 if dollars is None else 2,
        "positions_without_beta": 3 if dollars is None else 1,
    }


def _stress(date, pid, scenario, correlated):
    return {
        "date": date, "portfolio_id": pid, "scenario_id": scenario, "direct_pnl": correlated + 100.0,
        "correlated_pnl": correlated, "correlation_effect": -100.0, "pct_of_gross_exposure": correlated / 100000.0,
        "gross_exposure": 100000.0,
        "loss_cap_applied": False, "flag": "ok",
    }


SCENARIOS = [
    ("market_crash_2008", "2008 Financial Crisis", "historical", "severe", 1),
    ("covid_crash_2020", "COVID-19 Crash", "historical", "severe", 2),
    ("rates_up_200bp", "Rates +200bp", "hypothetical", "moderate", 3),
    ("tech_selloff", "Tech Selloff", "hypothetical", "moderate", 4),
    ("mild_pullback", "Mild Pullback", "hypothetical", "mild", 5),
]

STRESS = [
    # alpha D1: worst three -25000, -18000, -12000.50
    (D1, "alpha", "market_crash_2008", -25000.00), (D1, "alpha", "covid_crash_2020", -18000.00),
    (D1, "alpha", "rates_up_200bp", -3000.00), (D1, "alpha", "tech_selloff", -12000.50),
    (D1, "alpha", "mild_pullback", -5000.00),
    # alpha D2: a gain, and a tie at -9000 for third place broken by scenario id (mild_ < tech_)
    (D2, "alpha", "market_crash_2008", -24000.00), (D2, "alpha", "covid_crash_2020", -26000.75),
    (D2, "alpha", "rates_up_200bp", 1500.00), (D2, "alpha", "tech_selloff", -9000.00),
    (D2, "alpha", "mild_pullback", -9000.00),
    # beta D1: a tie at -4000 for second place (covid_ < market_)
    (D1, "beta", "market_crash_2008", -4000.00), (D1, "beta", "covid_crash_2020", -4000.00),
    (D1, "beta", "rates_up_200bp", -6000.25), (D1, "beta", "tech_selloff", 200.00),
    # beta D3: only two scenarios, so only ranks 1 and 2
    (D3, "beta", "market_crash_2008", -100.00), (D3, "beta", "mild_pullback", -50.00),
]


def seed(engine) -> None:
    upsert(engine, schema.factor_definitions, [
        {"factor_name": "Market", "proxy_symbol": "SPY", "description": "Market beta", "display_order": 1},
        {"factor_name": "Value", "proxy_symbol": "VTV", "description": "Value", "display_order": 2},
        {"factor_name": "Momentum", "proxy_symbol": "MTUM", "description": "Momentum", "display_order": 3},
    ])
    upsert(engine, schema.stress_scenarios, [
        {"scenario_id": s, "name": n, "category": c, "severity": sev, "display_order": o} for s, n, c, sev, o in SCENARIOS
    ])
    uploaded = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    portfolios = pd.DataFrame([
        {"portfolio_id": "alpha", "name": "Alpha Fund", "owner": "ann", "source_csv": "ticker,quantity\n", "uploaded_at": uploaded},
        {"portfolio_id": "beta", "name": "Beta Book", "owner": "bob", "source_csv": "ticker,quantity\n", "uploaded_at": uploaded},
    ])
    write_partition(engine, schema.portfolios, portfolios, portfolio_ids=["alpha", "beta"])
    positions = pd.DataFrame([
        {"portfolio_id": "alpha", "position_id": 1, "symbol": "AAPL", "position_type": "LONG", "quantity": 100,
         "entry_price": 180.25, "entry_date": "2024-06-03", "underlying_symbol": "AAPL", "multiplier": 1,
         "cost_basis": 18025.00, "source_row": 2},
        {"portfolio_id": "alpha", "position_id": 2, "symbol": "SPY", "position_type": "SHORT", "quantity": -10,
         "entry_price": 500.5, "entry_date": "2024-06-03", "underlying_symbol": "SPY", "multiplier": 1,
         "cost_basis": -5005.00, "source_row": 3},
    ])
    write_partition(engine, schema.positions, positions, portfolio_ids=["alpha"])

    snaps = pd.DataFrame([
        _snapshot(D1, "alpha", 100000.00, 0.00, 0.00, None, 450.5, True),
        _snapshot(D2, "alpha", 101250.50, 1250.50, 1250.50, 0.012505, 455.25, False),
        _snapshot(D3, "alpha", 100900.25, -350.25, 900.25, -0.0034592, 449.0, False),
        _snapshot(D1, "beta", 50000.00, 0.00, 0.00, None, 120.0, True),
        _snapshot(D2, "beta", 49500.00, -500.00, -500.00, -0.01, 118.5, False),
        _snapshot(D3, "beta", 50500.00, 1000.00, 500.00, 0.02020202, 121.75, False),
    ])
    write_partition(engine, schema.portfolio_snapshots, snaps, dates=DATES, portfolio_ids=["alpha", "beta"])
    exposures = pd.DataFrame([  # beta has no exposure row on D3: the mart keeps the snapshot, exposures NULL
        _exposure(D1, "alpha", 110000.00, 90000.00, 5000.00),
        _exposure(D2, "alpha", 111000.00, 91000.00, 5100.00),
        _exposure(D3, "alpha", 112000.00, 92000.00, 5200.00),
        _exposure(D1, "beta", 60000.00, 40000.00, 0.00),
        _exposure(D2, "beta", 61000.00, 41000.00, 0.00),
    ])
    write_partition(engine, schema.portfolio_exposures, exposures, dates=DATES, portfolio_ids=["alpha", "beta"])
    factors = pd.DataFrame([
        _factor(D1, "alpha", "Market", 95000.00, 0.95),
        _factor(D1, "alpha", "Value", 12000.00, 0.12),
        _factor(D2, "alpha", "Market", 96100.40, 0.961004),
        _factor(D2, "alpha", "Value", 11800.10, 0.118001),
        _factor(D2, "alpha", "Momentum", -2500.00, -0.025),
        # alpha D3: rows, but no exposure (window too short): alpha's latest date stays D2
        _factor(D3, "alpha", "Market", None, None),
        _factor(D3, "alpha", "Value", None, None),
        _factor(D1, "beta", "Market", 40000.00, 0.8),
        _factor(D3, "beta", "Market", 41000.55, 0.82),
        _factor(D3, "beta", "Value", -3000.00, -0.06),
    ])
    write_partition(engine, schema.portfolio_factor_exposures, factors, dates=DATES, portfolio_ids=["alpha", "beta"])
    stress = pd.DataFrame([_stress(*row) for row in STRESS])
    write_partition(engine, schema.stress_results, stress, dates=DATES, portfolio_ids=["alpha", "beta"])


# ------------------------------------------------------------------------------------------------------
# Expected mart rows, by hand
# ------------------------------------------------------------------------------------------------------
DAILY_COLUMNS = (
    "portfolio_id", "portfolio_name", "as_of_date", "as_of_month", "total_value", "daily_pnl", "cumulative_pnl",
    "daily_return", "gross_exposure", "net_exposure", "options_exposure", "portfolio_delta", "dollar_delta",
    "position_count", "is_first_snapshot",
)
EXPECTED_DAILY = [
    ("alpha", "Alpha Fund", D1, "2025-01", 100000.00, 0.0, 0.0, None, 110000.0, 90000.0, 5000.0, 450.5, 45050.0, 3, 1),
    ("alpha", "Alpha Fund", D2, "2025-01", 101250.50, 1250.5, 1250.5, 0.012505, 111000.0, 91000.0, 5100.0, 455.25, 45525.0, 3, 0),
    ("alpha", "Alpha Fund", D3, "2025-01", 100900.25, -350.25, 900.25, -0.0034592, 112000.0, 92000.0, 5200.0, 449.0, 44900.0, 3, 0),
    ("beta", "Beta Book", D1, "2025-01", 50000.00, 0.0, 0.0, None, 60000.0, 40000.0, 0.0, 120.0, 12000.0, 3, 1),
    ("beta", "Beta Book", D2, "2025-01", 49500.00, -500.0, -500.0, -0.01, 61000.0, 41000.0, 0.0, 118.5, 11850.0, 3, 0),
    ("beta", "Beta Book", D3, "2025-01", 50500.00, 1000.0, 500.0, 0.02020202, None, None, None, 121.75, 12175.0, 3, 0),
]

FACTOR_COLUMNS = (
    "portfolio_id", "portfolio_name", "as_of_date", "factor_name", "factor_display_order", "dollar_exposure",
    "beta_net", "positions_with_beta",
)
EXPECTED_FACTORS = [  # alpha: D2 (D3 has rows but no exposures); beta: D3
    ("alpha", "Alpha Fund", D2, "Market", 1, 96100.40, 0.961004, 2),
    ("alpha", "Alpha Fund", D2, "Momentum", 3, -2500.00, -0.025, 2),
    ("alpha", "Alpha Fund", D2, "Value", 2, 11800.10, 0.118001, 2),
    ("beta", "Beta Book", D3, "Market", 1, 41000.55, 0.82, 2),
    ("beta", "Beta Book", D3, "Value", 2, -3000.00, -0.06, 2),
]

WORST_COLUMNS = (
    "portfolio_id", "as_of_date", "worst_rank", "scenario_id", "scenario_name", "scenario_category", "correlated_pnl",
    "direct_pnl",
)
EXPECTED_WORST = [
    ("alpha", D1, 1, "market_crash_2008", "2008 Financial Crisis", "historical", -25000.00, -24900.00),
    ("alpha", D1, 2, "covid_crash_2020", "COVID-19 Crash", "historical", -18000.00, -17900.00),
    ("alpha", D1, 3, "tech_selloff", "Tech Selloff", "hypothetical", -12000.50, -11900.50),
    ("alpha", D2, 1, "covid_crash_2020", "COVID-19 Crash", "historical", -26000.75, -25900.75),
    ("alpha", D2, 2, "market_crash_2008", "2008 Financial Crisis", "historical", -24000.00, -23900.00),
    ("alpha", D2, 3, "mild_pullback", "Mild Pullback", "hypothetical", -9000.00, -8900.00),
    ("beta", D1, 1, "rates_up_200bp", "Rates +200bp", "hypothetical", -6000.25, -5900.25),
    ("beta", D1, 2, "covid_crash_2020", "COVID-19 Crash", "historical", -4000.00, -3900.00),
    ("beta", D1, 3, "market_crash_2008", "2008 Financial Crisis", "historical", -4000.00, -3900.00),
    ("beta", D3, 1, "market_crash_2008", "2008 Financial Crisis", "historical", -100.00, 0.00),
    ("beta", D3, 2, "mild_pullback", "Mild Pullback", "hypothetical", -50.00, 50.00),
]


def _norm(value):
    """Driver values -> comparable Python values (dates as ISO text, booleans as 0/1, Decimal as float)."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def rows(engine, relation: str, columns=None) -> list[tuple]:
    """All rows of a relation (selected columns), normalized and sorted."""
    cols = ", ".join(columns) if columns else "*"
    with engine.connect() as conn:
        result = conn.exec_driver_sql(f"SELECT {cols} FROM {relation}").fetchall()
    return sorted((tuple(_norm(v) for v in r) for r in result), key=lambda r: tuple("" if v is None else str(v) for v in r))


def assert_same_rows(actual: list[tuple], expected: list[tuple]) -> None:
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}:\n{actual}"
    for a, e in zip(actual, expected, strict=True):
        assert len(a) == len(e)
        for x, y in zip(a, e, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (a, e)
            else:
                assert x == y, (a, e)


# ------------------------------------------------------------------------------------------------------
# The project
# ------------------------------------------------------------------------------------------------------
def test_project_layout_and_dependencies(manifest):
    tables = {name for name in schema.metadata.tables}
    assert {s.table for s in manifest.project.sources.values()} == tables  # every warehouse table is a source
    produced = {s.table: s.asset for s in manifest.project.sources.values()}
    assert produced["positions"] == "portfolio_positions"
    assert produced["group_exposures"] == "position_valuations"
    assert produced["factor_correlations"] == "factor_exposures"
    assert produced["position_daily_pnl"] == "portfolio_snapshots"
    assert all(produced[t] is None for t in ("factor_definitions", "stress_scenarios", "stress_scenario_shocks", "security_master"))
    # one staging view per table, marts are tables
    for source in manifest.project.sources.values():
        model = manifest.model(f"stg_{source.table}")
        assert model.materialized == "view" and model.folder == "staging"
        assert manifest.sources[model.name] == (source,)
        assert model.description and model.config.unique_key
    for mart in MARTS:
        assert manifest.model(mart).materialized == "table" and manifest.model(mart).config.unique_key
    assert manifest.refs["mart_stress_worst_cases"] == ("stg_stress_results", "stg_stress_scenarios")
    assert set(manifest.refs["mart_portfolio_daily"]) == {"stg_portfolio_snapshots", "stg_portfolio_exposures", "stg_portfolios"}
    assert manifest.source_assets("stg_stress_results") == ["stress_results"]
    assert manifest.source_assets("stg_stress_scenarios") == []
    # build order respects refs
    pos = {n: i for i, n in enumerate(manifest.order)}
    for name, refs in manifest.refs.items():
        assert all(pos[r] < pos[name] for r in refs)


def test_staging_models_cover_every_column_of_their_table(manifest):
    """Schema drift guard: a column added to a warehouse table must be added to its staging model."""
    left_out = {("portfolios", "source_csv"), ("api_keys", "key_hash")}  # the raw upload text, a key's hash: not for analytics
    for table in schema.metadata.sorted_tables:
        sql = manifest.model(f"stg_{table.name}").raw_sql
        missing = [
            c.name for c in table.columns
            if (table.name, c.name) not in left_out and not re.search(rf'(?<![\w"]){c.name}(?![\w"])|"{c.name}"', sql)
        ]
        assert not missing, f"stg_{table.name} does not select {missing}"


def test_compilation_per_dialect(manifest):
    sqlite_sql = manifest.compile("mart_stress_worst_cases", "sqlite")
    pg_sql = manifest.compile("mart_stress_worst_cases", "postgresql")
    assert "{{" not in sqlite_sql and "{#" not in sqlite_sql and "description:" not in sqlite_sql
    assert "from stg_stress_results as r" in sqlite_sql and "left join stg_stress_scenarios as s" in pg_sql
    assert 'collate "C"' in pg_sql and "collate binary" in sqlite_sql
    assert "strftime('%Y-%m', s.as_of_date)" in manifest.compile("mart_portfolio_daily", "sqlite")
    assert "to_char(s.as_of_date, 'YYYY-MM')" in manifest.compile("mart_portfolio_daily", "postgresql")
    # source() quotes nothing it need not; staging renames the date column
    stg = manifest.compile("stg_stress_results", "postgresql")
    assert stg.rstrip().endswith("from stress_results") and '"date" as as_of_date' in stg


# ------------------------------------------------------------------------------------------------------
# Build and marts, on both dialects
# ------------------------------------------------------------------------------------------------------
def test_build_all_marts_exact_rows(engine):
    seed(engine)
    counts = build_all(engine)
    assert set(counts) == set(load_manifest().order)
    assert counts["mart_portfolio_daily"] == 6
    assert counts["mart_factor_exposures_latest"] == 5
    assert counts["mart_stress_worst_cases"] == 11
    assert counts["stg_stress_results"] == len(STRESS) and counts["stg_positions"] == 2
    assert_same_rows(rows(engine, "mart_portfolio_daily", DAILY_COLUMNS), EXPECTED_DAILY)
    assert_same_rows(rows(engine, "mart_factor_exposures_latest", FACTOR_COLUMNS), EXPECTED_FACTORS)
    assert_same_rows(rows(engine, "mart_stress_worst_cases", WORST_COLUMNS), EXPECTED_WORST)
    # staging casts money to double precision on both dialects (SQLite would otherwise hand back integers)
    assert rows(engine, "stg_positions", ("position_id", "quantity", "cost_basis")) == [(1, 100.0, 18025.0), (2, -10.0, -5005.0)]
    assert all(isinstance(v, float) for v in rows(engine, "stg_positions", ("quantity",))[0])


def test_rebuild_is_idempotent(engine, manifest):
    seed(engine)
    first = build_all(engine)
    before = {m: rows(engine, m) for m in MARTS}
    second = build_all(engine)
    assert first == second
    for m in MARTS:
        assert rows(engine, m) == before[m]
    for name in manifest.order:  # keys unique after two builds, no leftover build tables
        for outcome in run_model_tests(engine, manifest, name):
            assert outcome.passed, (name, outcome.test.name, outcome.sample)
    names = set(sa.inspect(engine).get_table_names()) | set(sa.inspect(engine).get_view_names())
    assert not [n for n in names if n.endswith("__build")]
    assert set(manifest.order) <= names


def test_same_rows_on_sqlite_and_postgresql(sqlite_engine, postgres_engine, manifest):
    results = {}
    for eng in (sqlite_engine, postgres_engine):
        seed(eng)
        results[eng.dialect.name] = (build_all(eng), {m: rows(eng, m) for m in manifest.order})
    (sqlite_counts, sqlite_rows), (pg_counts, pg_rows) = results["sqlite"], results["postgresql"]
    assert sqlite_counts == pg_counts
    for name in MARTS + ("stg_stress_results", "stg_portfolio_snapshots", "stg_portfolio_factor_exposures", "stg_positions"):
        assert len(sqlite_rows[name]) > 0
        assert_same_rows(pg_rows[name], sqlite_rows[name])


def test_failed_table_build_keeps_previous_table(engine, tmp_path):
    project = _project(tmp_path, {
        "marts/m_factors.sql": "{# materialized: table #}\nselect factor_name, display_order from {{ source('warehouse', 'factor_definitions') }}",
    })
    upsert(engine, schema.factor_definitions, [{"factor_name": "Market", "proxy_symbol": "SPY", "display_order": 1}])
    m = load_manifest(project)
    assert build_model(engine, m, "m_factors").rows == 1
    (project / "models/marts/m_factors.sql").write_text(
        "{# materialized: table #}\nselect no_such_column from {{ source('warehouse', 'factor_definitions') }}"
    )
    broken = load_manifest(project)
    with pytest.raises(ModelBuildError, match=r"model 'm_factors' failed to build on " + engine.dialect.name):
        build_model(engine, broken, "m_factors")
    assert rows(engine, "m_factors") == [("Market", 1)]
    assert "m_factors__build" not in sa.inspect(engine).get_table_names()
    drop_models(engine, m)


def test_failure_after_the_old_relation_was_dropped_rolls_back(engine, tmp_path):
    """The table is swapped and a dependent view recreated in one transaction: a late failure undoes it all."""
    project = _project(tmp_path, {
        "marts/t_base.sql": "{# materialized: table #}\nselect factor_name from {{ source('warehouse', 'factor_definitions') }}",
        "marts/v_dep.sql": "select factor_name from {{ ref('t_base') }}",
    })
    upsert(engine, schema.factor_definitions, [{"factor_name": "Market", "proxy_symbol": "SPY", "display_order": 1}])
    m = load_manifest(project)
    build_all(engine, project)
    upsert(engine, schema.factor_definitions, [{"factor_name": "Value", "proxy_symbol": "VTV", "display_order": 2}])
    (project / "models/marts/v_dep.sql").write_text("select no_such_column from {{ ref('t_base') }}")
    broken = load_manifest(project)
    with pytest.raises(ModelBuildError, match=r"model 't_base' failed to build on \w+ \(recreating dependent view 'v_dep'\)"):
        build_model(engine, broken, "t_base")
    assert rows(engine, "t_base") == [("Market",)]  # the previous table, not the new one with Value
    assert rows(engine, "v_dep") == [("Market",)]  # and the view is still there
    assert "t_base__build" not in sa.inspect(engine).get_table_names()
    assert build_model(engine, m, "t_base").views_recreated == ("v_dep",)
    assert rows(engine, "v_dep") == [("Market",), ("Value",)]
    drop_models(engine, m)


def test_rebuilding_an_upstream_model_keeps_downstream_views(engine, tmp_path):
    """PostgreSQL refuses to drop a view other views depend on: the build drops and recreates them."""
    project = _project(tmp_path, {
        "staging/v_one.sql": "select factor_name, display_order from {{ source('warehouse', 'factor_definitions') }}",
        "staging/v_two.sql": "select factor_name from {{ ref('v_one') }} where display_order > 0",
        "marts/t_three.sql": "{# materialized: table #}\nselect count(*) as n from {{ ref('v_two') }}",
        "marts/v_four.sql": "select n from {{ ref('t_three') }}",
    })
    upsert(engine, schema.factor_definitions, [{"factor_name": "Market", "proxy_symbol": "SPY", "display_order": 1}])
    m = load_manifest(project)
    assert m.order == ["v_one", "v_two", "t_three", "v_four"]
    build_all(engine, project)
    assert build_model(engine, m, "v_one").views_recreated == ("v_two",)
    assert build_model(engine, m, "t_three").views_recreated == ("v_four",)
    assert rows(engine, "v_two") == [("Market",)] and rows(engine, "v_four") == [(1,)]
    assert drop_models(engine, m, ["v_one"]) == ["v_two", "v_one"]
    drop_models(engine, m)


# ------------------------------------------------------------------------------------------------------
# Graph errors
# ------------------------------------------------------------------------------------------------------
def _project(root: Path, models: dict[str, str], sources: str | None = None) -> Path:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "project.yml").write_text("name: t\nmodels:\n  marts:\n    materialized: view\n")
    (root / "sources.yml").write_text(sources or textwrap.dedent("""\
        sources:
          - name: warehouse
            tables:
              - {name: factor_definitions}
              - {name: stress_results, asset: stress_results}
        """))
    for rel, sql in models.items():
        path = root / "models" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return root


def test_unknown_ref_names_the_model(tmp_path):
    project = _project(tmp_path, {
        "staging/stg_a.sql": "select 1 as x",
        "marts/mart_b.sql": "select * from {{ ref('stg_a') }} join {{ ref('stg_missing') }} on 1 = 1",
    })
    with pytest.raises(SqlProjectError, match=r"model 'mart_b': ref\('stg_missing'\) names no model"):
        load_manifest(project)


def test_unknown_source_names_the_model(tmp_path):
    project = _project(tmp_path, {"staging/stg_a.sql": "select * from {{ source('warehouse', 'nope') }}"})
    with pytest.raises(SqlProjectError, match=r"model 'stg_a': source\('warehouse', 'nope'\) is not declared"):
        load_manifest(project)


def test_cycle_names_the_models(tmp_path):
    project = _project(tmp_path, {
        "staging/stg_ok.sql": "select 1 as x",
        "marts/m_a.sql": "select * from {{ ref('m_c') }}",
        "marts/m_b.sql": "select * from {{ ref('m_a') }}",
        "marts/m_c.sql": "select * from {{ ref('m_b') }} join {{ ref('stg_ok') }} on 1 = 1",
    })
    with pytest.raises(SqlProjectError, match=r"cycle in model refs: m_a -> m_b -> m_c -> m_a"):
        load_manifest(project)
    selfish = _project(tmp_path / "self", {"marts/m_self.sql": "select * from {{ ref('m_self') }}"})
    with pytest.raises(SqlProjectError, match=r"model 'm_self': refers to itself"):
        load_manifest(selfish)


def test_bad_config_is_an_error(tmp_path):
    project = _project(tmp_path, {"marts/m.sql": "{#\nmaterialized: incremental\n#}\nselect 1 as x"})
    with pytest.raises(SqlProjectError, match="materialized must be one of"):
        load_manifest(project)


# ------------------------------------------------------------------------------------------------------
# Model tests catch bad rows
# ------------------------------------------------------------------------------------------------------
def test_not_null_catches_seeded_bad_rows(engine, manifest):
    seed(engine)
    # a stress result for a scenario missing from stress_scenarios, and a snapshot of an unknown portfolio
    write_partition(engine, schema.stress_results, pd.DataFrame([_stress(D3, "alpha", "unknown_scenario", -1e6)]),
                    dates=[D3], portfolio_ids=["alpha"])
    write_partition(engine, schema.portfolio_snapshots,
                    pd.DataFrame([_snapshot(D1, "ghost", 1.0, 0.0, 0.0, None, 0.0, True)]), dates=[D1], portfolio_ids=["ghost"])
    build_all(engine)
    worst = {o.test.name: o for o in run_model_tests(engine, manifest, "mart_stress_worst_cases")}
    assert not worst["not_null"].passed and worst["not_null"].failing_rows == 1
    assert worst["not_null"].sample.scenario_id.tolist() == ["unknown_scenario"]
    assert worst["unique_key"].passed
    daily = {o.test.name: o for o in run_model_tests(engine, manifest, "mart_portfolio_daily")}
    assert daily["not_null"].failing_rows == 1 and daily["not_null"].sample.portfolio_id.tolist() == ["ghost"]


def test_unique_catches_duplicate_keys(engine, tmp_path):
    raw = sa.Table("sqlm_test_raw", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("label", sa.String(10)))
    raw.drop(engine, checkfirst=True)
    raw.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(raw.insert(), [{"id": 1, "label": "a"}, {"id": 1, "label": "b"}, {"id": 2, "label": None}, {"id": 3, "label": "c"}])
        project = _project(tmp_path, {
            "staging/stg_raw.sql": "{#\nunique_key: [id]\nnot_null: [id, label]\n#}\nselect id, label from {{ source('raw', 'sqlm_test_raw') }}",
        }, sources="sources:\n  - name: raw\n    tables: [sqlm_test_raw]\n")
        m = load_manifest(project)
        build_all(engine, project)
        outcomes = {t.name: run_model_test(engine, t) for t in model_tests(m, "stg_raw")}
        assert outcomes["unique_key"].failing_rows == 1
        assert outcomes["unique_key"].sample.to_dict("records") == [{"id": 1, "n_rows": 2}]
        assert outcomes["not_null"].failing_rows == 1 and outcomes["not_null"].sample.id.tolist() == [2]
        drop_models(engine, m)
    finally:
        raw.drop(engine, checkfirst=True)


# ------------------------------------------------------------------------------------------------------
# Dagster
# ------------------------------------------------------------------------------------------------------
def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_asset_deps_and_checks(manifest):
    deps = {k.to_user_string(): {d.to_user_string() for d in v} for k, v in sql_models.asset_deps.items()}
    assert set(deps) == set(manifest.order)
    assert deps["mart_stress_worst_cases"] == {"stg_stress_results", "stg_stress_scenarios"}
    assert deps["stg_stress_results"] == {"stress_results"}
    assert deps["stg_positions"] == {"portfolio_positions"}
    assert deps["stg_portfolio_exposures"] == {"position_valuations"}
    assert deps["stg_position_factor_exposures"] == {"factor_exposures"}
    assert deps["stg_stress_scenarios"] == set()  # reference data: no producing asset
    assert deps["mart_portfolio_daily"] == {"stg_portfolio_snapshots", "stg_portfolio_exposures", "stg_portfolios"}
    specs = {s.key.to_user_string(): s for s in sql_models.specs}
    assert specs["mart_stress_worst_cases"].group_name == "sql_models"
    assert specs["mart_stress_worst_cases"].kinds == {"sql"}
    assert specs["mart_stress_worst_cases"].description.startswith("The three worst stress scenarios")
    checks = {(c.asset_key.to_user_string(), c.name): c for c in sql_models.check_specs}
    assert checks[("mart_stress_worst_cases", "unique_key")].blocking
    assert ("mart_portfolio_daily", "not_null") in checks
    assert all(("stg_" + s.table, "unique_key") in checks for s in manifest.project.sources.values())


def test_definitions_load_with_sql_models():
    from sigmasight_pipeline.definitions import defs

    d = defs()
    dg.Definitions.validate_loadable(d)
    graph = d.resolve_asset_graph()
    node = graph.get(dg.AssetKey("mart_stress_worst_cases"))
    assert {k.to_user_string() for k in node.parent_keys} == {"stg_stress_results", "stg_stress_scenarios"}
    assert dg.AssetKey("stress_results") in graph.get(dg.AssetKey("stg_stress_results")).parent_keys
    assert node.group_name == "sql_models"


def test_dagster_materializes_models_with_passing_checks(engine, instance, manifest):
    seed(engine)
    result = dg.materialize([sql_models], instance=instance, resources={"warehouse": WarehouseResource(database_url=_url(engine))})
    assert result.success
    mats = {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}
    assert set(mats) == set(manifest.order)
    meta = mats["mart_stress_worst_cases"].metadata
    assert meta["dagster/row_count"].value == 11
    assert meta["dialect"].value == engine.dialect.name
    assert meta["compiled_sql"].value.startswith("```sql\nwith ranked as (")
    assert "market_crash_2008" in meta["preview"].value
    assert mats["mart_portfolio_daily"].metadata["dagster/row_count"].value == 6
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(sql_models.check_specs)
    assert all(e.passed for e in evaluations)
    unique = next(e for e in evaluations if e.asset_key.to_user_string() == "mart_stress_worst_cases" and e.check_name == "unique_key")
    assert unique.metadata["failing_rows"].value == 0
    assert_same_rows(rows(engine, "mart_stress_worst_cases", WORST_COLUMNS), EXPECTED_WORST)


def test_dagster_subset_and_blocking_check(engine, instance):
    seed(engine)
    write_partition(engine, schema.stress_results, pd.DataFrame([_stress(D3, "alpha", "unknown_scenario", -1e6)]),
                    dates=[D3], portfolio_ids=["alpha"])
    resources = {"warehouse": WarehouseResource(database_url=_url(engine))}
    result = dg.materialize(
        [sql_models], instance=instance, resources=resources, raise_on_error=False,
        selection=["stg_stress_results", "stg_stress_scenarios", "mart_stress_worst_cases"],
    )
    assert not result.success  # the blocking ERROR check fails the step
    mats = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert mats == {"stg_stress_results", "stg_stress_scenarios", "mart_stress_worst_cases"}
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [(e.asset_key.to_user_string(), e.check_name) for e in failed] == [("mart_stress_worst_cases", "not_null")]
    assert failed[0].severity == dg.AssetCheckSeverity.ERROR
    assert failed[0].metadata["failing_rows"].value == 1
    assert "unknown_scenario" in failed[0].metadata["sample"].value


def test_failed_model_skips_its_downstream(engine, instance, tmp_path):
    project = _project(tmp_path, {
        "staging/stg_broken.sql": "select no_such_column from {{ source('warehouse', 'factor_definitions') }}",
        "staging/stg_fine.sql": "{# unique_key: [factor_name] #}\nselect factor_name from {{ source('warehouse', 'factor_definitions') }}",
        "marts/mart_after.sql": "{# materialized: table #}\nselect * from {{ ref('stg_broken') }}",
        "staging/stg_nulls.sql": "{# not_null: [x] #}\nselect factor_name, cast(null as integer) as x from {{ source('warehouse', 'factor_definitions') }}",
        "marts/mart_after_nulls.sql": "{# materialized: table #}\nselect * from {{ ref('stg_nulls') }}",
    })
    upsert(engine, schema.factor_definitions, [{"factor_name": "Market", "proxy_symbol": "SPY", "display_order": 1}])
    m = load_manifest(project)
    assets = build_sql_model_assets(m, name="tmp_sql_models")
    result = dg.materialize([assets], instance=instance, raise_on_error=False,
                            resources={"warehouse": WarehouseResource(database_url=_url(engine))})
    assert not result.success
    # stg_broken fails to build and stg_nulls fails its blocking test: the marts on them are skipped
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {"stg_fine", "stg_nulls"}
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {("stg_fine", "unique_key"): True, ("stg_nulls", "not_null"): False}
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "stg_broken" in str(failure.event_specific_data.error)
    drop_models(engine, m)
