"""Hostile input (api.md, "Who may see what"): bad dates, bad limits and cursors, unknown fields, oversize uploads,
path tricks in a download name, SQL in a filter. Every case is a 4xx that names what is wrong, never a 500, and
nothing is written: the warehouse's rows, the reports folder and the Dagster runs are the same afterwards."""

from __future__ import annotations

import os

import pytest

from sigmasight_pipeline_tests.api_support import served_demo

HEDGE = "/portfolios/demo-hedge-fund"
DAY = "2025-06-30"
TRADES = "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-10,157.99\n"
TWENTY_MB = b"ticker,quantity,entry_price,entry_date\n" + b"AAPL,1,100,2024-01-05\n" * (20 * 1024 * 1024 // 22)

#: (id, method, path, keyword arguments of the request, the field the error must name or None)
CASES = [
    # dates
    ("as_of not a date", "GET", HEDGE, {"params": {"as_of": "yesterday"}}, "as_of"),
    ("as_of month 13", "GET", HEDGE, {"params": {"as_of": "2025-13-01"}}, "as_of"),
    ("as_of 31 June", "GET", HEDGE, {"params": {"as_of": "2025-06-31"}}, "as_of"),
    ("as_of with SQL", "GET", HEDGE, {"params": {"as_of": "2025-06-30' OR '1'='1"}}, "as_of"),
    ("from after to", "GET", f"{HEDGE}/exposures", {"params": {"from": DAY, "to": "2025-06-27"}}, "from"),
    ("attribution bad from", "GET", f"{HEDGE}/attribution", {"params": {"from": "2025-02-30"}}, "from"),
    # limits and cursors
    ("negative limit", "GET", "/portfolios", {"params": {"limit": -1}}, "limit"),
    ("zero limit", "GET", f"{HEDGE}/positions", {"params": {"limit": 0}}, "limit"),
    ("limit over 500", "GET", f"{HEDGE}/positions", {"params": {"limit": 501}}, "limit"),
    ("limit not a number", "GET", "/portfolios", {"params": {"limit": "ten"}}, "limit"),
    ("forged cursor", "GET", "/portfolios", {"params": {"cursor": "b2Zmc2V0PTE"}}, "cursor"),
    ("garbage cursor", "GET", f"{HEDGE}/positions", {"params": {"cursor": "!!!"}}, "cursor"),
    # unknown fields
    ("unknown query parameter", "GET", HEDGE, {"params": {"as_of": DAY, "portfolio": "demo-hnw"}}, "portfolio"),
    ("unknown sort", "GET", f"{HEDGE}/positions", {"params": {"sort": "password"}}, "sort"),
    ("unknown grouping", "GET", f"{HEDGE}/positions/groups", {"params": {"by": "owner"}}, "by"),
    ("whatif unknown body field", "POST", f"{HEDGE}/whatif", {"json": {"trades_csv": TRADES, "execute": True}}, "execute"),
    ("whatif body not JSON", "POST", f"{HEDGE}/whatif", {"data": "trades=1", "headers": {"Content-Type": "application/json"}}, None),
    ("whatif bad trade row", "POST", f"{HEDGE}/whatif", {"json": {"trades_csv": "trade_date,ticker,quantity,price\n2025-06-30,NVDA,lots,157.99\n"}}, None),
    ("stress unknown body field", "POST", f"{HEDGE}/stress",
     {"json": {"scenarios": [{"id": "x", "name": "X", "shocks": {"Market": -0.1}}], "store": True}}, "store"),
    ("stress no scenarios", "POST", f"{HEDGE}/stress", {"json": {"scenarios": []}}, "scenarios"),
    ("stress unknown scenario field", "POST", f"{HEDGE}/stress",
     {"json": {"scenarios": [{"id": "x", "name": "X", "shock": {"Market": -0.1}}]}}, "scenarios.0.shock"),
    ("tags with both ticker and position", "POST", f"{HEDGE}/tags",
     {"json": {"action": "add", "tag": "x", "position_id": 1, "ticker": "NVDA"}}, "position_id"),
    ("tags effective date not a date", "POST", f"{HEDGE}/tags",
     {"json": {"action": "add", "tag": "x", "position_id": 1, "effective_date": "soon"}}, "effective_date"),
    ("trades without a file", "POST", f"{HEDGE}/trades", {"data": {"x": "1"}}, "file"),
    ("empty trades file", "POST", f"{HEDGE}/trades", {"files": {"file": ("t.csv", b"", "text/csv")}}, "file"),
    ("upload of another owner", "POST", "/uploads",
     {"files": {"file": ("x.csv", b"ticker,quantity,entry_price,entry_date\n", "text/csv")},
      "data": {"name": "X", "owner": "someone@example.com"}}, "owner"),
    ("report request with a bad format", "POST", f"{HEDGE}/reports", {"json": {"as_of": DAY, "formats": ["pdf"]}}, None),
    ("report request unknown field", "POST", f"{HEDGE}/reports", {"json": {"as_of": DAY, "path": "/tmp"}}, "path"),
    ("request id of nobody", "GET", "/requests/abcdefgh", {}, None),
    ("tags unknown action", "POST", f"{HEDGE}/tags", {"json": {"action": "rename", "tag": "x", "position_id": 1}}, "action"),
    ("position id negative", "GET", f"{HEDGE}/positions/-1", {}, "position_id"),
    ("position id not a number", "GET", f"{HEDGE}/positions/abc", {}, "position_id"),
    # oversize files
    ("20 MB upload", "POST", "/uploads", {"files": {"file": ("big.csv", TWENTY_MB, "text/csv")}, "data": {"name": "Big Book"}}, "file"),
    ("20 MB trades file", "POST", f"{HEDGE}/trades", {"files": {"file": ("big.trades.csv", TWENTY_MB, "text/csv")}}, "file"),
    ("upload without a file", "POST", "/uploads", {"data": {"name": "No File"}}, "file"),
    # path tricks in a download name
    ("dot-dot in a report name", "GET", f"{HEDGE}/reports/{DAY}/..%2F..%2Fhome%2Fwarehouse.db", {}, None),
    ("encoded dot-dot", "GET", f"{HEDGE}/reports/{DAY}/%2e%2e%2f%2e%2e%2fdagster%2fdagster.yaml", {}, None),
    ("absolute path name", "GET", f"{HEDGE}/reports/{DAY}/%2Fetc%2Fpasswd", {}, None),
    ("backslash name", "GET", f"{HEDGE}/reports/{DAY}/..%5C..%5Cwarehouse.db", {}, None),
    ("NUL in a name", "GET", f"{HEDGE}/reports/{DAY}/portfolio_report.md%00.png", {}, None),
    ("report date not a date", "GET", f"{HEDGE}/reports/..%2F..%2F/portfolio_report.md", {}, None),
    # SQL in filters and ids
    ("SQL in a symbol filter", "GET", f"{HEDGE}/positions", {"params": {"symbol": "NVDA' OR '1'='1"}}, "symbol"),
    ("SQL in a tag filter", "GET", f"{HEDGE}/positions", {"params": {"tag": "x'; DROP TABLE positions; --"}}, None),
    ("SQL in a portfolio id", "GET", "/portfolios/demo-hedge-fund' OR '1'='1", {}, None),
    ("very long portfolio id", "GET", "/portfolios/" + "a" * 5000, {}, None),
    # operations need an operator key
    ("compute with a normal key", "POST", "/operations/compute", {"json": {"portfolio_id": "demo-hedge-fund", "from": DAY, "to": DAY}}, "authorization"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, request.param) as w:
        yield w


def _files(root) -> dict[str, float]:
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime for d, _, fs in os.walk(root) for f in fs}


def _run_count(world) -> int:
    from sigmasight_pipeline_tests.user_state import run_count

    return run_count(world.folder)


def test_every_hostile_request_is_a_4xx_naming_the_field_and_writes_nothing(world):
    before = (world.row_counts(), _files(world.folder / "reports"), _run_count(world))
    failures = []
    for name, method, path, kwargs, field in CASES:
        response = world.request(method, path, **kwargs)
        if not 400 <= response.status_code < 500:
            failures.append(f"{name}: HTTP {response.status_code} {response.text[:300]}")
            continue
        body = response.json()
        if field is not None and body.get("field") != field:
            failures.append(f"{name}: field {body.get('field')!r}, expected {field!r}: {body.get('message')}")
        if not body.get("message"):
            failures.append(f"{name}: no message")
    assert not failures, "\n".join(failures) + "\n" + world.server_log()
    assert (world.row_counts(), _files(world.folder / "reports"), _run_count(world)) == before
    assert "Traceback" not in world.server_log()
