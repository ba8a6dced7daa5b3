"""Stress, what-if, tags, trades and uploads through the API against a real server on the short demo, on SQLite
and PostgreSQL: stored scenarios, results, ledger and tags equal the stored rows (and the commands' tables);
ad-hoc scenarios go through the scenario file's validator and, given the stored scenarios, reproduce the stored
results; a what-if answers exactly what ``sigmasight whatif`` answers; every refused request names its field or
row and writes nothing. A world of its own (SQLite) takes the writes: a trades file, a tag change and an upload
are stored, answered 202 and followed by their Dagster runs."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import sqlalchemy as sa
import yaml

from sigmasight_pipeline.reporting.formatting import format_field
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline_tests.api_support import api_world, served_demo, stored
from sigmasight_pipeline_tests.user_state import DEMO_END, DEMO_START, sigmasight

HEDGE = "demo-hedge-fund"
HNW = "demo-hnw"
TRADES = "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-4000,157.99\n2025-06-30,SPY250919P00580000,20,9.50\n"
GOOD_TRADES = "trade_date,ticker,quantity,price,trade_id\n2025-06-27,AAPL,10,201.08,api-t1\n"
BAD_TRADES = "trade_date,ticker,quantity,price\n2025-06-27,AAPL,ten,201.08\n2025-13-01,MSFT,5,400\n"
UPLOAD = "ticker,quantity,entry_price,entry_date\nAAPL,100,150.00,2024-01-05\nSPY,20,470.00,2024-01-05\n"
BAD_UPLOAD = "ticker,quantity,entry_price,entry_date\nAAPL,abc,150.00,2024-01-05\nSPY,20,-470.00,2024-13-05\n"
MAX_UPLOAD = 50_000  # the read worlds' upload limit (SIGMASIGHT_API_MAX_UPLOAD_BYTES)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, request.param,
                     extra={"SIGMASIGHT_API_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}) as w:
        yield w


@pytest.fixture(scope="module")
def writable(request, tmp_path_factory):
    """A world of its own for the writes (SQLite), computing from the demo window's first session on."""
    with served_demo(request, tmp_path_factory, "sqlite", extra={"SIGMASIGHT_PARTITION_START": DEMO_START}) as w:
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
    # the validator of the scenario file names each problem's scenario and field in its message
    assert all(e["field"] == "scenarios" and "(field " in e["message"] for e in r.json()["errors"])
    assert any("(field shocks.Mkt)" in m for m in messages) and any("(field id)" in m for m in messages)
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


# --- trades, tags, uploads: reads and refusals (both dialects) ------------------------------------------------------

def _engine_of(world):
    from sigmasight_pipeline.warehouse.io import get_engine

    return get_engine(world.database_url)


def _money(value) -> str:
    return f"{float(value):.2f}"


def test_the_ledger_and_the_lots_are_the_commands_tables(world):
    from sigmasight_pipeline.warehouse.book import ledger_tables

    entries, lots = ledger_tables(_engine_of(world), HEDGE)
    body = world.get(f"/portfolios/{HEDGE}/trades", limit=500).json()
    assert body["portfolio_id"] == HEDGE and body["total"] == len(entries) == len(body["items"]) > 5
    assert [x["symbol"] for x in body["items"]] == list(entries["symbol"])
    assert [x["source"] for x in body["items"]] == list(entries["source"])
    assert [x["quantity"] for x in body["items"]] == pytest.approx(list(entries["quantity"].astype(float)))
    assert [_money(x["price"]) for x in body["items"]] == [_money(v) for v in entries["price"]]
    assert len(body["lots"]) == len(lots) and [x["symbol"] for x in body["lots"]] == list(lots["symbol"])
    # the opening holdings are the stored upload's positions
    p = schema.positions
    held = stored(world, sa.select(p.c.symbol).where(p.c.portfolio_id == HEDGE))
    assert {x["symbol"] for x in body["items"]} == {r["symbol"] for r in held}
    # pages: every row once, in order
    seen, cursor = [], None
    while True:
        page = world.get(f"/portfolios/{HEDGE}/trades", limit=7, **({"cursor": cursor} if cursor else {})).json()
        seen += [x["position"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [x["position"] for x in body["items"]]
    assert world.get(f"/portfolios/{HEDGE}/trades", key="hnw").status_code == 404
    assert world.get(f"/portfolios/{HEDGE}/trades", limit=501).json()["field"] == "limit"


def test_the_tags_are_the_commands_tables_and_the_stored_tags(world):
    from sigmasight_pipeline.warehouse.book import tag_tables

    current, history = tag_tables(_engine_of(world), HEDGE)
    body = world.get(f"/portfolios/{HEDGE}/tags").json()
    assert [p["position"] for p in body["positions"]] == list(current["position"])
    assert [", ".join(p["tags"]) or "-" for p in body["positions"]] == list(current["tags"])
    assert len(body["changes"]) == len(history)
    t = schema.position_tags
    rows = stored(world, sa.select(t.c.position_id, t.c.tag).where(t.c.portfolio_id == HEDGE))
    tagged = {}
    for r in rows:
        tagged.setdefault(r["position_id"], set()).add(r["tag"])
    assert {p["position"]: set(p["tags"]) for p in body["positions"] if p["tags"]} == tagged
    assert world.get(f"/portfolios/{HEDGE}/tags", key="stranger").status_code == 404


def test_refused_tag_changes_name_the_field_and_change_nothing(world):
    before = world.row_counts()
    cases = [
        ({"action": "add", "tag": "a,b", "position_id": 1}, "tag"),
        ({"action": "remove", "tag": "x", "position_id": 999}, "position_id"),
        ({"action": "add", "tag": "x", "ticker": "ZZZZ"}, "ticker"),
        ({"action": "add", "tag": "x", "position_id": 1, "ticker": "NVDA"}, "position_id"),
        ({"action": "add", "tag": "x", "position_id": 1, "effective_date": "2099-01-02"}, "effective_date"),
        ({"action": "rename", "tag": "x", "position_id": 1}, "action"),
        ({"action": "add", "tag": "x", "position_id": 1, "when": "now"}, "when"),
    ]
    for body, field in cases:
        r = world.post(f"/portfolios/{HEDGE}/tags", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
    assert world.post(f"/portfolios/{HNW}/tags", json={"action": "add", "tag": "x", "position_id": 1}).status_code == 404
    assert world.row_counts() == before


def test_a_bad_trades_file_lists_every_row_error_and_stores_nothing(world):
    before = world.row_counts()
    r = world.post(f"/portfolios/{HEDGE}/trades", files={"file": ("bad.trades.csv", BAD_TRADES, "text/csv")})
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert r.json()["field"] == "file.row2.quantity" and "file.row2.quantity" in fields
    assert any(f.startswith("file.row3") for f in fields)
    assert "nothing was imported" in r.json()["message"]
    later = world.post(f"/portfolios/{HEDGE}/trades", files={"file": ("t.csv", TRADES.replace("2025-06-30", "2099-01-02"), "text/csv")})
    assert later.status_code == 422 and later.json()["field"].startswith("file.row2"), later.text  # a future date
    big = world.post(f"/portfolios/{HEDGE}/trades",
                     files={"file": ("big.csv", GOOD_TRADES + "2025-06-27,AAPL,1,201.08\n" * (MAX_UPLOAD // 20), "text/csv")})
    assert big.status_code == 413 and big.json()["field"] == "file"
    assert world.post(f"/portfolios/{HEDGE}/trades", data={"x": "1"}).json()["field"] == "file"
    theirs = world.post(f"/portfolios/{HNW}/trades", files={"file": ("t.csv", GOOD_TRADES, "text/csv")})
    assert theirs.status_code == 404
    assert world.row_counts() == before


def test_a_bad_upload_lists_every_row_error_and_imports_nothing(world):
    before = world.row_counts()
    r = world.post("/uploads", files={"file": ("bad.csv", BAD_UPLOAD, "text/csv")}, data={"name": "Bad Book"})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert len(errors) >= 3 and [e["field"] for e in errors][:1] == ["file.row2.quantity"]
    assert any(e["field"].startswith("file.row3") for e in errors)
    other = world.post("/uploads", files={"file": ("x.csv", UPLOAD, "text/csv")},
                       data={"name": "Someone Else's", "owner": "x@example.com"})
    assert other.status_code == 403 and other.json()["field"] == "owner"
    their_name = world.get("/portfolios", key="hnw").json()["items"][0]["name"]
    for form, field in (({"name": "Mine", "portfolio_id": HNW}, "portfolio_id"), ({"name": their_name}, "name")):
        taken = world.post("/uploads", files={"file": ("x.csv", UPLOAD, "text/csv")}, data=form)
        assert taken.status_code == 409 and taken.json()["field"] == field, taken.text
        assert "already used" in taken.text and "demo_hnw" not in taken.text and "@" not in taken.text
    big = world.post("/uploads", files={"file": ("big.csv", UPLOAD + "AAPL,1,150.00,2024-01-05\n" * (MAX_UPLOAD // 20),
                                                 "text/csv")}, data={"name": "Big Book"})
    assert big.status_code == 413 and big.json()["field"] == "file"
    assert world.post("/uploads", data={"name": "No File"}).json()["field"] == "file"
    assert world.row_counts() == before


# --- writes (a world of their own) ----------------------------------------------------------------------------------

def _wait(world, answer: dict, key: str = "hedge", timeout: float = 240) -> dict:
    """The work request's state once it has finished (``GET /requests/{id}``)."""
    url = answer["request"]["status_url"].removeprefix("/api/v1")
    deadline = time.monotonic() + timeout
    while True:
        state = world.get(url, key=key).json()
        if state["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return state
        time.sleep(1)


def test_imported_trades_are_stored_then_positions_and_the_dates_recomputed(writable):
    r = writable.post(f"/portfolios/{HEDGE}/trades", files={"file": ("api.trades.csv", GOOD_TRADES, "text/csv")})
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["trades"] == 1 and answer["first_trade_date"] == DEMO_START
    assert answer["request"]["mode"] == "in_process"
    assert answer["request"]["status_url"] == f"/api/v1/requests/{answer['request']['request_id']}"
    t = schema.trades
    rows = stored(writable, sa.select(t).where(t.c.portfolio_id == HEDGE))
    assert [x["trade_id"] for x in rows] == ["api-t1"]  # stored before the answer
    state = _wait(writable, answer)
    assert state["state"] == "succeeded", state
    assert state["runs"] and all(run["status"] == "SUCCESS" for run in state["runs"])
    p, v = schema.positions, schema.position_valuations
    held = stored(writable, sa.select(p.c.quantity).where((p.c.portfolio_id == HEDGE) & (p.c.symbol == "AAPL")))[0]
    ledger = writable.get(f"/portfolios/{HEDGE}/trades", limit=500).json()["items"]
    assert ledger[-1]["symbol"] == "AAPL" and ledger[-1]["quantity"] == 10  # the ledger ends with the trade
    uploaded = sum(x["quantity"] for x in ledger if x["symbol"] == "AAPL" and x["source"].startswith("upload"))
    assert held["quantity"] == pytest.approx(uploaded + 10)  # the book now holds the trade
    aapl = stored(writable, sa.select(v.c.date, v.c.quantity).select_from(
        v.join(p, (p.c.portfolio_id == v.c.portfolio_id) & (p.c.position_id == v.c.position_id)))
        .where((v.c.portfolio_id == HEDGE) & (p.c.symbol == "AAPL")).order_by(v.c.date))
    # both recomputed dates (from the trade date on) value the new quantity
    assert [f"{x['date']:%Y-%m-%d}" for x in aapl] == [DEMO_START, DEMO_END]
    assert [x["quantity"] for x in aapl] == pytest.approx([uploaded + 10] * 2)
    again = writable.post(f"/portfolios/{HEDGE}/trades", files={"file": ("api.trades.csv", GOOD_TRADES, "text/csv")})
    assert again.status_code == 422 and "already imported" in again.text  # a rerun never duplicates


def test_a_tag_change_is_stored_then_recomputed_from_its_date(writable):
    r = writable.post(f"/portfolios/{HEDGE}/tags", json={"action": "add", "tag": "api-core", "ticker": "NVDA",
                                                         "effective_date": DEMO_END})
    assert r.status_code == 202, r.text
    change = r.json()["change"]
    assert change["action"] == "add" and change["tag"] == "api-core" and change["session"] == DEMO_END
    assert [x["symbol"] for x in change["positions"]] == ["NVDA"] and "api-core" in change["positions"][0]["tags_after"]
    c = schema.tag_changes
    assert [x["tag"] for x in stored(writable, sa.select(c).where(c.c.portfolio_id == HEDGE))][-1:] == ["api-core"]
    state = _wait(writable, r.json())
    assert state["state"] == "succeeded", state
    tags = writable.get(f"/portfolios/{HEDGE}/tags").json()
    nvda = next(p for p in tags["positions"] if p["symbol"] == "NVDA")
    assert "api-core" in nvda["tags"] and tags["changes"][-1]["tag"] == "api-core"
    g = schema.group_exposures
    groups = stored(writable, sa.select(g.c.date).where((g.c.portfolio_id == HEDGE) & (g.c.group_name == "api-core")))
    assert {f"{x['date']:%Y-%m-%d}" for x in groups} == {DEMO_END}  # from its date on, not before
    # the position list and the position show the tags of their date (the ledger replayed to a date before it)
    def nvda(day) -> dict:
        (item,) = writable.get(f"/portfolios/{HEDGE}/positions", as_of=day, symbol="NVDA").json()["items"]
        return item
    assert "api-core" in nvda(DEMO_END)["tags"] and "api-core" not in nvda(DEMO_START)["tags"]
    assert nvda(DEMO_START)["tags"] == sorted(set(nvda(DEMO_END)["tags"]) - {"api-core"})
    nvda_id = nvda(DEMO_END)["position_id"]
    one = writable.get(f"/portfolios/{HEDGE}/positions/{nvda_id}", as_of=DEMO_START).json()
    assert one["tags"] == nvda(DEMO_START)["tags"] and one["position_type"] == "LONG"
    assert [x["symbol"] for x in writable.get(f"/portfolios/{HEDGE}/positions", as_of=DEMO_END,
                                              tag="api-core").json()["items"]] == ["NVDA"]
    before = writable.get(f"/portfolios/{HEDGE}/positions", as_of=DEMO_START, tag="api-core")
    assert before.status_code == 422 and before.json()["field"] == "tag"  # not one of that day's tags
    twice = writable.post(f"/portfolios/{HEDGE}/tags", json={"action": "add", "tag": "api-core", "ticker": "NVDA",
                                                             "effective_date": DEMO_END})
    assert twice.status_code == 422 and twice.json()["field"] == "tag" and "already has tag" in twice.text


def test_a_work_request_is_read_back_from_the_instance_by_an_api_process_that_did_not_take_it(writable):
    """After a restart (here: a second API process on the same state) ``GET /requests/{id}`` still answers, from
    the runs the request's id and key are tagged on; the key that asked and operators see it, no one else."""
    r = writable.post(f"/portfolios/{HEDGE}/tags", json={"action": "add", "tag": "api-later", "ticker": "AAPL",
                                                         "effective_date": DEMO_END})
    assert r.status_code == 202, r.text
    taken = _wait(writable, r.json())
    assert taken["state"] == "succeeded", taken
    url = r.json()["request"]["status_url"].removeprefix("/api/v1")
    with api_world(writable.folder, {"SIGMASIGHT_PARTITION_START": DEMO_START}) as again:
        back = again.get(url, key=writable.keys.hedge)  # the original key's token: the key row is in the warehouse
        assert back.status_code == 200, back.text
        body = back.json()
        assert body["state"] == "succeeded" and body["mode"] == "in_process" and body["request_id"] == taken["request_id"]
        assert [x["run_id"] for x in body["runs"]] == [x["run_id"] for x in taken["runs"]]
        assert "read back from the Dagster instance" in body["label"] and body["submitted_at"] <= taken["runs"][-1]["start_time"]
        assert again.get(url, key="operator").status_code == 200
        assert again.get(url, key="hnw").status_code == 404  # another owner's key: as if there were none
        assert again.get("/requests/nosuchreq", key="operator").status_code == 404


def test_an_upload_becomes_a_portfolio_of_the_keys_owner_with_its_history(writable):
    r = writable.post("/uploads", key="stranger", files={"file": ("starter.csv", UPLOAD, "text/csv")},
                      data={"name": "Starter Book"})
    assert r.status_code == 202, r.text
    answer = r.json()
    pid = answer["portfolio_id"]
    assert pid == "starter-book" and answer["owner"] == "nobody@example.com" and answer["positions"] == 2
    t = schema.portfolios
    assert stored(writable, sa.select(t.c.owner).where(t.c.portfolio_id == pid)) == [{"owner": "nobody@example.com"}]
    state = _wait(writable, answer, key="stranger")
    assert state["state"] == "succeeded", state
    mine = writable.get("/portfolios", key="stranger").json()
    assert [p["portfolio_id"] for p in mine["items"]] == [pid]
    summary = writable.get(f"/portfolios/{pid}", key="stranger").json()
    assert summary["as_of"] == DEMO_END and summary["counts"]["position_count"] == 2
    assert writable.get(f"/portfolios/{pid}", key="hedge").status_code == 404
    assert writable.get(f"/requests/{answer['request']['request_id']}", key="hedge").status_code == 404
    again = writable.post("/uploads", key="hedge", files={"file": ("x.csv", UPLOAD, "text/csv")},
                          data={"name": "Another", "portfolio_id": pid})
    assert again.status_code == 409 and "nobody" not in again.text  # already used, by whom not said
    ops = writable.post("/uploads", key="operator", files={"file": ("x.csv", UPLOAD, "text/csv")},
                        data={"name": "For HNW", "owner": "demo_hnw@sigmasight.com"})
    assert ops.status_code == 202 and ops.json()["owner"] == "demo_hnw@sigmasight.com"
    assert _wait(writable, ops.json(), key="operator")["state"] == "succeeded"
