"""The API's report and operations routes against a real server (``sigmasight serve``) on the short demo.

Reads on SQLite and PostgreSQL: the report list is the stored ``portfolio_reports`` rows with the files of each
folder; a download is the file's bytes; path tricks are 4xx and never answer a file outside the reports root;
the run history is the Dagster instance's. Writes on their own SQLite world (and one PostgreSQL compute): a
compute request and a report request reach ``succeeded`` and their runs are the instance's.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

import dagster as dg
import pytest
import sqlalchemy as sa

from sigmasight_pipeline.run_tags import BACKFILL_TAG
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline_tests.api_support import PREFIX, served_demo, stored
from sigmasight_pipeline_tests.user_state import DEMO_END, DEMO_START

HEDGE = "demo-hedge-fund"
HNW = "demo-hnw"
SECRET = "TOP-SECRET-CONTENT-outside-the-reports-root"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, request.param) as w:
        yield w


@pytest.fixture(scope="module")
def writer(request, tmp_path_factory):
    """A world of its own for the tests that write (SQLite)."""
    with served_demo(request, tmp_path_factory, "sqlite") as w:
        yield w


@pytest.fixture(scope="module")
def pg_writer(request, tmp_path_factory):
    with served_demo(request, tmp_path_factory, "postgresql") as w:
        yield w


def instance_of(world):
    """The world's Dagster instance, opened here as the CLI opens it (close it after use)."""
    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(world.folder / "dagster")}):
        return dg.DagsterInstance.get()


def raw_get(world, path: str, key: str = "hedge") -> tuple[int, bytes]:
    """GET ``/api/v1<path>`` sent byte for byte (no client-side normalisation of ``..`` or escapes)."""
    url = urlparse(world.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.putrequest("GET", PREFIX + path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {getattr(world.keys, key)}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def report_rows(world, portfolio_id: str) -> list[dict]:
    t = schema.portfolio_reports
    return stored(world, sa.select(t).where(t.c.portfolio_id == portfolio_id).order_by(t.c.date.desc()))


def folder_of(world, row) -> Path:
    return world.folder / "reports" / Path(row["report_dir"]).name


def wait_for(world, request_id: str, key: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = world.get(f"/requests/{request_id}", key=key)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["state"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, f"request still {body['state']} after {timeout} s:\n{world.server_log()}"
        time.sleep(1.0)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _day(value) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


# --- reports: reads -------------------------------------------------------------------------------------------------

def test_the_report_list_is_the_stored_rows_with_their_files(world):
    rows = report_rows(world, HEDGE)
    body = world.get(f"/portfolios/{HEDGE}/reports").json()
    assert body["total"] == len(rows) == 2 and body["next_cursor"] is None
    assert [i["as_of"] for i in body["items"]] == [_day(r["date"]) for r in rows] == [DEMO_END, DEMO_START]
    for item, row in zip(body["items"], rows):
        assert item["folder"] == Path(row["report_dir"]).name
        assert item["engines_available"] == row["engines_available"]
        assert item["engines_missing"] == row["engines_missing"]
        assert _utc(dt.datetime.fromisoformat(item["generated_at"])) == _utc(row["generated_at"])
        on_disk = sorted(p.name for p in folder_of(world, row).iterdir() if p.suffix in (".md", ".json", ".csv", ".png"))
        assert sorted(f["name"] for f in item["files"]) == on_disk
        assert {"portfolio_report.md", "portfolio_report.json", "portfolio_report.csv"} <= set(on_disk)
        assert any(name.endswith(".png") for name in on_disk)
        for f in item["files"]:
            assert f["size_bytes"] == (folder_of(world, row) / f["name"]).stat().st_size
    first = world.get(f"/portfolios/{HEDGE}/reports", limit=1).json()
    assert [i["as_of"] for i in first["items"]] == [DEMO_END] and first["total"] == 2 and first["next_cursor"]
    rest = world.get(f"/portfolios/{HEDGE}/reports", limit=1, cursor=first["next_cursor"]).json()
    assert [i["as_of"] for i in rest["items"]] == [DEMO_START] and rest["next_cursor"] is None


def test_downloading_each_format_returns_the_files_bytes(world):
    row = report_rows(world, HEDGE)[0]
    item = world.get(f"/portfolios/{HEDGE}/reports").json()["items"][0]
    types = {"md": "text/markdown", "json": "application/json", "csv": "text/csv", "png": "image/png"}
    seen = set()
    for f in item["files"]:
        r = world.request("GET", f["url"].removeprefix(PREFIX))
        assert r.status_code == 200, r.text
        assert r.content == (folder_of(world, row) / f["name"]).read_bytes()
        assert r.headers["content-type"].split(";")[0] == types[f["format"]]
        seen.add(f["format"])
    assert seen == set(types)
    missing = world.get(f"/portfolios/{HEDGE}/reports/{DEMO_END}/nothing_here.md")
    assert missing.status_code == 404 and missing.json()["field"] == "filename"
    no_day = world.get(f"/portfolios/{HEDGE}/reports/2025-06-02/portfolio_report.md")
    assert no_day.status_code == 404 and no_day.json()["field"] == "date" and DEMO_END in no_day.json()["message"]
    bad_day = world.get(f"/portfolios/{HEDGE}/reports/yesterday/portfolio_report.md")
    assert bad_day.status_code == 422 and bad_day.json()["field"] == "date"
    wrong_kind = world.get(f"/portfolios/{HEDGE}/reports/{DEMO_END}/portfolio_report.txt")
    assert wrong_kind.status_code == 422 and wrong_kind.json()["field"] == "filename"


def test_path_tricks_are_refused_and_never_serve_outside_content(world):
    row = report_rows(world, HEDGE)[0]
    folder = folder_of(world, row)
    secret = world.folder / "secret.md"
    secret.write_text(SECRET)
    planted = folder / "planted.md"
    planted.symlink_to(secret)
    planted_dir = folder / "escape_dir.png"
    planted_dir.symlink_to(world.folder)
    try:
        base = f"/portfolios/{HEDGE}/reports/{DEMO_END}"
        tricks = [
            f"{base}/../../../secret.md",
            f"{base}/..%2F..%2F..%2Fsecret.md",
            f"{base}/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.md",
            f"{base}/%2e%2e/%2e%2e/%2e%2e/secret.md",
            f"{base}/{secret}",
            f"{base}/{str(secret).replace('/', '%2F')}",
            f"{base}/..%5C..%5C..%5Csecret.md",
            f"{base}/portfolio_report.md%00.png",
            f"{base}/secret.md%00",
            f"{base}/planted.md",
            f"{base}/escape_dir.png",
            f"{base}/..",
            f"/portfolios/{HEDGE}/reports/..%2F..%2F/secret.md",
        ]
        for path in tricks:
            status, content = raw_get(world, path)
            assert 400 <= status < 500, (path, status, content[:200])
            assert SECRET.encode() not in content
        nul = world.get(f"/portfolios/{HEDGE}/reports/{DEMO_END}/portfolio_report.md\x00.png")
        assert nul.status_code == 422 and nul.json()["field"] == "filename"
        listed = world.get(f"/portfolios/{HEDGE}/reports").json()["items"][0]["files"]
        assert "planted.md" not in {f["name"] for f in listed} and "escape_dir.png" not in {f["name"] for f in listed}
        planted_answer = world.get(f"{base}/planted.md")
        assert planted_answer.status_code == 404 and planted_answer.json()["field"] == "filename"
    finally:
        planted.unlink()
        planted_dir.unlink()
        secret.unlink()


def test_another_owners_reports_read_as_unknown(world):
    for path in (f"/portfolios/{HNW}/reports", f"/portfolios/{HNW}/reports/{DEMO_END}/portfolio_report.md"):
        theirs, unknown = world.get(path), world.get(path.replace(HNW, "no-such-book"))
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["message"].replace(HNW, "X") == unknown.json()["message"].replace("no-such-book", "X")
        assert world.get(path, key="hnw").status_code == 200
        assert world.get(path, key="operator").status_code == 200
    post = world.post(f"/portfolios/{HNW}/reports", json={"as_of": DEMO_END})
    assert post.status_code == 404 and post.json()["field"] == "portfolio_id"


# --- operations: reads ----------------------------------------------------------------------------------------------

OPERATOR_GETS = ["/operations/runs", "/operations/automation", "/operations/requests"]


def test_operations_need_an_operator_key(world):
    for path in OPERATOR_GETS:
        assert world.get(path).status_code == 403, path
        assert world.get(path, key="stranger").json()["field"] == "authorization"
        assert world.get(path, key=None).status_code == 401
        assert world.get(path, key="operator").status_code == 200, world.get(path, key="operator").text
    compute = world.post("/operations/compute", json={"portfolio_id": HEDGE, "from": DEMO_END, "to": DEMO_END})
    assert compute.status_code == 403


def test_the_run_history_is_the_instances(world):
    with instance_of(world) as instance:
        records = instance.get_run_records()
        expected = [r.dagster_run.run_id for r in records]
        hnw_runs = {r.dagster_run.run_id for r in records if "|demo-hnw" in r.dagster_run.tags.get(
            "dagster/asset_partition_range_start", "")}
    body = world.get("/operations/runs", key="operator").json()
    assert [r["run_id"] for r in body["items"]] == expected and body["total"] == len(expected) >= 5
    assert all(r["status"] == "SUCCESS" for r in body["items"])
    covers = {r["covers"] for r in body["items"]}
    assert f"{HNW} {DEMO_START}..{DEMO_END}" in covers and "SQL models" in covers
    first = world.get("/operations/runs", key="operator", limit=2).json()
    rest = world.get("/operations/runs", key="operator", limit=100, cursor=first["next_cursor"]).json()
    assert [r["run_id"] for r in first["items"] + rest["items"]] == expected
    only = world.get("/operations/runs", key="operator", portfolio_id=HNW).json()
    assert {r["run_id"] for r in only["items"]} == hnw_runs and len(hnw_runs) == 1
    assert only["items"][0]["range_start"] == f"{DEMO_START}|{HNW}" and only["items"][0]["range_end"] == f"{DEMO_END}|{HNW}"
    assert world.get("/operations/runs", key="operator", status="success").json()["total"] == len(expected)
    assert world.get("/operations/runs", key="operator", status="FAILURE").json()["total"] == 0
    bad = world.get("/operations/runs", key="operator", status="exploded")
    assert bad.status_code == 422 and bad.json()["field"] == "status"
    assert world.get("/operations/runs", key="operator", portfolio_id="no-such-book").status_code == 404


def test_one_run_with_its_check_results(world):
    run_id = world.get("/operations/runs", key="operator", portfolio_id=HNW).json()["items"][0]["run_id"]
    body = world.get(f"/operations/runs/{run_id}", key="operator").json()
    assert body["run_id"] == run_id and body["status"] == "SUCCESS" and body["failures"] == []
    assert body["start_time"] and body["end_time"] and body["start_time"] <= body["end_time"]
    names = {(c["asset_key"], c["check_name"]) for c in body["asset_checks"]}
    assert ("portfolio_reports", "prepublish_validation") in names
    assert all(c["passed"] for c in body["asset_checks"] if c["severity"] == "ERROR")
    unknown = world.get("/operations/runs/00000000-0000-0000-0000-000000000000", key="operator")
    assert unknown.status_code == 404 and unknown.json()["field"] == "run_id"
    assert world.get(f"/operations/runs/{run_id}").status_code == 403


def test_automation_state_and_latest_dates(world):
    body = world.get("/operations/automation", key="operator").json()
    sensors = {i["name"]: i for i in body["instigators"]}
    assert {"sigmasight_automation", "portfolio_inbox_sensor"} <= set(sensors)
    assert sensors["sigmasight_automation"]["kind"] == "sensor" and sensors["sigmasight_automation"]["defined"]
    assert sensors["sigmasight_automation"]["status"] in ("RUNNING", "STOPPED")
    latest = {p["portfolio_id"]: p["latest_computed_date"] for p in body["portfolios"]}
    assert latest == {HEDGE: DEMO_END, HNW: DEMO_END, "demo-individual": DEMO_END}
    engines = {e["engine"]: e for e in body["portfolios"][0]["engines"]}
    assert engines["portfolio_reports"]["latest"] == DEMO_END and engines["portfolio_snapshots"]["gaps"] == 0


def test_an_unknown_request_is_a_404(world):
    r = world.get("/requests/abcdefgh")
    assert r.status_code == 404 and r.json()["field"] == "request_id"
    assert world.get("/requests/abcdefgh", key="operator").status_code == 404


# --- writes ---------------------------------------------------------------------------------------------------------

def test_compute_validates_its_body(writer):
    def post(**body):
        return writer.post("/operations/compute", key="operator", json=body)

    unknown = post(portfolio_id="no-such-book", **{"from": DEMO_END, "to": DEMO_END})
    assert unknown.status_code == 404 and unknown.json()["field"] == "portfolio_id"
    reversed_range = post(portfolio_id=HNW, **{"from": DEMO_END, "to": DEMO_START})
    assert reversed_range.status_code == 422 and reversed_range.json()["field"] == "from"
    too_early = post(portfolio_id=HNW, **{"from": "2024-01-02", "to": DEMO_END})
    assert too_early.status_code == 422 and too_early.json()["field"] == "from"
    too_late = post(portfolio_id=HNW, **{"from": DEMO_END, "to": "2025-07-03"})
    assert too_late.status_code == 422 and too_late.json()["field"] == "to"
    weekend = post(portfolio_id=HNW, **{"from": "2025-06-28", "to": "2025-06-29"})
    assert weekend.status_code == 422 and weekend.json()["field"] == "from"
    extra = post(portfolio_id=HNW, workers=8, **{"from": DEMO_END, "to": DEMO_END})
    assert extra.status_code == 422 and extra.json()["field"] == "workers"
    bad_date = post(portfolio_id=HNW, **{"from": "2025-06-31", "to": DEMO_END})
    assert bad_date.status_code == 422 and bad_date.json()["field"] == "from"


def _compute_and_wait(world) -> dict:
    r = world.post("/operations/compute", key="operator", json={"portfolio_id": HNW, "from": DEMO_END, "to": DEMO_END})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["mode"] == "in_process" and accepted["state"] in ("queued", "running")
    assert accepted["status_url"] == f"{PREFIX}/requests/{accepted['request_id']}"
    done = wait_for(world, accepted["request_id"], "operator")
    assert done["state"] == "succeeded", (done, world.server_log())
    assert len(done["runs"]) == 3 and all(r["status"] == "SUCCESS" for r in done["runs"])  # market, hnw, SQL models
    assert {r["run_id"] for r in done["runs"]} == set(done["result"]["runs"])
    assert all(r["backfill_id"] == accepted["request_id"] for r in done["runs"])
    assert f"{HNW} {DEMO_END}..{DEMO_END}" in {r["covers"] for r in done["runs"]}
    with instance_of(world) as instance:
        recorded = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: accepted["request_id"]}))
        assert {r.run_id for r in recorded} == {r["run_id"] for r in done["runs"]}
    history = {r["run_id"] for r in world.get("/operations/runs", key="operator").json()["items"]}
    assert {r["run_id"] for r in done["runs"]} <= history
    assert world.get(f"/requests/{accepted['request_id']}", key="hnw").status_code == 404  # not the key that asked
    return accepted


def test_compute_runs_the_window_and_lists_its_runs(writer):
    accepted = _compute_and_wait(writer)
    listed = writer.get("/operations/requests", key="operator").json()
    assert accepted["request_id"] in {r["request_id"] for r in listed["items"]}


def test_compute_on_postgresql(pg_writer):
    _compute_and_wait(pg_writer)


def test_a_report_request_writes_the_chosen_files(writer):
    row = report_rows(writer, HEDGE)[0]
    folder = folder_of(writer, row)
    before = {name: (folder / name).stat().st_mtime_ns for name in ("portfolio_report.md", "portfolio_report.json",
                                                                    "portfolio_report.csv")}
    bad = writer.post(f"/portfolios/{HEDGE}/reports", json={"as_of": DEMO_END, "formats": ["pdf"]})
    assert bad.status_code == 422 and bad.json()["field"] == "formats"
    no_data = writer.post(f"/portfolios/{HEDGE}/reports", json={"as_of": "2025-06-02"})
    assert no_data.status_code == 404 and no_data.json()["field"] == "as_of" and DEMO_END in no_data.json()["message"]
    extra = writer.post(f"/portfolios/{HEDGE}/reports", json={"as_of": DEMO_END, "folder": "/tmp"})
    assert extra.status_code == 422 and extra.json()["field"] == "folder"
    time.sleep(0.05)
    r = writer.post(f"/portfolios/{HEDGE}/reports", json={"as_of": DEMO_END, "formats": ["md", "json"]})
    assert r.status_code == 202, r.text
    accepted = r.json()
    done = wait_for(writer, accepted["request_id"], "hedge")
    assert done["state"] == "succeeded", (done, writer.server_log())
    assert len(done["runs"]) == 1 and done["runs"][0]["status"] == "SUCCESS"
    assert done["runs"][0]["range_start"] == f"{DEMO_END}|{HEDGE}" and done["runs"][0]["requested_by"]
    after = {name: (folder / name).stat().st_mtime_ns for name in before}
    assert after["portfolio_report.md"] != before["portfolio_report.md"]
    assert after["portfolio_report.json"] != before["portfolio_report.json"]
    assert after["portfolio_report.csv"] == before["portfolio_report.csv"]  # not asked for
    assert done["result"]["folder"] == folder.name
    new_row = report_rows(writer, HEDGE)[0]
    assert Path(new_row["report_dir"]).resolve() == folder.resolve() and new_row["generated_at"] != row["generated_at"]
    listed = writer.get(f"/portfolios/{HEDGE}/reports").json()["items"][0]
    md = writer.request("GET", f"/portfolios/{HEDGE}/reports/{DEMO_END}/portfolio_report.md")
    assert md.content == (folder / "portfolio_report.md").read_bytes() and listed["as_of"] == DEMO_END
    assert writer.get(f"/requests/{accepted['request_id']}", key="hnw").status_code == 404
    assert writer.get(f"/requests/{accepted['request_id']}", key="operator").status_code == 200
    with instance_of(writer) as instance:
        assert instance.get_run_by_id(done["runs"][0]["run_id"]) is not None


# --- through a Dagster webserver (its GraphQL answered by a stand-in that records what it was sent) ------------------

class _FakeDagsterWebserver:
    """Answers the GraphQL documents ``webserver_client`` sends for a launch, and keeps each (query, variables)."""

    def __init__(self):
        import http.server
        import json
        import threading

        self.sent: list[tuple[str, dict]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.sent.append((body["query"], body["variables"]))
                data = json.dumps({"data": fake.answer(body["query"], body["variables"])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, query: str, variables: dict) -> dict:
        if "query AssetNodes" in query:
            return {"assetNodes": [
                {"assetKey": k, "jobNames": ["__ASSET_JOB"], "repository": {"name": "__repository__", "location": {"name": "loc"}},
                 "assetChecksOrError": {"__typename": "AssetChecks", "checks": []}} for k in variables["assetKeys"]]}
        if "query PartitionTags" in query:
            return {"pipelineOrError": {"__typename": "Pipeline", "partition": {
                "runConfigOrError": {"__typename": "PartitionRunConfig", "yaml": "{}"},
                "tagsOrError": {"__typename": "PartitionTags", "results": [
                    {"key": "dagster/partition", "value": variables["partitionName"]}]}}}}
        if "mutation LaunchPartitionBackfill" in query:
            return {"launchPartitionBackfill": {"__typename": "LaunchBackfillSuccess", "backfillId": "fakebkfl"}}
        if "mutation LaunchRun" in query:
            return {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": "fake-run-0001"}}}
        raise AssertionError(f"unexpected GraphQL document: {query[:200]}")

    def launched(self, mutation: str) -> list[dict]:
        return [v for q, v in self.sent if f"mutation {mutation}" in q]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def dagster_webserver():
    fake = _FakeDagsterWebserver()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def webserver_world(request, tmp_path_factory, dagster_webserver):
    with served_demo(request, tmp_path_factory, "sqlite", extra={"SIGMASIGHT_DAGSTER_URL": dagster_webserver.url}) as w:
        yield w


def test_compute_through_a_webserver_sends_the_clis_backfill(webserver_world, dagster_webserver, monkeypatch):
    from types import SimpleNamespace

    from sigmasight_pipeline import cli

    runs_before = webserver_world.get("/operations/runs", key="operator").json()["total"]
    r = webserver_world.post("/operations/compute", key="operator", json={"portfolio_id": HNW, "from": DEMO_END, "to": DEMO_END})
    assert r.status_code == 202, (r.text, webserver_world.server_log())
    assert r.json()["request_id"] == "fakebkfl" and r.json()["mode"] == "webserver" and r.json()["state"] == "launched"
    (sent,) = dagster_webserver.launched("LaunchPartitionBackfill")
    params = sent["backfillParams"]
    tags = {t["key"]: t["value"] for t in params["tags"]}
    assert tags["sigmasight/requested_by"] == webserver_world.keys.operator.split("_")[1]
    by_asset = {"/".join(p["assetKey"]["path"]): p["partitions"] for p in params["partitionsByAssets"]}
    assert by_asset["portfolio_reports"] == {"ranges": [{"start": f"{DEMO_END}|{HNW}", "end": f"{DEMO_END}|{HNW}"}]}
    # the same ranges as `sigmasight backfill --portfolio demo-hnw --from D --to D --submit URL`
    monkeypatch.setenv("SIGMASIGHT_PARTITION_END", DEMO_END)
    args = SimpleNamespace(start=DEMO_END, end=DEMO_END, no_history=False, no_sql=False, url=dagster_webserver.url)
    assert cli._submit_backfill(args, [HNW]) == 0
    cli_params = dagster_webserver.launched("LaunchPartitionBackfill")[-1]["backfillParams"]
    assert params["partitionsByAssets"] == cli_params["partitionsByAssets"]
    state = webserver_world.get("/requests/fakebkfl", key="operator").json()
    assert state["state"] == "launched" and state["runs"] == [] and state["mode"] == "webserver"
    assert webserver_world.get("/requests/fakebkfl", key="hedge").status_code == 404
    assert webserver_world.get("/operations/runs", key="operator").json()["total"] == runs_before  # nothing ran here


def test_a_report_through_a_webserver_launches_one_run(webserver_world, dagster_webserver):
    r = webserver_world.post(f"/portfolios/{HEDGE}/reports", json={"as_of": DEMO_END, "formats": ["md"]})
    assert r.status_code == 202, (r.text, webserver_world.server_log())
    assert r.json()["request_id"] == "fake-run-0001" and r.json()["mode"] == "webserver"
    (sent,) = dagster_webserver.launched("LaunchRun")
    params = sent["executionParams"]
    # the formats go as the asset's run config, as the Launchpad sends it (over the partition's own config)
    assert params["runConfigData"] == {"ops": {"portfolio_reports": {"config": {"formats": ["md"]}}}}
    assert params["selector"]["assetSelection"] == [{"path": ["portfolio_reports"]}]
    tags = {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]}
    assert tags["dagster/partition"] == f"{DEMO_END}|{HEDGE}" and "sigmasight/requested_by" in tags
    assert webserver_world.get("/requests/fake-run-0001", key="hedge").json()["state"] == "launched"


def test_a_launched_runs_config_is_merged_over_the_partitions_own():
    from sigmasight_pipeline.webserver_client import _merged

    partition = {"ops": {"portfolio_reports": {"config": {"formats": ["md", "json", "csv"]}}, "other": {"config": {"x": 1}}},
                 "execution": {"config": {"in_process": {}}}}
    ours = {"ops": {"portfolio_reports": {"config": {"formats": ["json"]}}}}
    assert _merged(partition, ours) == {
        "ops": {"portfolio_reports": {"config": {"formats": ["json"]}}, "other": {"config": {"x": 1}}},
        "execution": {"config": {"in_process": {}}}}
    assert partition["ops"]["portfolio_reports"]["config"]["formats"] == ["md", "json", "csv"]  # not changed in place
