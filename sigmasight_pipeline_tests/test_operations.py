"""Operations: the portfolio inbox sensor (the one onboarding path), the stale-price check, and an inbox
file all the way to its reports: inbox sensor -> positions run -> the automation tick that requests its
history (market, the new portfolio's sessions, SQL models) -> reports."""

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

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.defs.market.checks import STALE_AFTER_SESSIONS, price_staleness, stale_prices
from sigmasight_pipeline.defs.operations.onboarding import ONBOARDING_TAG, history_window
from sigmasight_pipeline.defs.operations.sensors import portfolio_inbox_sensor
from sigmasight_pipeline.defs.partitions import history_start, multi_key
from sigmasight_pipeline.defs.portfolios.portfolio_positions import store_book
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.onboarding import DEMO_BOOKS, PortfolioValidationError, demo_csv_text, inbox, parse_portfolio_csv
from sigmasight_pipeline.reporting.writer import report_dir
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table, write_partition
from sigmasight_pipeline.warehouse.portfolios import get_portfolio, save_portfolio_source

NY = ZoneInfo("America/New_York")
DATA = Path(__file__).resolve().parents[1] / "sigmasight_pipeline" / "data" / "demo_portfolios"
BOOK_IDS = [b.portfolio_id for b in DEMO_BOOKS]  # demo-individual, demo-hnw, demo-hedge-fund


@pytest.fixture(scope="module")
def defs():
    return orch.load_definitions()


@pytest.fixture
def warehouse(sqlite_url, sqlite_engine, monkeypatch):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", sqlite_url)
    return WarehouseResource(database_url=sqlite_url)


def _seed_positions(engine, book) -> None:
    """A demo book stored with its positions, as `portfolio_positions` would leave it."""
    text = demo_csv_text(book)
    save_portfolio_source(engine, portfolio_id=book.portfolio_id, name=book.name, owner=None, csv_text=text)
    store_book(engine, book.portfolio_id)


def _inbox(instance, warehouse, defs=None, *, tick=False):
    """Evaluate the inbox sensor: called directly, or with ``tick`` through ``evaluate_tick`` as the daemon
    does (run requests resolved against the repository, partition keys checked)."""
    with dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), resources={"warehouse": warehouse},
        repository_def=defs.get_repository_def() if defs else None,
    ) as ctx:
        return portfolio_inbox_sensor.evaluate_tick(ctx) if tick else portfolio_inbox_sensor(ctx)


# --------------------------------------------------------------------------------------------------------
# The inbox sensor


@pytest.fixture
def inbox_dir(tmp_path, monkeypatch):
    root = tmp_path / "inbox"
    monkeypatch.setenv("SIGMASIGHT_INBOX_DIR", str(root))
    monkeypatch.setenv("SIGMASIGHT_INBOX_SETTLE_SECONDS", "0")
    return root


def test_history_window(monkeypatch):
    monkeypatch.delenv("SIGMASIGHT_PARTITION_END", raising=False)
    # Entries in 2024: from the first computed date to the last closed session.
    assert history_window("2024-03-01", now=dt.datetime(2025, 1, 8, 17, 0, tzinfo=NY)) == (
        pd.Timestamp("2025-01-02"), pd.Timestamp("2025-01-08"))
    # Before the close, the day's session is not complete yet; an entry after the start moves the start.
    assert history_window("2025-01-03", now=dt.datetime(2025, 1, 8, 15, 0, tzinfo=NY)) == (
        pd.Timestamp("2025-01-06"), pd.Timestamp("2025-01-07"))
    assert history_window("2025-01-08", now=dt.datetime(2025, 1, 8, 17, 0, tzinfo=NY)) is None
    monkeypatch.setenv("SIGMASIGHT_PARTITION_END", "2025-01-06")
    assert history_window("2024-03-01", now=dt.datetime(2025, 6, 30, 17, 0, tzinfo=NY))[1] == pd.Timestamp("2025-01-06")


def test_inbox_accepts_a_good_file(instance, warehouse, sqlite_engine, inbox_dir):
    inbox.ensure_inbox(inbox_dir)
    shutil.copy(DATA / "individual.csv", inbox_dir / "growth_book-2025.csv")

    result = _inbox(instance, warehouse)
    assert isinstance(result, dg.SensorResult)
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == "portfolio" and list(add.partition_keys) == ["growth-book-2025"]
    (req,) = result.run_requests
    assert req.asset_selection == [dg.AssetKey("portfolio_positions")] and req.partition_key == "growth-book-2025"
    assert req.run_key.startswith("inbox:")
    assert req.tags["sigmasight/source_file"] == "growth_book-2025.csv"
    assert req.tags[ONBOARDING_TAG] == "growth-book-2025"
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


def test_inbox_takes_a_trades_file_for_its_portfolio_and_rejects_a_bad_one(instance, warehouse, sqlite_engine, inbox_dir):
    """``<portfolio-id>.trades.csv``: its trades stored (all or nothing) and the portfolio's positions requested;
    no partition is added (the portfolio exists). A file for an unknown portfolio, or with a bad row, is rejected
    with its errors and stores nothing."""
    from sigmasight_pipeline.warehouse.book import read_trades

    book = DEMO_BOOKS[0]
    _seed_positions(sqlite_engine, book)
    inbox.ensure_inbox(inbox_dir)
    (inbox_dir / f"{book.portfolio_id}.trades.csv").write_text(
        "trade_date,ticker,quantity,price,trade_id\n2025-03-04,AAPL,-10,235.50,t1\n2025-03-05,MSFT,5,400,t2\n")
    (inbox_dir / "nobody.trades.csv").write_text("trade_date,ticker,quantity,price\n2025-03-04,AAPL,1,235.50\n")
    result = _inbox(instance, warehouse)
    assert isinstance(result, dg.SensorResult) and not result.dynamic_partitions_requests
    (req,) = result.run_requests
    assert req.asset_selection == [dg.AssetKey("portfolio_positions")] and req.partition_key == book.portfolio_id
    assert req.tags["sigmasight/source_file"] == f"{book.portfolio_id}.trades.csv"
    assert read_trades(sqlite_engine, book.portfolio_id)["trade_id"].tolist() == ["t1", "t2"]
    rejected = {p.name for p in (inbox_dir / "rejected").iterdir()}
    assert any(n.startswith("nobody.trades") and n.endswith(".errors.txt") for n in rejected)
    (inbox_dir / f"{book.portfolio_id}.trades.csv").write_text(
        "trade_date,ticker,quantity,price,trade_id\n2025-03-06,AAPL,-1,235.50,t1\n2025-03-06,AAPL,0,1,t3\n")
    assert isinstance(_inbox(instance, warehouse), dg.SkipReason)
    report = next(p for p in (inbox_dir / "rejected").iterdir() if p.name.startswith(book.portfolio_id) and p.name.endswith(".txt"))
    text = report.read_text()
    assert "row 2, column 'trade_id': already imported" in text and "row 3, column 'quantity': zero quantity" in text
    assert read_trades(sqlite_engine, book.portfolio_id)["trade_id"].tolist() == ["t1", "t2"]


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
# End to end: an inbox file through the sensor and declarative automation, in-process.


@pytest.fixture
def fast_instance():
    """A persistent instance (sensors need one) on tmpfs when there is one: Dagster writes an event per
    partition key, and the new portfolio's market history covers ~165 sessions."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None) as tmp:
        with dg.instance_for_test(temp_dir=tmp) as inst:
            yield inst, Path(tmp)


def test_inbox_file_reaches_its_reports_through_automation(fast_instance, defs, inbox_dir, monkeypatch):
    instance, tmp = fast_instance
    sqlite_url = f"sqlite:///{tmp / 'warehouse.db'}"
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", sqlite_url)
    reports = Path(os.environ["SIGMASIGHT_REPORTS_DIR"])
    tick_at = dt.datetime(2025, 1, 8, 19, 0, tzinfo=NY)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=tick_at)
    # Nothing onboarded yet: a new deployment only builds its missing SQL models.
    sql_keys = orch.sql_model_keys(defs)
    assert first.total_requested == len(sql_keys) == sum(len(first.get_requested_partitions(k)) for k in sql_keys)

    inbox.ensure_inbox(inbox_dir)
    shutil.copy(DATA / "individual.csv", inbox_dir / "individual.csv")
    sensed = _inbox(instance, WarehouseResource(database_url=sqlite_url), defs, tick=True)
    for add in sensed.dynamic_partitions_requests:  # what the daemon does before launching the runs
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    (request,) = sensed.run_requests
    assert _execute(defs, instance, request).success  # the positions run

    def tick(minutes: int, cursor):
        return dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=tick_at + dt.timedelta(minutes=minutes), cursor=cursor)

    # Tick 1: its book changed, so the market history is requested (new symbols need it). On a new deployment
    # the market partitions are missing, so the portfolio's sessions wait for them (next tick).
    after_positions = tick(1, first.cursor)
    market = sorted(after_positions.get_requested_partitions(dg.AssetKey("market_prices")))
    assert market[0] == f"{history_start('2025-01-02'):%Y-%m-%d}" and market[-1] == "2025-01-08"
    checks = orch.check_results(orch.materialize_market(instance, market[0], market[-1], defs=defs))
    assert checks["market_prices.stale_prices"] is True
    # Tick 2: every session of the new portfolio, one run (the single-run policy holds the portfolio fixed).
    after_market = tick(2, after_positions.cursor)
    sessions = ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08"]
    engines = orch.portfolio_asset_keys(defs)
    for key in engines:
        assert sorted(after_market.get_requested_partitions(key)) == [str(multi_key(d, "individual")) for d in sessions], key
    checks.update(orch.check_results(orch.materialize_portfolio(instance, "individual", sessions[0], sessions[-1], defs=defs)))
    # Tick 3: the SQL models of what changed.
    after_engines = tick(3, after_market.cursor)
    assert {k for k in sql_keys if after_engines.get_requested_partitions(k)} >= {k for k in sql_keys if k.path[0].startswith("mart_")}
    checks.update(orch.check_results(orch.materialize_sql_models(instance, defs=defs)))
    assert all(checks.values()), checks
    for day in sessions:
        assert (report_dir(reports, "Individual", day) / "portfolio_report.json").is_file(), day
    report = json.loads((report_dir(reports, "Individual", "2025-01-08") / "portfolio_report.json").read_text())
    assert report["metadata"]["anchor_date"] == "2025-01-08"
    assert tick(4, after_engines.cursor).total_requested == 0  # each requested once
    get_engine(sqlite_url).dispose()
    dispose_engines()


def _execute(defs, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Run a (resolved) RunRequest in-process the way the daemon would launch it."""
    tags = {k: v for k, v in (request.tags or {}).items() if k != "dagster/partition"}
    return orch.run(instance, request.asset_selection, defs=defs, tags=tags, partition_key=request.partition_key)


def test_backfill_submit_launches_through_the_webserver(warehouse, sqlite_engine, monkeypatch, capsys):
    """`sigmasight backfill --submit` sends the UI's backfill: market with its history, every date x portfolio
    asset per portfolio, the SQL models whole."""
    from sigmasight_pipeline import cli, webserver_client

    for book in DEMO_BOOKS[:2]:
        _seed_positions(sqlite_engine, book)
    sent = {}

    def launch_backfill(url, asset_keys, **kwargs):
        sent.update(url=url, keys=list(asset_keys), **kwargs)
        return "abcdefgh"

    monkeypatch.setattr(webserver_client, "launch_backfill", launch_backfill)
    code = cli.main(["backfill", "--from", "2025-06-23", "--to", "2025-06-27", "--submit", "--url", "http://127.0.0.1:3999"])
    assert code == 0 and "abcdefgh" in capsys.readouterr().out
    assert sent["url"] == "http://127.0.0.1:3999"
    ranges = {k.to_user_string(): v for k, v in sent["partition_ranges"].items()}
    assert ranges["market_prices"] == [(f"{history_start('2025-06-23'):%Y-%m-%d}", "2025-06-27")]
    ids = sorted(b.portfolio_id for b in DEMO_BOOKS[:2])
    assert sorted(ranges["stress_results"]) == sorted((f"2025-06-23|{p}", f"2025-06-27|{p}") for p in ids)
    assert ranges["mart_portfolio_daily"] == []  # unpartitioned: the whole model
