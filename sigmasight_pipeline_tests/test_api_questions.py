"""Stress and what-if through the API against a real server on the short demo, on SQLite and PostgreSQL: stored
scenarios and results equal the stored rows; ad-hoc scenarios go through the scenario file's validator and, given the
stored scenarios, reproduce the stored results; a what-if answers exactly what ``sigmasight whatif`` answers; nothing
is written."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
import yaml

from sigmasight_pipeline.reporting.formatting import format_field
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline_tests.api_support import served_demo, stored
from sigmasight_pipeline_tests.user_state import DEMO_END, sigmasight

HEDGE = "demo-hedge-fund"
TRADES = "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-4000,157.99\n2025-06-30,SPY250919P00580000,20,9.50\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, request.param) as w:
        yield w


def test_the_scenarios_are_the_stored_ones_with_their_shocks(world):
    body = world.get("/scenarios").json()
    s, k = schema.stress_scenarios, schema.stress_scenario_shocks
    rows = stored(world, sa.select(s).order_by(s.c.display_order))
    assert [x["scenario_id"] for x in body] == [r["scenario_id"] for r in rows]
    shocks = stored(world, sa.select(k))
    first = body[0]
    mine = {(first["scenario_id"], x["factor_name"]): x["shock"] for x in first["shocks"]}
    assert mine == {(r["scenario_id"], r["factor_name"]): format_field("shock", r["shock"])
                    for r in shocks if r["scenario_id"] == first["scenario_id"]}
    assert world.get("/scenarios", key="stranger").status_code == 200  # reference data: any key


def test_the_stored_stress_results_worst_first_with_their_breakdown(world):
    body = world.get(f"/portfolios/{HEDGE}/stress").json()
    r = schema.stress_results
    rows = {x["scenario_id"]: x for x in stored(world, sa.select(r).where(
        (r.c.portfolio_id == HEDGE) & (r.c.date == dt.date(2025, 6, 30))))}
    assert body["as_of"] == DEMO_END and len(body["results"]) == len(rows) == 18
    pnl = [float(x["correlated_pnl"]) for x in body["results"]]
    assert pnl == sorted(pnl)  # worst first
    for item in body["results"]:
        row = rows[item["scenario_id"]]
        for field in ("direct_pnl", "correlated_pnl", "correlation_effect", "pct_of_gross_exposure", "equity"):
            assert item[field] == format_field(field, row[field]), field
        assert item["factor_breakdown"]
    assert body["results"][0]["scenario_id"] == "dotcom_crash_2000"
    assert body["results"][0]["correlated_pnl"] == "-16682985.98"  # issue 12's note: the worst scenario
    rates = world.get(f"/portfolios/{HEDGE}/stress", category="rates").json()["results"]
    assert rates and {x["category"] for x in rates} == {"rates"}
    assert world.get(f"/portfolios/{HEDGE}/stress", category="weather").status_code == 422
    assert world.get(f"/portfolios/{HEDGE}/stress", key="hnw").status_code == 404


def test_adhoc_scenarios_reproduce_the_stored_results_and_store_nothing(world):
    from sigmasight_pipeline.warehouse.reference import stress_scenarios

    scenarios, shocks = stress_scenarios()
    body = []
    for s in scenarios.to_dict("records"):
        mine = shocks[shocks.scenario_id == s["scenario_id"]]
        body.append({"id": s["scenario_id"], "name": s["name"], "category": s["category"], "severity": s["severity"],
                     "shocks": dict(zip(mine.factor_name, mine.shock))})
    before = world.row_counts()
    r = world.post(f"/portfolios/{HEDGE}/stress", json={"as_of": DEMO_END, "scenarios": body})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["stored"] is False and answer["as_of"] == DEMO_END
    t = schema.stress_results
    rows = {x["scenario_id"]: x for x in stored(world, sa.select(t).where(
        (t.c.portfolio_id == HEDGE) & (t.c.date == dt.date(2025, 6, 30))))}
    for item in answer["scenarios"]:
        assert item["correlated_pnl"] == pytest.approx(rows[item["scenario_id"]]["correlated_pnl"], abs=0.006)
        assert item["direct_pnl"] == pytest.approx(rows[item["scenario_id"]]["direct_pnl"], abs=0.006)
    assert world.row_counts() == before


def test_adhoc_scenario_problems_are_422_naming_scenario_and_field(world):
    before = world.row_counts()
    not_a_number = world.post(f"/portfolios/{HEDGE}/stress", json={"scenarios": [
        {"id": "a", "name": "A", "shocks": {"Market": "lots"}}]})
    assert not_a_number.status_code == 422 and not_a_number.json()["field"] == "scenarios.0.shocks.Market"
    r = world.post(f"/portfolios/{HEDGE}/stress", json={"scenarios": [
        {"id": "a", "name": "A", "shocks": {"Mkt": -0.1}},
        {"id": "a", "name": "B", "shocks": {"Market": -9}},
    ]})
    assert r.status_code == 422, r.text
    messages = [e["message"] for e in r.json()["errors"]]
    assert len(messages) >= 3, messages  # every problem at once
    assert any("unknown factor 'Mkt'" in m for m in messages)
    assert any("'a'" in m and "id" in m for m in messages[1:])  # the repeated id
    assert any("Market" in m for m in messages[1:])  # a -900% shock is outside its range
    r = world.post(f"/portfolios/{HEDGE}/stress", json={"scenarios": [{"id": "a", "name": "A", "shock": {"Market": -0.1}}]})
    assert r.status_code == 422 and r.json()["field"] == "scenarios.0.shock"
    assert world.row_counts() == before


def _without_time(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "elapsed_seconds"}


def test_a_whatif_through_the_api_equals_the_command(world, tmp_path):
    before = world.row_counts()
    r = world.post(f"/portfolios/{HEDGE}/whatif", json={"trades_csv": TRADES, "as_of": DEMO_END})
    assert r.status_code == 200, r.text
    trades = tmp_path / "whatif.csv"
    trades.write_text(TRADES)
    proc = sigmasight(world.folder, "whatif", "--portfolio", HEDGE, "--trades", str(trades), "--as-of", DEMO_END,
                      "--format", "json", extra={"SIGMASIGHT_DATABASE_URL": world.database_url}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _without_time(r.json()) == _without_time(json.loads(proc.stdout))
    value = {x["figure"]: x for x in r.json()["sections"]["value_and_exposures"]}
    assert value["Market value (net)"]["before"] == pytest.approx(12125528.84, abs=0.01)
    assert world.row_counts() == before


def test_whatif_problems_name_the_row_the_symbol_or_the_field(world):
    bad_row = world.post(f"/portfolios/{HEDGE}/whatif", json={"trades_csv": TRADES.replace("-4000", "lots")})
    assert bad_row.status_code == 422 and bad_row.json()["field"] == "trades_csv.row2.quantity"
    unknown = world.post(f"/portfolios/{HEDGE}/whatif", json={"trades_csv": TRADES.replace("NVDA", "ZZZZ")})
    assert unknown.status_code == 422 and "ZZZZ" in unknown.json()["message"]
    extra = world.post(f"/portfolios/{HEDGE}/whatif", json={"trades_csv": TRADES, "commit": True})
    assert extra.status_code == 422 and extra.json()["field"] == "commit"
    theirs = world.post("/portfolios/demo-hnw/whatif", json={"trades_csv": TRADES})
    assert theirs.status_code == 404


def test_the_scenario_body_is_the_scenario_file():
    from sigmasight_pipeline.api.routes.stress import AdhocStressRequest, _scenario_file
    from sigmasight_pipeline.warehouse.reference import parse_scenarios

    body = AdhocStressRequest(scenarios=[{"id": "r", "name": "Rates +50", "rate_shock_bp": 50,
                                          "period": ["2022-01-03", "2022-06-30"], "severity": "severe"}])
    text = _scenario_file(body)
    assert yaml.safe_load(text)["scenarios"][0]["period"] == [dt.date(2022, 1, 3), dt.date(2022, 6, 30)]
    scenarios, shocks = parse_scenarios(text, "body")
    assert shocks.to_dict("records") == [{"scenario_id": "r", "factor_name": "Interest Rate", "shock": 0.005}]
    assert scenarios.iloc[0]["severity"] == "severe"
