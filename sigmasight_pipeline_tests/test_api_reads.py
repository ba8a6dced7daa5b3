"""The API's position and risk reads (positions, groups, Greeks, factors, correlations, VaR / ES, attribution) against
a real server (``sigmasight serve``) on the short demo, on SQLite and PostgreSQL: every figure equals the stored
row of the date, formatted as the report JSON formats it (``reporting.formatting.format_field``)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from sigmasight_pipeline.reporting.formatting import format_field, format_quantity
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline_tests.api_support import served_demo, stored
from sigmasight_pipeline_tests.user_state import DEMO_END, DEMO_START

HEDGE = "demo-hedge-fund"
P = f"/portfolios/{HEDGE}"
END, START = dt.date(2025, 6, 30), dt.date(2025, 6, 27)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, request.param) as w:
        yield w


def rows_of(world, table, day=END, **where) -> list[dict]:
    query = sa.select(table).where(table.c.portfolio_id == HEDGE)
    if day is not None:
        query = query.where(table.c.date == day)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    return stored(world, query)


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def walk(world, path, **params) -> list[dict]:
    """Every item of a paginated list, page by page."""
    items, cursor = [], None
    while True:
        body = ok(world.get(path, **params, **({"cursor": cursor} if cursor else {})))
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


# --- positions -------------------------------------------------------------------------------------------------

def test_the_position_list_is_the_stored_rows_of_the_latest_date(world):
    body = ok(world.get(f"{P}/positions", limit=500))
    assert body["as_of"] == DEMO_END and body["total"] == 30 and body["next_cursor"] is None
    valuations = {r["position_id"]: r for r in rows_of(world, schema.position_valuations)}
    pnl = {r["position_id"]: r for r in rows_of(world, schema.position_daily_pnl)}
    greeks = {r["position_id"]: r for r in rows_of(world, schema.position_greeks)}
    positions = {r["position_id"]: r for r in rows_of(world, schema.positions, day=None)}
    tags: dict[int, list[str]] = {}
    for r in sorted(rows_of(world, schema.position_tags, day=None), key=lambda r: (r["position_id"], r["tag"])):
        tags.setdefault(r["position_id"], []).append(r["tag"])
    assert [p["position_id"] for p in body["items"]] == sorted(valuations)
    for item in body["items"]:
        pid = item["position_id"]
        v, p = valuations[pid], positions[pid]
        assert (item["symbol"], item["position_type"], item["underlying_symbol"]) == (
            p["symbol"], p["position_type"], p["underlying_symbol"])
        assert item["quantity"] == format_quantity(v["quantity"])
        assert item["entry_price"] == format_field("entry_price", p["entry_price"])
        for field in ("price", "underlying_price", "market_value", "cost_basis", "unrealized_pnl", "realized_pnl",
                      "notional", "delta_adjusted_exposure"):
            assert item[field] == format_field(field, v[field]), (pid, field)
        assert item["daily_pnl"] == format_field("daily_pnl", pnl[pid]["daily_pnl"])
        assert item["delta"] == format_field("delta", greeks[pid]["delta"])
        assert item["dollar_delta"] == format_field("dollar_delta", greeks[pid]["dollar_delta"])
        assert item["tags"] == tags.get(pid, [])
    # hand-checked: the demo hedge fund holds 8000 NVDA on 2025-06-30
    nvda = [p for p in body["items"] if p["symbol"] == "NVDA"]
    assert len(nvda) == 1 and nvda[0]["quantity"] == "8000" and nvda[0]["position_type"] == "LONG"


def test_position_filters_match_exactly(world):
    positions = rows_of(world, schema.positions, day=None)
    nvda = ok(world.get(f"{P}/positions", symbol="NVDA"))
    assert [p["symbol"] for p in nvda["items"]] == ["NVDA"] and nvda["total"] == 1
    assert ok(world.get(f"{P}/positions", symbol="nvda"))["items"] == nvda["items"]
    assert ok(world.get(f"{P}/positions", symbol="ZZZZ")) == {**nvda, "items": [], "total": 0}
    hostile = world.get(f"{P}/positions", symbol="x' OR 1=1 --")
    assert hostile.status_code == 422 and hostile.json()["field"] == "symbol"

    shorts = ok(world.get(f"{P}/positions", position_type="SHORT", limit=500))["items"]
    assert [p["position_id"] for p in shorts] == sorted(r["position_id"] for r in positions if r["position_type"] == "SHORT")
    assert shorts and all(p["position_type"] == "SHORT" for p in shorts)

    on_aapl = ok(world.get(f"{P}/positions", underlying="AAPL", limit=500))["items"]
    assert [p["position_id"] for p in on_aapl] == sorted(
        r["position_id"] for r in positions if r["underlying_symbol"] == "AAPL")
    assert len(on_aapl) >= 2  # AAPL stock and an AAPL option

    tagged = {r["position_id"] for r in rows_of(world, schema.position_tags, day=None) if r["tag"] == "Short Value Traps"}
    by_tag = ok(world.get(f"{P}/positions", tag="Short Value Traps", limit=500))["items"]
    assert {p["position_id"] for p in by_tag} == tagged and len(by_tag) == len(tagged) > 0
    unknown = world.get(f"{P}/positions", tag="No Such Tag")
    assert unknown.status_code == 422 and unknown.json()["field"] == "tag"
    assert world.get(f"{P}/positions", position_type="CALL").json()["field"] == "position_type"


def test_position_sort_and_pages_give_every_row_once(world):
    valuations = rows_of(world, schema.position_valuations)
    by_value = ok(world.get(f"{P}/positions", sort="-market_value", limit=500))["items"]
    expected = sorted(valuations, key=lambda r: (-r["market_value"], r["position_id"]))
    assert [p["position_id"] for p in by_value] == [r["position_id"] for r in expected]
    by_symbol = ok(world.get(f"{P}/positions", sort="symbol", limit=500))["items"]
    assert [p["symbol"] for p in by_symbol] == sorted(p["symbol"] for p in by_symbol)
    assert world.get(f"{P}/positions", sort="owner").json()["field"] == "sort"

    first = ok(world.get(f"{P}/positions", limit=5))
    assert len(first["items"]) == 5 and first["total"] == 30 and first["next_cursor"]
    pages = walk(world, f"{P}/positions", limit=5)
    assert [p["position_id"] for p in pages] == sorted(r["position_id"] for r in valuations)
    sorted_pages = walk(world, f"{P}/positions", limit=5, sort="-market_value")
    assert [p["position_id"] for p in sorted_pages] == [p["position_id"] for p in by_value]


def test_one_position_has_its_greeks_factors_pnl_and_tags(world):
    body = ok(world.get(f"{P}/positions/1"))
    assert body["as_of"] == DEMO_END and body["symbol"] == "NVDA" and body["quantity"] == "8000"
    assert body["tags"] == sorted(r["tag"] for r in rows_of(world, schema.position_tags, day=None, position_id=1))
    greeks = rows_of(world, schema.position_greeks, position_id=1)[0]
    for field in ("delta", "gamma", "theta", "vega", "position_delta", "dollar_delta", "dollar_gamma", "model_price"):
        assert body["greeks"][field] == format_field(field, greeks[field]), field
    factors = {r["factor_name"]: r for r in rows_of(world, schema.position_factor_exposures, position_id=1)}
    assert [f["factor_name"] for f in body["factors"]][0] == "Market" and len(body["factors"]) == len(factors) == 7
    for f in body["factors"]:
        row = factors[f["factor_name"]]
        for field in ("beta", "t_stat", "r_squared", "dollar_exposure"):
            assert f[field] == format_field(field, row[field]), (f["factor_name"], field)
        assert f["n_obs"] == row["n_obs"] and f["window_end"] == f"{row['window_end']:%Y-%m-%d}"
    pnl = rows_of(world, schema.position_daily_pnl, position_id=1)[0]
    assert body["pnl"]["daily_pnl"] == format_field("daily_pnl", pnl["daily_pnl"])
    assert body["pnl"]["pnl_basis"] == pnl["pnl_basis"]

    option = ok(world.get(f"{P}/positions/25"))  # the VIX call
    row = rows_of(world, schema.position_greeks, position_id=25)[0]
    assert option["greeks"]["implied_vol"] == format_field("implied_vol", row["implied_vol"])
    assert option["greeks"]["pricing_note"] == row["pricing_note"]

    missing = world.get(f"{P}/positions/999")
    assert missing.status_code == 404 and missing.json()["field"] == "position_id" and "999" in missing.json()["message"]
    assert world.get(f"{P}/positions/0").json()["field"] == "position_id"
    assert world.get(f"{P}/positions/abc").status_code == 422


def test_groups_by_tag_and_underlying_are_stored_and_by_type_sums_the_stored_valuations(world):
    for by in ("tag", "underlying"):
        body = ok(world.get(f"{P}/positions/groups", by=by))
        assert body["as_of"] == DEMO_END and body["source"] == "group_exposures"
        rows = {r["group_name"]: r for r in rows_of(world, schema.group_exposures, group_type=by)}
        assert [g["group_name"] for g in body["groups"]] == sorted(rows)
        for g in body["groups"]:
            row = rows[g["group_name"]]
            assert g["position_count"] == row["position_count"]
            for field in ("market_value", "gross_exposure", "delta_adjusted_exposure"):
                assert g[field] == format_field(field, row[field]), (by, g["group_name"], field)
    assert ok(world.get(f"{P}/positions/groups"))["by"] == "tag"  # the default

    body = ok(world.get(f"{P}/positions/groups", by="position_type"))
    types = {r["position_id"]: r["position_type"] for r in rows_of(world, schema.positions, day=None)}
    valuations = rows_of(world, schema.position_valuations)
    for g in body["groups"]:
        mine = [v for v in valuations if types[v["position_id"]] == g["group_name"]]
        assert g["position_count"] == len(mine)
        assert g["market_value"] == format_field("market_value", sum(v["market_value"] for v in mine))
        assert g["gross_exposure"] == format_field("gross_exposure", sum(abs(v["market_value"]) for v in mine))
    assert sum(g["position_count"] for g in body["groups"]) == 30
    assert world.get(f"{P}/positions/groups", by="owner").json()["field"] == "by"


# --- risk ------------------------------------------------------------------------------------------------------

def test_greeks_are_the_snapshot_and_the_position_greeks(world):
    body = ok(world.get(f"{P}/greeks"))
    snap = rows_of(world, schema.portfolio_snapshots)[0]
    assert body["as_of"] == DEMO_END
    for field in ("dollar_delta", "dollar_gamma", "portfolio_delta", "portfolio_gamma", "portfolio_theta",
                  "portfolio_vega", "portfolio_rho"):
        assert body["portfolio"][field] == format_field(field, snap[field]), field
    rows = {r["position_id"]: r for r in rows_of(world, schema.position_greeks)}
    assert [p["position_id"] for p in body["positions"]] == sorted(rows)
    for p in body["positions"]:
        for field in ("delta", "gamma", "theta", "vega", "rho", "position_delta", "position_vega", "dollar_delta"):
            assert p[field] == format_field(field, rows[p["position_id"]][field]), (p["position_id"], field)


def test_factor_exposures_betas_window_and_definitions(world):
    body = ok(world.get(f"{P}/factors"))
    assert body["as_of"] == DEMO_END
    rows = {r["factor_name"]: r for r in rows_of(world, schema.portfolio_factor_exposures)}
    assert [f["factor_name"] for f in body["portfolio"]] == [
        "Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility"]
    for f in body["portfolio"]:
        for field in ("dollar_exposure", "beta_net", "beta_gross"):
            assert f[field] == format_field(field, rows[f["factor_name"]][field])
    window = rows_of(world, schema.factor_regression_windows)[0]
    assert body["window"]["n_obs"] == window["n_obs"] and body["window"]["window_start"] == f"{window['window_start']:%Y-%m-%d}"
    assert body["window"]["condition_number"] == format_field("condition_number", window["condition_number"])
    betas = {(r["position_id"], r["factor_name"]): r for r in rows_of(world, schema.position_factor_exposures)}
    assert len(body["positions"]) == 30
    for p in body["positions"]:
        for f in p["factors"]:
            row = betas[(p["position_id"], f["factor_name"])]
            assert f["beta"] == format_field("beta", row["beta"])
            assert f["dollar_exposure"] == format_field("dollar_exposure", row["dollar_exposure"])
    definitions = ok(world.get("/factors", key="stranger"))  # any key reads the definitions
    stored_defs = stored(world, sa.select(schema.factor_definitions).order_by(schema.factor_definitions.c.display_order))
    assert [(d["factor_name"], d["proxy_symbol"]) for d in definitions] == [
        (r["factor_name"], r["proxy_symbol"]) for r in stored_defs]
    assert definitions[0] == {**definitions[0], "factor_name": "Market", "proxy_symbol": "SPY"}


def test_correlations_are_the_stored_matrix_metrics_clusters_and_pairs(world):
    body = ok(world.get(f"{P}/correlations"))
    assert body["as_of"] == DEMO_END
    names = body["factors"]["factors"]
    matrix = body["factors"]["matrix"]
    for r in rows_of(world, schema.factor_correlations):
        i, j = names.index(r["factor_a"]), names.index(r["factor_b"])
        assert matrix[i][j] == matrix[j][i] == format_field("correlation", r["correlation"])
    summary = rows_of(world, schema.correlation_summaries)[0]
    for field in ("overall_correlation", "concentration_score", "effective_positions"):
        assert body["summary"][field] == format_field(field, summary[field])
    assert body["summary"]["clusters"] == summary["clusters"] == len(body["clusters"])
    members = {(r["cluster_id"], r["position_id"]) for r in rows_of(world, schema.correlation_clusters)}
    assert {(c["cluster_id"], p) for c in body["clusters"] for p in c["position_ids"]} == members
    pairs = rows_of(world, schema.position_correlations)
    ids = body["positions"]["position_ids"]
    assert len(body["positions"]["pairs"]) == len(pairs) == len(ids) * (len(ids) - 1) // 2
    for r in pairs:
        i, j = ids.index(r["position_a"]), ids.index(r["position_b"])
        text = format_field("correlation", r["correlation"])
        assert body["positions"]["matrix"][i][j] == body["positions"]["matrix"][j][i] == text
        assert len(text.split(".")[1]) == 6


def test_risk_measures_contributions_and_backtest_are_the_stored_rows(world):
    body = ok(world.get(f"{P}/risk"))
    assert body["as_of"] == DEMO_END
    rows = {(r["method"], r["measure"], round(r["level"], 6), r["horizon_days"]): r
            for r in rows_of(world, schema.portfolio_risk_measures)}
    assert len(body["measures"]) == len(rows)
    for m in body["measures"]:
        row = rows[(m["method"], m["measure"], round(float(m["level"]), 6), m["horizon_days"])]
        if m["unit"] == "dollars":
            assert m["value"] == format_field("loss", row["value"])
        elif m["unit"] == "fraction":
            assert m["value"] == format_field("share", row["value"])
        else:
            assert m["value"] == str(int(row["value"]))
        assert m["flag"] == row["flag"]
    var99 = rows[("historical", "var", 0.99, 1)]
    assert any(m["measure"] == "var" and m["level"] == "0.990000" and m["horizon_days"] == 1
               and m["value"] == format_field("loss", var99["value"]) for m in body["measures"])
    assert body["volatility"]["volatility_1d"] == format_field("volatility_1d", rows[("parametric", "volatility", 0.0, 1)]["value"])
    by_position = rows_of(world, schema.position_risk_contributions)
    assert len(body["position_contributions"]) == len(by_position) == 4 * 30
    index = {(r["position_id"], r["method"], r["measure"], round(r["level"], 6)): r for r in by_position}
    for c in body["position_contributions"]:
        row = index[(c["position_id"], c["method"], c["measure"], round(float(c["level"]), 6))]
        assert c["contribution"] == format_field("contribution", row["contribution"])
        assert c["share"] == format_field("share", row["share"])
    by_factor = {r["factor_name"]: r for r in rows_of(world, schema.factor_risk_contributions)}
    assert [c["factor_name"] for c in body["factor_contributions"]][-1] == "Specific"
    for c in body["factor_contributions"]:
        assert c["contribution"] == format_field("contribution", by_factor[c["factor_name"]]["contribution"])
    backtest = rows_of(world, schema.risk_backtest)[0]
    assert body["backtest"]["var_99"] == format_field("var_99", backtest["var_99"])
    assert body["backtest"]["zone"] == backtest["zone"] and body["backtest"]["var_date"] == DEMO_START


def test_attribution_lines_and_the_cumulative_range(world):
    body = ok(world.get(f"{P}/attribution", limit=500))
    lines = stored(world, sa.select(schema.pnl_attribution).where(schema.pnl_attribution.c.portfolio_id == HEDGE)
                   .order_by(schema.pnl_attribution.c.date, schema.pnl_attribution.c.line_order))
    assert [(i["as_of"], i["line"]) for i in body["items"]] == [(f"{r['date']:%Y-%m-%d}", r["line"]) for r in lines]
    assert [i["pnl"] for i in body["items"]] == [format_field("pnl", r["pnl"]) for r in lines]
    assert [i["exposure"] for i in body["items"]] == [format_field("exposure", r["exposure"]) for r in lines]
    totals: dict[str, float] = {}
    for r in lines:
        totals[r["line"]] = totals.get(r["line"], 0.0) + (r["pnl"] or 0.0)
    assert {c["line"]: c["pnl"] for c in body["cumulative"]} == {k: format_field("pnl", v) for k, v in totals.items()}
    assert [c["line"] for c in body["cumulative"]][-2:] == ["specific", "residual"]
    ranged = ok(world.get(f"{P}/attribution", **{"from": DEMO_END, "to": DEMO_END}))
    assert ranged["from"] == ranged["to"] == DEMO_END and ranged["cumulative"] == body["cumulative"]
    assert ok(world.get(f"{P}/attribution", **{"from": DEMO_START, "to": DEMO_START}))["items"] == []  # a first snapshot
    backwards = world.get(f"{P}/attribution", **{"from": DEMO_END, "to": DEMO_START})
    assert backwards.status_code == 422 and backwards.json()["field"] == "from"
    paged = walk(world, f"{P}/attribution", limit=5)
    assert paged == body["items"]


# --- dates and access ------------------------------------------------------------------------------------------

def test_as_of_picks_the_date_and_a_date_without_data_names_the_latest(world):
    earlier = ok(world.get(f"{P}/positions", as_of=DEMO_START, symbol="NVDA"))
    row = rows_of(world, schema.position_valuations, day=START, position_id=1)[0]
    assert earlier["as_of"] == DEMO_START
    assert earlier["items"][0]["market_value"] == format_field("market_value", row["market_value"])
    assert earlier["items"][0]["market_value"] != ok(world.get(f"{P}/positions", symbol="NVDA"))["items"][0]["market_value"]
    factors = ok(world.get(f"{P}/factors", as_of=DEMO_START))
    market = rows_of(world, schema.portfolio_factor_exposures, day=START, factor_name="Market")[0]
    assert factors["portfolio"][0]["dollar_exposure"] == format_field("dollar_exposure", market["dollar_exposure"])
    risk = ok(world.get(f"{P}/risk", as_of=DEMO_START))
    assert risk["as_of"] == DEMO_START and risk["backtest"] is None  # no VaR of a previous session
    for path in ("/positions", "/positions/1", "/positions/groups", "/greeks", "/factors", "/correlations", "/risk"):
        missing = world.get(f"{P}{path}", as_of="2025-06-02")
        assert missing.status_code == 404, path
        assert missing.json()["field"] == "as_of" and DEMO_END in missing.json()["message"], path
        assert ok(world.get(f"{P}{path}"))["as_of"] == DEMO_END, path


def test_another_owners_portfolio_reads_as_unknown_on_every_route(world):
    for path in ("/positions", "/positions/1", "/positions/groups", "/greeks", "/factors", "/correlations", "/risk",
                 "/attribution"):
        theirs = world.get(f"{P}{path}", key="hnw")
        unknown = world.get(f"/portfolios/no-such-book{path}")
        assert theirs.status_code == unknown.status_code == 404, path
        assert theirs.json()["message"].replace(HEDGE, "X") == unknown.json()["message"].replace("no-such-book", "X")
        assert world.get(f"{P}{path}", key="operator").status_code == 200, path
