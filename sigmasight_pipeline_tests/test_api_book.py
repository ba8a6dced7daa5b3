"""Books that change through the API (uploads, trades, tags) against a real server on the short demo: the reads
equal what the CLI's functions return, a bad file is a 422 listing every row error with nothing stored, and a good
one is stored, answered 202 and followed by its Dagster runs (a work request the key can follow)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline_tests.api_support import served_demo, stored
from sigmasight_pipeline_tests.user_state import DEMO_END, DEMO_START

HEDGE = "demo-hedge-fund"
HNW = "demo-hnw"
GOOD_TRADES = "trade_date,ticker,quantity,price,trade_id\n2025-06-27,AAPL,10,201.08,api-t1\n"
BAD_TRADES = "trade_date,ticker,quantity,price\n2025-06-27,AAPL,ten,201.08\n2025-13-01,MSFT,5,400\n"
UPLOAD = "ticker,quantity,entry_price,entry_date\nAAPL,100,150.00,2024-01-05\nSPY,20,470.00,2024-01-05\n"
BAD_UPLOAD = "ticker,quantity,entry_price,entry_date\nAAPL,abc,150.00,2024-01-05\nSPY,20,-470.00,2024-13-05\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, request.param) as w:
        yield w


@pytest.fixture(scope="module")
def writable(request, tmp_path_factory):
    """A world of its own for the writes (SQLite), computing from the demo window's first session on."""
    with served_demo(request, tmp_path_factory, "sqlite", extra={"SIGMASIGHT_PARTITION_START": DEMO_START}) as w:
        yield w


def _engine_of(world):
    from sigmasight_pipeline.warehouse.io import get_engine

    return get_engine(world.database_url)


def _wait(world, answer: dict, key: str = "hedge", timeout: float = 240) -> dict:
    url = answer["request"]["status_url"].removeprefix("/api/v1")
    deadline = time.monotonic() + timeout
    while True:
        state = world.get(url, key=key).json()
        if state["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return state
        time.sleep(1)


def test_the_ledger_and_the_tags_are_the_commands_tables(world):
    from sigmasight_pipeline.warehouse.book import ledger_tables, tag_tables

    entries, lots = ledger_tables(_engine_of(world), HEDGE)
    body = world.get(f"/portfolios/{HEDGE}/trades", limit=500).json()
    assert body["total"] == len(entries) and len(body["items"]) == len(entries)
    assert [x["symbol"] for x in body["items"]] == list(entries["symbol"])
    assert [x["quantity"] for x in body["items"]] == pytest.approx(list(entries["quantity"].astype(float)))
    assert len(body["lots"]) == len(lots)
    first = world.get(f"/portfolios/{HEDGE}/trades", limit=5).json()
    assert len(first["items"]) == 5 and first["next_cursor"]
    current, history = tag_tables(_engine_of(world), HEDGE)
    tags = world.get(f"/portfolios/{HEDGE}/tags").json()
    assert [p["position"] for p in tags["positions"]] == list(current["position"])
    assert [", ".join(p["tags"]) or "-" for p in tags["positions"]] == list(current["tags"])
    assert len(tags["changes"]) == len(history)
    assert world.get(f"/portfolios/{HEDGE}/trades", key="hnw").status_code == 404
    assert world.get(f"/portfolios/{HEDGE}/tags", key="stranger").status_code == 404


def test_a_bad_trades_file_lists_every_row_error_and_stores_nothing(world):
    before = world.row_counts()
    r = world.post(f"/portfolios/{HEDGE}/trades", files={"file": ("bad.trades.csv", BAD_TRADES, "text/csv")})
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert "file.row2.quantity" in fields and any(f.startswith("file.row3") for f in fields)
    assert world.row_counts() == before


def test_a_bad_upload_lists_every_row_error_and_imports_nothing(world):
    before = world.row_counts()
    r = world.post("/uploads", files={"file": ("bad.csv", BAD_UPLOAD, "text/csv")}, data={"name": "Bad Book"})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert len(errors) >= 3 and errors[0]["field"].startswith("file.row2")
    assert world.row_counts() == before
    other = world.post("/uploads", files={"file": ("x.csv", UPLOAD, "text/csv")},
                       data={"name": "Someone Else's", "owner": "x@example.com"})
    assert other.status_code == 403 and other.json()["field"] == "owner"
    taken = world.post("/uploads", files={"file": ("x.csv", UPLOAD, "text/csv")},
                       data={"name": "Mine", "portfolio_id": HNW})  # another owner's id: refused, not described
    assert taken.status_code == 409 and "demo_hnw" not in taken.text
    assert world.row_counts() == before


def test_imported_trades_are_stored_then_positions_and_the_dates_recomputed(writable):
    r = writable.post(f"/portfolios/{HEDGE}/trades", files={"file": ("api.trades.csv", GOOD_TRADES, "text/csv")})
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["request"]["state"] in ("queued", "running") and answer["request"]["mode"] == "in_process"
    t = schema.trades
    rows = stored(writable, sa.select(t).where(t.c.portfolio_id == HEDGE))
    assert [x["trade_id"] for x in rows] == ["api-t1"]  # stored before the answer
    state = _wait(writable, answer)
    assert state["state"] == "succeeded", state
    assert state["runs"] and all(run["status"] == "SUCCESS" for run in state["runs"])
    v = schema.position_valuations
    aapl = stored(writable, sa.select(v.c.date, v.c.quantity).select_from(
        v.join(schema.positions, (schema.positions.c.portfolio_id == v.c.portfolio_id)
               & (schema.positions.c.position_id == v.c.position_id)))
        .where((v.c.portfolio_id == HEDGE) & (schema.positions.c.symbol == "AAPL")).order_by(v.c.date))
    p = schema.positions
    held = stored(writable, sa.select(p.c.quantity).where((p.c.portfolio_id == HEDGE) & (p.c.symbol == "AAPL")))[0]
    ledger = writable.get(f"/portfolios/{HEDGE}/trades", limit=500).json()["items"]
    uploaded = sum(x["quantity"] for x in ledger if x["symbol"] == "AAPL" and x["source"].startswith("upload"))
    assert held["quantity"] == pytest.approx(uploaded + 10)  # the book now holds the trade
    # both recomputed dates (from the trade date on) value the new quantity
    assert [f"{x['date']:%Y-%m-%d}" for x in aapl] == [DEMO_START, DEMO_END]
    assert [x["quantity"] for x in aapl] == pytest.approx([uploaded + 10] * 2)
    again = writable.post(f"/portfolios/{HEDGE}/trades", files={"file": ("api.trades.csv", GOOD_TRADES, "text/csv")})
    assert again.status_code == 422 and "already imported" in again.text  # a rerun never duplicates


def test_a_tag_change_is_stored_then_recomputed_from_its_date(writable):
    r = writable.post(f"/portfolios/{HEDGE}/tags", json={"action": "add", "tag": "api-core", "ticker": "NVDA",
                                                         "effective_date": DEMO_END})
    assert r.status_code == 202, r.text
    assert "added tag 'api-core'" in r.json()["message"]
    state = _wait(writable, r.json())
    assert state["state"] == "succeeded", state
    tags = writable.get(f"/portfolios/{HEDGE}/tags").json()
    nvda = next(p for p in tags["positions"] if p["symbol"] == "NVDA")
    assert "api-core" in nvda["tags"]
    assert tags["changes"][-1]["tag"] == "api-core"
    g = schema.group_exposures
    groups = stored(writable, sa.select(g.c.date).where((g.c.portfolio_id == HEDGE) & (g.c.group_name == "api-core")))
    assert {f"{x['date']:%Y-%m-%d}" for x in groups} == {DEMO_END}  # from its date on, not before
    bad = writable.post(f"/portfolios/{HEDGE}/tags", json={"action": "add", "tag": "a,b", "position_id": 1})
    assert bad.status_code == 422 and bad.json()["field"] == "tag"
    unknown = writable.post(f"/portfolios/{HEDGE}/tags", json={"action": "remove", "tag": "x", "position_id": 999})
    assert unknown.status_code == 422 and unknown.json()["field"] == "position_id"


def test_an_upload_becomes_a_portfolio_of_the_keys_owner_with_its_history(writable):
    r = writable.post("/uploads", key="stranger", files={"file": ("starter.csv", UPLOAD, "text/csv")},
                      data={"name": "Starter Book"})
    assert r.status_code == 202, r.text
    pid = r.json()["portfolio_id"]
    assert pid == "starter-book"
    state = _wait(writable, r.json(), key="stranger")
    assert state["state"] == "succeeded", state
    mine = writable.get("/portfolios", key="stranger").json()
    assert [p["portfolio_id"] for p in mine["items"]] == [pid] and mine["items"][0]["owner"] == "nobody@example.com"
    summary = writable.get(f"/portfolios/{pid}", key="stranger").json()
    assert summary["as_of"] == DEMO_END and summary["counts"]["position_count"] == 2
    assert writable.get(f"/portfolios/{pid}", key="hedge").status_code == 404
    assert writable.get(f"/requests/{r.json()['request']['request_id']}", key="hedge").status_code == 404
