"""The API's portfolio routes and health against a real server (``sigmasight serve``) on the short demo, on SQLite
and PostgreSQL: every figure equals the stored row, formatted as the report JSON formats it."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from sigmasight_pipeline.reporting.formatting import format_field
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline_tests.api_support import served_demo, stored
from sigmasight_pipeline_tests.user_state import DEMO_END, DEMO_START

HEDGE = "demo-hedge-fund"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, request.param) as w:
        yield w


def test_health_needs_no_key_and_names_the_latest_date(world):
    r = world.get("/health", key=None)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "warehouse": "ok", "dagster_instance": "ok", "latest_computed_date": DEMO_END}


def test_a_key_lists_only_its_owners_portfolios_and_an_operator_all(world):
    mine = world.get("/portfolios").json()
    assert [p["portfolio_id"] for p in mine["items"]] == [HEDGE] and mine["total"] == 1
    assert mine["items"][0]["latest_date"] == DEMO_END
    assert world.get("/portfolios", key="stranger").json() == {"items": [], "next_cursor": None, "total": 0}
    everything = world.get("/portfolios", key="operator").json()
    assert [p["portfolio_id"] for p in everything["items"]] == ["demo-hedge-fund", "demo-hnw", "demo-individual"]
    first = world.get("/portfolios", key="operator", limit=2).json()
    assert len(first["items"]) == 2 and first["total"] == 3 and first["next_cursor"]
    rest = world.get("/portfolios", key="operator", limit=2, cursor=first["next_cursor"]).json()
    assert [p["portfolio_id"] for p in first["items"] + rest["items"]] == ["demo-hedge-fund", "demo-hnw", "demo-individual"]
    assert rest["next_cursor"] is None


def test_the_summary_is_the_stored_snapshot_and_exposures(world):
    body = world.get(f"/portfolios/{HEDGE}").json()
    assert body["as_of"] == DEMO_END  # the latest computed date by default
    snap = stored(world, sa.select(schema.portfolio_snapshots).where(
        (schema.portfolio_snapshots.c.portfolio_id == HEDGE) & (schema.portfolio_snapshots.c.date == dt.date(2025, 6, 30))))[0]
    expo = stored(world, sa.select(schema.portfolio_exposures).where(
        (schema.portfolio_exposures.c.portfolio_id == HEDGE) & (schema.portfolio_exposures.c.date == dt.date(2025, 6, 30))))[0]
    for field in ("total_value", "daily_pnl", "cumulative_pnl"):
        assert body[field] == format_field(field, snap[field])
    assert body["daily_return"] == format_field("daily_return", snap["daily_return"])
    for field in ("gross_exposure", "net_exposure", "long_exposure", "short_exposure", "delta_adjusted_exposure",
                  "options_exposure", "stock_exposure", "volatility_delta_exposure"):
        assert body["exposures"][field] == format_field(field, expo[field])
    for field in ("dollar_delta", "dollar_gamma"):
        assert body["greeks"][field] == format_field(field, snap[field])
    for field in ("portfolio_delta", "portfolio_vega"):
        assert body["greeks"][field] == format_field(field, snap[field])
    assert body["counts"]["position_count"] == snap["position_count"] == 30
    assert body["total_value"] == "12125528.84"  # the demo hedge fund on 2025-06-30 (issue 12's note)


def test_as_of_picks_a_date_and_a_date_without_data_names_the_latest(world):
    earlier = world.get(f"/portfolios/{HEDGE}", as_of=DEMO_START).json()
    assert earlier["as_of"] == DEMO_START and earlier["total_value"] != world.get(f"/portfolios/{HEDGE}").json()["total_value"]
    missing = world.get(f"/portfolios/{HEDGE}", as_of="2025-06-02")
    assert missing.status_code == 404
    assert missing.json()["field"] == "as_of" and DEMO_END in missing.json()["message"]


def test_another_owners_portfolio_reads_as_unknown(world):
    theirs = world.get("/portfolios/demo-hnw")
    unknown = world.get("/portfolios/no-such-book")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["message"].replace("demo-hnw", "X") == unknown.json()["message"].replace("no-such-book", "X")
    assert world.get("/portfolios/demo-hnw", key="hnw").status_code == 200
    assert world.get("/portfolios/demo-hnw", key="operator").status_code == 200


def test_exposures_over_time_are_the_stored_rows_oldest_first_with_filters(world):
    body = world.get(f"/portfolios/{HEDGE}/exposures").json()
    rows = stored(world, sa.select(schema.portfolio_exposures).where(schema.portfolio_exposures.c.portfolio_id == HEDGE)
                  .order_by(schema.portfolio_exposures.c.date))
    assert [p["as_of"] for p in body["items"]] == [f"{r['date']:%Y-%m-%d}" for r in rows] == [DEMO_START, DEMO_END]
    assert [p["gross_exposure"] for p in body["items"]] == [format_field("gross_exposure", r["gross_exposure"]) for r in rows]
    only_last = world.get(f"/portfolios/{HEDGE}/exposures", **{"from": DEMO_END}).json()
    assert [p["as_of"] for p in only_last["items"]] == [DEMO_END]
    backwards = world.get(f"/portfolios/{HEDGE}/exposures", **{"from": DEMO_END, "to": DEMO_START})
    assert backwards.status_code == 422 and backwards.json()["field"] == "from"


def test_performance_windows_are_the_stored_rows(world):
    body = world.get(f"/portfolios/{HEDGE}/performance").json()
    t = schema.portfolio_performance
    rows = {r["window_name"]: r for r in stored(world, sa.select(t).where((t.c.portfolio_id == HEDGE) & (t.c.date == dt.date(2025, 6, 30))))}
    assert body["as_of"] == DEMO_END
    assert [w["window_name"] for w in body["windows"]] == ["mtd", "ytd", "21d", "63d", "126d", "252d", "inception"]
    for window in body["windows"]:
        row = rows[window["window_name"]]
        assert window["n_returns"] == row["n_returns"] and window["flag"] == row["flag"]
        assert window["cumulative_return"] == format_field("cumulative_return", row["cumulative_return"])
        assert window["sharpe_ratio"] == format_field("sharpe_ratio", row["sharpe_ratio"])
