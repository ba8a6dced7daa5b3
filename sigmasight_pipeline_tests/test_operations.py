"""Operations: the daily schedule, run chaining by tag, the portfolio inbox sensor, the stale-price check,
and the whole onboarding chain executed in-process (inbox file -> positions -> market -> portfolio -> SQL)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from sigmasight_pipeline import orchestration as orch
from sigmasight_pipeline.defs.market.checks import STALE_AFTER_SESSIONS, price_staleness, stale_prices
from sigmasight_pipeline.defs.operations import requests as rq
from sigmasight_pipeline.defs.operations.schedules import daily_risk_schedule
from sigmasight_pipeline.defs.operations.sensors import chain_tick, portfolio_inbox_sensor, run_chain_sensor
from sigmasight_pipeline.defs.partitions import date_portfolio
from sigmasight_pipeline.defs.portfolios.assets import positions_frames
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.onboarding import DEMO_BOOKS, PortfolioValidationError, demo_csv_text, inbox, parse_portfolio_csv
from sigmasight_pipeline.reporting.writer import report_dir
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table, write_partition
from sigmasight_pipeline.warehouse.portfolios import get_portfolio, replace_positions, save_portfolio_source

NY = ZoneInfo("America/New_York")
DATA = Path(__file__).resolve().parents[1] / "sigmasight_pipeline" / "data" / "demo_portfolios"
BOOK_IDS = [b.portfolio_id for b in DEMO_BOOKS]  # demo-individual, demo-hnw, demo-hedge-fund


@pytest.fixture(scope="module")
def defs():
    return orch.load_definitions()


@pytest.fixture(scope="module")
def keys(defs):
    return rq.pipeline_keys(defs)


@pytest.fixture
def warehouse(sqlite_url, sqlite_engine, monkeypatch):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", sqlite_url)
    return WarehouseResource(database_url=sqlite_url)


def _seed_positions(engine, book) -> None:
    """A demo book stored with its positions, as `portfolio_positions` would leave it."""
    text = demo_csv_text(book)
    save_portfolio_source(engine, portfolio_id=book.portfolio_id, name=book.name, owner=None, csv_text=text)
    positions, tags = positions_frames(book.portfolio_id, parse_portfolio_csv(text))
    replace_positions(engine, book.portfolio_id, positions, tags)


def _at(y, m, d, hh=18, mm=30) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=NY)


def _tick(instance, when, warehouse, defs=None):
    # Contexts are closed (`with`): one built on a persistent instance opens its own instance, and leaving it
    # open leaks Dagster's current defs-state storage into later definition loads.
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"warehouse": warehouse},
        repository_def=defs.get_repository_def() if defs else None,
    ) as ctx:
        return daily_risk_schedule(ctx)


def _inbox(instance, warehouse, defs=None, *, tick=False):
    """Evaluate the inbox sensor: called directly, or with ``tick`` through ``evaluate_tick`` as the daemon
    does (run requests resolved against the repository, partition keys checked)."""
    with dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), resources={"warehouse": warehouse},
        repository_def=defs.get_repository_def() if defs else None,
    ) as ctx:
        return portfolio_inbox_sensor.evaluate_tick(ctx) if tick else portfolio_inbox_sensor(ctx)


def _chain(instance, cursor=None, defs=None, *, tick=False):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, repository_def=defs.get_repository_def() if defs else None
    ) as ctx:
        return run_chain_sensor.evaluate_tick(ctx) if tick else run_chain_sensor(ctx)


# --------------------------------------------------------------------------------------------------------
# The daily schedule


@pytest.fixture
def three_books(instance, warehouse, sqlite_engine):
    for book in DEMO_BOOKS:
        _seed_positions(sqlite_engine, book)
    instance.add_dynamic_partitions("portfolio", BOOK_IDS)
    return BOOK_IDS


def test_schedule_definition(defs):
    sched = defs.get_repository_def().get_schedule_def("daily_risk_schedule")
    assert sched.cron_schedule == "30 18 * * 1-5"
    assert sched.execution_timezone == "America/New_York"


def test_friday_evening_computes_friday_for_every_portfolio(instance, warehouse, three_books, keys, defs):
    req = _tick(instance, _at(2025, 6, 27), warehouse)  # Friday: its weekday partition only closes on Monday
    assert isinstance(req, dg.RunRequest)
    assert req.run_key == "daily-2025-06-27"
    assert set(req.asset_selection) == set(rq.MARKET_KEYS)
    assert req.tags[orch.RANGE_START_TAG] == req.tags[orch.RANGE_END_TAG] == "2025-06-27"
    then = rq.follow_up_specs(req.tags)
    assert len(then) == 1  # one run for the date over every portfolio
    spec = then[0]
    assert spec["tags"][orch.RANGE_START_TAG] == "2025-06-27|demo-individual"
    assert spec["tags"][orch.RANGE_END_TAG] == "2025-06-27|demo-hedge-fund"
    assert [dg.AssetKey.from_user_string(k) for k in spec["assets"]] == list(keys.portfolio)
    assert "portfolio_reports" in spec["assets"]
    # The range over the dynamic dimension resolves (insertion order) to exactly the three portfolios.
    covered = date_portfolio.get_partition_keys_in_range(
        dg.PartitionKeyRange(spec["tags"][orch.RANGE_START_TAG], spec["tags"][orch.RANGE_END_TAG]),
        dynamic_partitions_store=instance,
    )
    assert sorted(k.keys_by_dimension["portfolio"] for k in covered) == sorted(BOOK_IDS)
    assert {k.keys_by_dimension["date"] for k in covered} == {"2025-06-27"}
    # ... then the SQL models.
    (sql,) = spec["then"]
    assert [dg.AssetKey.from_user_string(k) for k in sql["assets"]] == list(keys.sql_models)
    # Through the framework (what the daemon does): the tick yields that one request.
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=_at(2025, 6, 27),
                                   resources={"warehouse": warehouse}, repository_def=defs.get_repository_def()) as ctx:
        data = daily_risk_schedule.evaluate_tick(ctx)
    assert [r.run_key for r in data.run_requests] == ["daily-2025-06-27"]
    assert data.run_requests[0].tags["dagster/schedule_name"] == "daily_risk_schedule"


def test_independence_day_launches_nothing(instance, warehouse, three_books):
    skip = _tick(instance, _at(2025, 7, 4), warehouse)
    assert isinstance(skip, dg.SkipReason)
    assert "2025-07-04" in skip.skip_message and "July 4th" in skip.skip_message


def test_early_close_runs_for_that_date(instance, warehouse, three_books):
    assert xcal.is_early_close("2025-07-03")
    req = _tick(instance, _at(2025, 7, 3), warehouse)
    assert isinstance(req, dg.RunRequest)
    assert req.tags[orch.RANGE_START_TAG] == req.tags[orch.RANGE_END_TAG] == "2025-07-03"
    assert rq.follow_up_specs(req.tags)[0]["tags"][orch.RANGE_START_TAG] == "2025-07-03|demo-individual"
    # The early close is at 13:00: a (manual) tick at 14:00 computes the date too; one at 12:00 does not.
    assert isinstance(_tick(instance, _at(2025, 7, 3, 14, 0), warehouse), dg.RunRequest)
    assert "before the close" in _tick(instance, _at(2025, 7, 3, 12, 0), warehouse).skip_message


def test_adhoc_closure_is_skipped(instance, warehouse, three_books):
    skip = _tick(instance, _at(2025, 1, 9), warehouse)
    assert isinstance(skip, dg.SkipReason)
    assert "Jimmy Carter" in skip.skip_message


def test_no_portfolio_means_market_only(instance, warehouse):
    req = _tick(instance, _at(2025, 6, 26), warehouse)
    assert req.tags[orch.RANGE_START_TAG] == "2025-06-26"
    assert rq.THEN_TAG not in req.tags


def test_portfolio_without_positions_is_left_out(instance, warehouse, sqlite_engine):
    # a, b, c added in that order; b has no positions: the date's run splits into the blocks [a] and [c].
    books = {b.portfolio_id: b for b in DEMO_BOOKS}
    _seed_positions(sqlite_engine, books["demo-individual"])
    _seed_positions(sqlite_engine, books["demo-hedge-fund"])
    instance.add_dynamic_partitions("portfolio", ["demo-individual", "demo-hnw", "demo-hedge-fund"])
    req = _tick(instance, _at(2025, 6, 27), warehouse)
    ranges = [(s["tags"][orch.RANGE_START_TAG], s["tags"][orch.RANGE_END_TAG]) for s in rq.follow_up_specs(req.tags)]
    assert ranges == [("2025-06-27|demo-individual", "2025-06-27|demo-individual"),
                      ("2025-06-27|demo-hedge-fund", "2025-06-27|demo-hedge-fund")]


def test_request_builders(keys):
    assert rq.contiguous_blocks(["c", "a", "b", "e"], ["a", "b", "c", "d", "e"]) == [["a", "b", "c"], ["e"]]
    with pytest.raises(ValueError, match="zz"):
        rq.contiguous_blocks(["zz"], ["a"])
    # Several dates: one run per portfolio over the date range (the dimension held fixed is the portfolio).
    reqs = rq.portfolio_requests(["p1", "p2"], "2025-06-23", "2025-06-27", keys.portfolio, order=["p1", "p2"])
    assert [(r.tags[orch.RANGE_START_TAG], r.tags[orch.RANGE_END_TAG]) for r in reqs] == [
        ("2025-06-23|p1", "2025-06-27|p1"), ("2025-06-23|p2", "2025-06-27|p2")]
    # Weekend ends are trimmed to weekday keys.
    m = rq.market_request("2025-06-28", "2025-07-06")
    assert (m.tags[orch.RANGE_START_TAG], m.tags[orch.RANGE_END_TAG]) == ("2025-06-30", "2025-07-04")
    # Specs round-trip (nested follow-ups are not double-encoded).
    chain = rq.market_request("2025-06-27", "2025-06-27", then=reqs)
    spec = rq.request_to_spec(chain)
    assert len(spec["then"]) == 2 and rq.THEN_TAG not in spec["tags"]
    again = rq.request_from_spec(json.loads(json.dumps(spec)))
    assert again.asset_selection == chain.asset_selection and dict(again.tags) == dict(chain.tags)


def test_latest_completed_session_and_backfill_window(monkeypatch):
    assert rq.latest_completed_session(_at(2025, 6, 27, 15, 59)) == pd.Timestamp("2025-06-26")
    assert rq.latest_completed_session(_at(2025, 6, 27, 16, 0)) == pd.Timestamp("2025-06-27")
    assert rq.latest_completed_session(_at(2025, 6, 29, 12, 0)) == pd.Timestamp("2025-06-27")  # Sunday
    assert rq.latest_completed_session(_at(2025, 7, 3, 13, 30)) == pd.Timestamp("2025-07-03")  # early close
    monkeypatch.delenv(rq.BACKFILL_START_ENV, raising=False)
    monkeypatch.delenv(rq.BACKFILL_END_ENV, raising=False)
    assert rq.backfill_window("2023-11-20", now=_at(2025, 7, 7, 9, 0)) == (pd.Timestamp("2025-01-02"), pd.Timestamp("2025-07-03"))
    # A later entry date: from the session after it.
    assert rq.backfill_window("2025-03-14", now=_at(2025, 7, 7, 9, 0))[0] == pd.Timestamp("2025-03-17")
    monkeypatch.setenv(rq.BACKFILL_START_ENV, "2025-06-25")
    monkeypatch.setenv(rq.BACKFILL_END_ENV, "2025-06-28")
    assert rq.backfill_window("2024-01-02") == (pd.Timestamp("2025-06-25"), pd.Timestamp("2025-06-27"))
    assert rq.backfill_window("2025-06-27") is None  # nothing after the entry yet


# --------------------------------------------------------------------------------------------------------
# Chaining by tag


@dg.asset
def _tiny():
    return 1


@dg.asset
def _broken():
    raise RuntimeError("boom")


def test_chain_sensor_launches_follow_ups_once(instance, defs):
    follow = rq.market_request("2025-06-27", "2025-06-27")
    parent = dg.materialize([_tiny], instance=instance, tags={rq.THEN_TAG: rq.encode_then([follow])})
    dg.materialize([_tiny], instance=instance)  # no follow-ups
    failed = dg.materialize([_broken], instance=instance, tags={rq.THEN_TAG: rq.encode_then([follow])},
                            raise_on_error=False)
    assert not failed.success

    result = _chain(instance)
    assert isinstance(result, dg.SensorResult)
    (req,) = result.run_requests  # only the successful run's follow-up
    assert req.run_key == f"{parent.run_id}:then:0"
    assert req.tags[rq.PARENT_RUN_TAG] == parent.run_id
    assert set(req.asset_selection) == set(rq.MARKET_KEYS)
    assert req.tags[orch.RANGE_START_TAG] == "2025-06-27"

    # Re-evaluation with the cursor: nothing again.
    again = _chain(instance, result.cursor)
    assert not again.run_requests and again.skip_reason
    # Through the framework (as the daemon): the request targets the asset job, with the market checks.
    data = _chain(instance, defs=defs, tick=True)
    (resolved,) = data.run_requests
    assert resolved.job_name == "__ASSET_JOB"
    assert dg.AssetCheckKey(dg.AssetKey("market_prices"), "stale_prices") in set(resolved.asset_check_keys)

    # A later successful run is picked up by the next evaluation, once.
    child = dg.materialize([_tiny], instance=instance, tags={rq.THEN_TAG: rq.encode_then([rq.sql_models_request([dg.AssetKey("x")])])})
    requests, cursor = chain_tick(instance, result.cursor)
    assert [r.run_key for r in requests] == [f"{child.run_id}:then:0"]
    assert chain_tick(instance, cursor)[0] == []


def test_chain_sensor_first_evaluation_ignores_old_runs(instance):
    dg.materialize([_tiny], instance=instance, tags={rq.THEN_TAG: rq.encode_then([rq.market_request("2025-06-27", "2025-06-27")])})
    assert chain_tick(instance, None, now=time.time() + 2 * 86400)[0] == []


# --------------------------------------------------------------------------------------------------------
# The inbox sensor


@pytest.fixture
def inbox_dir(tmp_path, monkeypatch):
    root = tmp_path / "inbox"
    monkeypatch.setenv("SIGMASIGHT_INBOX_DIR", str(root))
    monkeypatch.setenv("SIGMASIGHT_INBOX_SETTLE_SECONDS", "0")
    return root


def test_inbox_accepts_a_good_file(instance, warehouse, sqlite_engine, inbox_dir, keys, monkeypatch):
    monkeypatch.setenv(rq.BACKFILL_START_ENV, "2025-06-02")
    monkeypatch.setenv(rq.BACKFILL_END_ENV, "2025-06-30")
    inbox.ensure_inbox(inbox_dir)
    shutil.copy(DATA / "individual.csv", inbox_dir / "growth_book-2025.csv")

    result = _inbox(instance, warehouse)
    assert isinstance(result, dg.SensorResult)
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == "portfolio" and list(add.partition_keys) == ["growth-book-2025"]
    (req,) = result.run_requests
    assert req.asset_selection == [dg.AssetKey("portfolio_positions")] and req.partition_key == "growth-book-2025"
    assert req.run_key.startswith("inbox:growth-book-2025:")
    assert req.tags["sigmasight/source_file"] == "growth_book-2025.csv"
    # The chain: positions -> market history -> the portfolio's backfill window -> SQL models.
    positions, market, portfolio, sql = rq.chain_specs(req)
    assert market["tags"][orch.RANGE_START_TAG] == rq.market_history_start("2025-06-02").strftime("%Y-%m-%d")
    assert market["tags"][orch.RANGE_END_TAG] == "2025-06-30"
    assert portfolio["tags"][orch.RANGE_START_TAG] == "2025-06-02|growth-book-2025"
    assert portfolio["tags"][orch.RANGE_END_TAG] == "2025-06-30|growth-book-2025"
    assert sql["assets"] == [k.to_user_string() for k in keys.sql_models]
    # Stored, moved.
    book = get_portfolio(sqlite_engine, "growth-book-2025")
    assert book["name"] == "Growth Book 2025" and book["source_filename"] == "growth_book-2025.csv"
    assert not list(inbox_dir.glob("*.csv"))
    (moved,) = (inbox_dir / "processed").iterdir()
    assert moved.name.startswith("growth_book-2025.") and moved.suffix == ".csv"
    assert moved.read_bytes() == (DATA / "individual.csv").read_bytes()
    # Nothing left: the next evaluation skips.
    assert isinstance(_inbox(instance, warehouse), dg.SkipReason)
    # The same file again: the same run key (the daemon launches a run key once per sensor).
    shutil.copy(DATA / "individual.csv", inbox_dir / "growth_book-2025.csv")
    assert _inbox(instance, warehouse).run_requests[0].run_key == req.run_key


def test_inbox_sidecar_names_the_portfolio(instance, warehouse, sqlite_engine, inbox_dir, defs):
    inbox.ensure_inbox(inbox_dir)
    shutil.copy(DATA / "hnw.csv", inbox_dir / "upload.csv")
    (inbox_dir / "upload.json").write_text(json.dumps({"name": "Smith Family Office", "owner": "ops@example.com"}))
    data = _inbox(instance, warehouse, defs, tick=True)
    (req,) = data.run_requests
    assert req.partition_key == "smith-family-office"
    assert req.tags["dagster/partition"] == "smith-family-office"  # resolved against the added partition
    assert get_portfolio(sqlite_engine, "smith-family-office")["owner"] == "ops@example.com"
    processed = sorted(p.suffix for p in (inbox_dir / "processed").iterdir())
    assert processed == [".csv", ".json"]


def test_inbox_rejects_a_bad_file_with_every_error(instance, warehouse, sqlite_engine, inbox_dir):
    inbox.ensure_inbox(inbox_dir)
    bad = (
        "ticker,quantity,entry_price,entry_date\n"
        "AAPL,10,100,2024-01-02\n"
        "MSFT,0,100,2024-01-02\n"
        "???,5,abc,2024-13-45\n"
        "NVDA,5,100,not-a-date\n"
    )
    (inbox_dir / "bad_book.csv").write_text(bad)
    with pytest.raises(PortfolioValidationError) as err:
        parse_portfolio_csv(bad)
    expected = [str(e) for e in err.value.errors]
    assert len(expected) >= 4

    result = _inbox(instance, warehouse)
    assert isinstance(result, dg.SkipReason) and "bad_book.csv" in result.skip_message
    rejected = sorted((inbox_dir / "rejected").iterdir())
    assert [p.suffix for p in rejected] == [".csv", ".txt"]
    csv_file, report = rejected
    assert report.name == csv_file.name + ".errors.txt"
    text = report.read_text()
    for line in expected:
        assert line in text
    assert f"{len(expected)} errors" in text
    assert not list(inbox_dir.glob("*.csv")) and not list((inbox_dir / "processed").iterdir())
    assert instance.get_dynamic_partitions("portfolio") == []
    assert read_table(sqlite_engine, schema.portfolios).empty and read_table(sqlite_engine, schema.positions).empty


def test_inbox_rejects_an_unreadable_sidecar_and_waits_for_fresh_files(instance, warehouse, sqlite_engine, inbox_dir, monkeypatch):
    inbox.ensure_inbox(inbox_dir)
    shutil.copy(DATA / "individual.csv", inbox_dir / "odd.csv")
    (inbox_dir / "odd.json").write_text("{not json")
    monkeypatch.setenv("SIGMASIGHT_INBOX_SETTLE_SECONDS", "60")
    assert "no portfolio CSV" in _inbox(instance, warehouse).skip_message
    old = time.time() - 120
    os.utime(inbox_dir / "odd.csv", (old, old))
    result = _inbox(instance, warehouse)
    assert isinstance(result, dg.SkipReason) and "sidecar odd.json" in result.skip_message
    names = sorted(p.name for p in (inbox_dir / "rejected").iterdir())
    assert len(names) == 3 and any(n.endswith(".json") for n in names)
    report = next((inbox_dir / "rejected").glob("*.errors.txt")).read_text()
    assert "unreadable JSON" in report
    assert read_table(sqlite_engine, schema.portfolios).empty


def test_inbox_moves_never_overwrite(tmp_path):
    root = inbox.ensure_inbox(tmp_path / "in")
    when = dt.datetime(2025, 6, 27, 22, 30, tzinfo=dt.timezone.utc)
    moved = []
    for _ in range(3):
        (root / "a.csv").write_text("x")
        moved.append(inbox.accept(root / "a.csv", root, now=when).name)
    assert moved == ["a.20250627T223000Z.csv", "a.20250627T223000Z-1.csv", "a.20250627T223000Z-2.csv"]
    assert inbox.name_from_filename("hedge-fund_2025.csv") == "Hedge Fund 2025"
    assert inbox.list_candidates(root) == []


# --------------------------------------------------------------------------------------------------------
# The stale-price check


def _seed_prices(engine, sessions, symbols, *, stop_early: dict[str, int] | None = None) -> None:
    rows = []
    for sym in symbols:
        cut = len(sessions) - (stop_early or {}).get(sym, 0)
        rows += [{"date": d, "symbol": sym, "close": 100.0, "source": "test"} for d in sessions[:cut]]
    write_partition(engine, schema.market_prices, pd.DataFrame(rows), dates=sessions)


def test_stale_price_check(warehouse, sqlite_engine):
    book = DEMO_BOOKS[0]
    _seed_positions(sqlite_engine, book)
    held = sorted(read_table(sqlite_engine, schema.positions).underlying_symbol.unique())
    sessions = xcal.sessions_window("2025-06-27", 10)

    _seed_prices(sqlite_engine, sessions, held)
    ok = stale_prices(warehouse=warehouse)
    assert ok.passed and ok.metadata["stale"].value == "none"
    assert ok.metadata["symbols_checked"].value == len(held)

    # VNQ stops 5 sessions before the latest stored session; NVDA 3 (still within the limit).
    _seed_prices(sqlite_engine, sessions, held, stop_early={"VNQ": 5, "NVDA": STALE_AFTER_SESSIONS})
    bad = stale_prices(warehouse=warehouse)
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.metadata["stale_symbols"].value == {"VNQ": f"{sessions[-6]:%Y-%m-%d}"}
    assert "VNQ" in bad.description and "NVDA" not in bad.metadata["stale"].value
    latest, staleness = price_staleness(sqlite_engine)
    assert latest == sessions[-1] and staleness["VNQ"][1] == 5 and staleness["NVDA"][1] == 3


def test_stale_price_check_names_a_never_priced_symbol(warehouse, sqlite_engine):
    _seed_positions(sqlite_engine, DEMO_BOOKS[0])
    held = sorted(read_table(sqlite_engine, schema.positions).underlying_symbol.unique())
    _seed_prices(sqlite_engine, xcal.sessions_window("2025-06-27", 3), [s for s in held if s != "AAPL"])
    res = stale_prices(warehouse=warehouse)
    assert not res.passed and res.metadata["stale_symbols"].value == {"AAPL": "none"}


# --------------------------------------------------------------------------------------------------------
# End to end: an inbox file through the whole chain, in-process.


def _execute(defs, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Run a (resolved) RunRequest in-process the way the daemon would launch it."""
    tags = {k: v for k, v in (request.tags or {}).items() if k != "dagster/partition"}
    return dg.materialize(
        assets=list(defs.assets or []) + list(defs.asset_checks or []),
        selection=request.asset_selection,
        partition_key=request.partition_key,
        tags=tags,
        instance=instance,
        resources=dict(defs.resources or {}),
        run_config=orch.QUIET,
    )


@pytest.fixture
def fast_instance():
    """A persistent instance (sensors need one) on tmpfs when there is one: Dagster writes an event per
    partition key, and the onboarding chain's market run covers ~170 sessions."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None) as tmp:
        with dg.instance_for_test(temp_dir=tmp) as inst:
            yield inst, Path(tmp)


def test_inbox_file_runs_through_the_whole_chain(fast_instance, defs, inbox_dir, monkeypatch):
    instance, tmp = fast_instance
    sqlite_url = f"sqlite:///{tmp / 'warehouse.db'}"
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv(rq.BACKFILL_START_ENV, "2025-06-25")
    monkeypatch.setenv(rq.BACKFILL_END_ENV, "2025-06-27")
    reports = Path(os.environ["SIGMASIGHT_REPORTS_DIR"])
    inbox.ensure_inbox(inbox_dir)
    shutil.copy(DATA / "individual.csv", inbox_dir / "individual.csv")

    tick = _inbox(instance, WarehouseResource(database_url=sqlite_url), defs, tick=True)
    for add in tick.dynamic_partitions_requests:  # what the daemon does before launching the runs
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    queue = list(tick.run_requests)
    cursor, steps, results = None, [], []
    while queue:
        request = queue.pop(0)
        result = _execute(defs, instance, request)
        assert result.success
        steps.append(request.tags[rq.STEP_TAG])
        results.append(result)
        chained = _chain(instance, cursor, defs, tick=True)
        cursor = chained.cursor
        queue += chained.run_requests
    assert steps == ["positions", "market", "portfolios", "sql_models"]

    market_checks = {e.check_name: e.passed for e in results[1].get_asset_check_evaluations()}
    assert market_checks["stale_prices"] is True
    portfolio_checks = {f"{e.asset_key.to_user_string()}.{e.check_name}": e.passed for e in results[2].get_asset_check_evaluations()}
    assert portfolio_checks and all(portfolio_checks.values()), portfolio_checks
    for day in ("2025-06-25", "2025-06-26", "2025-06-27"):
        folder = report_dir(reports, "Individual", day)
        assert (folder / "portfolio_report.json").is_file(), folder
    report = json.loads((report_dir(reports, "Individual", "2025-06-27") / "portfolio_report.json").read_text())
    assert report["metadata"]["anchor_date"] == "2025-06-27"
    # Each follow-up was launched once and points at its parent.
    assert results[3].dagster_run.tags[rq.PARENT_RUN_TAG] == results[2].run_id
    assert chain_tick(instance, cursor)[0] == []
    snapshots = read_table(get_engine(sqlite_url), schema.portfolio_snapshots)
    assert sorted(snapshots.loc[snapshots.portfolio_id == "individual", "date"].dt.strftime("%Y-%m-%d")) == [
        "2025-06-25", "2025-06-26", "2025-06-27"]
    get_engine(sqlite_url).dispose()
    dispose_engines()
