"""Declarative automation, evaluated against a test instance the way the automation sensor evaluates it.

Each test replays ticks of the sensor (``dg.evaluate_automation_conditions`` at chosen New York times, the
cursor carried from tick to tick), executes what a tick requested in-process (the runs the tick's backfill
would create), and checks the next ticks. Early January 2025 keeps the windows small: 2025-01-09 is an
XNYS closure (National Day of Mourning for President Carter), 2025-01-10 a Friday session.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import runner
from sigmasight_pipeline.defs.automation import SENSOR_NAME, XnysSessions, closed_date_range
from sigmasight_pipeline.defs.partitions import history_start, multi_key
from sigmasight_pipeline.defs.resources import MarketDataResource
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table

NY = ZoneInfo("America/New_York")
BOOK_IDS = [b.portfolio_id for b in DEMO_BOOKS]


def at(day: str, hour: int = 18, minute: int = 31) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=NY)


@pytest.fixture(scope="module")
def defs():
    return runner.load_definitions()


@pytest.fixture
def world(defs, monkeypatch):
    """A warehouse and a persistent Dagster instance (on tmpfs when there is one), and a tick function."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None) as tmp:
        url = f"sqlite:///{Path(tmp) / 'warehouse.db'}"
        monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", url)
        with dg.instance_for_test(temp_dir=tmp) as instance:
            w = SimpleNamespace(instance=instance, url=url, defs=defs, cursor=None)

            def tick(when: dt.datetime) -> dict[str, list]:
                result = dg.evaluate_automation_conditions(
                    defs=defs, instance=instance, evaluation_time=when, cursor=w.cursor
                )
                w.cursor = result.cursor
                requested = {}
                for key in defs.resolve_asset_graph().get_all_asset_keys():
                    parts = result.get_requested_partitions(key)
                    if parts:
                        requested[key.to_user_string()] = sorted(p or "" for p in parts)
                return requested

            w.tick = tick
            yield w
        get_engine(url).dispose()
        dispose_engines()


def _books_with_market(w, last_day: str) -> None:
    """The three demo books onboarded, the market history up to ``last_day`` and the SQL models built, as
    ``sigmasight demo`` leaves a laptop before its daemon starts."""
    for book in DEMO_BOOKS:
        runner.import_portfolio(
            w.instance, demo_csv_text(book), name=book.name, owner=book.owner, portfolio_id=book.portfolio_id,
            defs=w.defs,
        )
    runner.materialize_market(w.instance, history_start("2025-01-02"), last_day, defs=w.defs)
    runner.materialize_sql_models(w.instance, defs=w.defs)


def _execute(w, requested: dict[str, list], *, market_resources=None) -> None:
    """Run what a tick requested, as its backfill would: market, then one run per date over the
    portfolios, then the SQL models."""
    market_keys = runner.market_asset_keys(w.defs)
    market_days = sorted({d for k in market_keys for d in requested.get(k.to_user_string(), [])})
    if market_days:
        runner.materialize_market(w.instance, market_days[0], market_days[-1], defs=w.defs, resources=market_resources)
    engine_keys = [k for k in runner.portfolio_asset_keys(w.defs) if k.to_user_string() in requested]
    by_date: dict[str, list[str]] = {}
    for key in engine_keys:
        for pk in requested[key.to_user_string()]:
            date, pid = pk.split("|")
            by_date.setdefault(date, [])
            if pid not in by_date[date]:
                by_date[date].append(pid)
    order = list(w.instance.get_dynamic_partitions("portfolio"))
    for date, pids in sorted(by_date.items()):
        pids = sorted(pids, key=order.index)
        runner.run(w.instance, engine_keys, defs=w.defs, tags=runner.range_tags(
            multi_key(date, pids[0]), multi_key(date, pids[-1]), f"{date} {len(pids)} portfolios"))
    sql = [k for k in runner.sql_model_keys(w.defs) if k.to_user_string() in requested]
    if sql:
        runner.run(w.instance, sql, defs=w.defs)


def test_sessions_filter_knows_holidays_and_closes():
    none = ("9999-12-31", "0000-01-01")
    assert closed_date_range(at("2025-01-10"), 0) == ("2025-01-10", "2025-01-10")
    assert closed_date_range(at("2025-01-10", 15, 59), 0) == none  # before the close
    assert closed_date_range(at("2025-01-09"), 0) == none  # closure: National Day of Mourning
    assert closed_date_range(at("2025-01-11"), 0) == none  # Saturday
    # Early close (13:00): the day after Thanksgiving 2025 has closed by 13:05.
    assert closed_date_range(at("2025-11-28", 13, 5), 0) == ("2025-11-28", "2025-11-28")
    # The 3 latest closed sessions span the closure: the range keeps it (one contiguous run).
    assert closed_date_range(at("2025-01-10"), 3) == ("2025-01-07", "2025-01-10")
    assert closed_date_range(at("2025-01-10", 12, 0), None)[1] == "2025-01-08"
    assert XnysSessions(latest=5).name != XnysSessions().name  # distinct ids in the condition tree


def _expect(requested: dict, assets, partitions) -> None:
    """``requested`` is exactly ``partitions`` of each of ``assets``."""
    assert set(requested) == set(assets), sorted(set(requested) ^ set(assets))
    for key in assets:
        assert requested[key] == sorted(partitions), key


def test_a_holiday_requests_nothing_and_the_next_session_everything_once(world):
    """The daily sequence: market after the close, then the engines, then the SQL models, each once."""
    _books_with_market(world, "2025-01-08")
    engines = [k.to_user_string() for k in runner.portfolio_asset_keys(world.defs)]
    sql = [k.to_user_string() for k in runner.sql_model_keys(world.defs)]
    assert world.tick(at("2025-01-09", 12, 0)) == {}  # first evaluation: nothing is "new" yet
    assert world.tick(at("2025-01-09")) == {}  # the closure's 18:30 tick: nothing to compute

    # Friday 18:31: the Friday partition exists (end_offset=1). The closure before it, still missing, joins the
    # range as its explicit no-op, so the range stays one run.
    requested = world.tick(at("2025-01-10"))
    days = ["2025-01-09", "2025-01-10"]
    _expect(requested, ["market_prices", "security_returns"], days)
    _execute(world, requested)
    # The engines cannot share a run with the date-only market assets: they follow on the next tick, one
    # backfill over every portfolio of that date (one run: the single-run policy holds the date fixed).
    # The SQL models that read only market tables follow with them.
    requested = world.tick(at("2025-01-10", 18, 32))
    early_sql = set(requested) - set(engines)
    assert early_sql and early_sql <= set(sql), early_sql
    _expect({k: v for k, v in requested.items() if k in engines}, engines, [f"{d}|{p}" for d in days for p in BOOK_IDS])
    _execute(world, requested)
    requested = world.tick(at("2025-01-10", 18, 33))  # then the models of the engines' tables
    # Every mart, and no model of tables that did not change (positions, reference data).
    rebuilt = set(requested) | early_sql
    assert rebuilt <= set(sql) and {k for k in sql if k.startswith("mart_")} <= rebuilt
    assert not {"stg_positions", "stg_portfolios", "stg_security_master"} & rebuilt
    _execute(world, requested)
    assert world.tick(at("2025-01-10", 18, 34)) == {}  # exactly once
    assert world.tick(at("2025-01-11")) == {}  # Saturday: no cron tick
    snapshots = read_table(get_engine(world.url), schema.portfolio_snapshots)
    assert sorted(snapshots.portfolio_id.unique()) == sorted(BOOK_IDS)
    assert set(snapshots.date.dt.strftime("%Y-%m-%d")) == {"2025-01-10"}


def test_missed_sessions_are_caught_up_on_the_next_daily_tick(world):
    _books_with_market(world, "2025-01-03")
    world.tick(at("2025-01-06", 12, 0))
    # The daemon was down Monday and Tuesday: Wednesday's tick requests the three sessions.
    assert world.tick(at("2025-01-08"))["market_prices"] == ["2025-01-06", "2025-01-07", "2025-01-08"]


class _WithoutSymbol(MarketDataResource):
    """The configured source, minus one symbol (a feed that stopped sending it)."""

    drop: str = ""

    def get_source(self):
        source = super().get_source()
        fetch = source.fetch

        def without(symbols, start, end):
            return fetch([s for s in symbols if s != self.drop], start, end)

        source.fetch = without
        return source


@pytest.mark.parametrize("stale", [False, True])
def test_a_failed_blocking_check_stops_what_follows(world, stale):
    _books_with_market(world, "2025-01-08")
    world.tick(at("2025-01-10", 12, 0))
    assert world.tick(at("2025-01-10"))["market_prices"] == ["2025-01-09", "2025-01-10"]
    if stale:  # AAPL (held) stops arriving: its last close becomes 4 sessions old, stale_prices fails
        prices = schema.market_prices
        with get_engine(world.url).begin() as conn:
            conn.execute(prices.delete().where(sa.and_(prices.c.symbol == "AAPL", prices.c.date >= dt.date(2025, 1, 3))))
        resources = {**dict(world.defs.resources), "market_data": _WithoutSymbol(drop="AAPL")}
        with pytest.raises(runner.RunFailedError, match="stale_prices"):
            runner.materialize_market(world.instance, "2025-01-09", "2025-01-10", defs=world.defs, resources=resources)
        # An operator computes the returns anyway: every input of the engines is there, only the check failed.
        runner.run(world.instance, [dg.AssetKey("security_returns")], defs=world.defs,
                   tags=runner.range_tags("2025-01-09", "2025-01-10", "returns"))
    else:
        runner.materialize_market(world.instance, "2025-01-09", "2025-01-10", defs=world.defs)
    requested = world.tick(at("2025-01-10", 18, 40))
    engines = {k.to_user_string() for k in runner.portfolio_asset_keys(world.defs)}
    if stale:
        assert not engines & set(requested), requested
    else:
        assert engines <= set(requested)


def test_a_new_portfolio_gets_its_history_in_one_tick(world):
    """Onboarding: once its positions are materialized, one tick requests the market history again (new
    symbols) and every session of the new book, none of the others; the backfill orders them."""
    _books_with_market(world, "2025-01-08")
    world.tick(at("2025-01-08", 19, 0))
    book = DEMO_BOOKS[0]
    runner.import_portfolio(world.instance, demo_csv_text(book), name="Second Book", portfolio_id="second-book", defs=world.defs)
    requested = world.tick(at("2025-01-08", 19, 1))
    market = requested["market_prices"]
    assert market[0] == f"{history_start('2025-01-02'):%Y-%m-%d}" and market[-1] == "2025-01-08"
    sessions = ("2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08")
    for key in runner.portfolio_asset_keys(world.defs):
        assert requested[key.to_user_string()] == [f"{d}|second-book" for d in sessions], key


def test_the_sensor_is_on_by_default_and_evaluates_in_the_code_location(defs):
    sensor = defs.get_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert not defs.schedules  # no home-made schedule beside the automation
    names = {s.name for s in defs.sensors}
    assert names == {SENSOR_NAME, "portfolio_inbox_sensor"}


def test_trades_imported_by_the_cli_do_not_request_the_books_history_again(world):
    """``sigmasight trades import`` recomputes the dates its trades affect itself: its positions run is tagged
    (``TRADES_WINDOW_TAG``) and the engines' "book changed" trigger ignores it, while the same positions run
    untagged (a trades file through the inbox) requests every session of that book, and no other book's."""
    _books_with_market(world, "2025-01-08")
    world.tick(at("2025-01-08", 19, 0))
    pid = BOOK_IDS[0]
    trades = "trade_date,ticker,quantity,price\n2025-01-07,AAPL,10,240.00\n"
    runner.import_trades(world.instance, pid, trades, defs=world.defs)
    requested = world.tick(at("2025-01-08", 19, 1))
    assert not any(key.to_user_string() in requested for key in runner.portfolio_asset_keys(world.defs)), requested
    runner.run(world.instance, [dg.AssetKey("portfolio_positions")], defs=world.defs, partition_key=pid)  # untagged
    requested = world.tick(at("2025-01-08", 19, 2))
    sessions = ("2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08")
    for key in runner.portfolio_asset_keys(world.defs):
        assert requested[key.to_user_string()] == [f"{d}|{pid}" for d in sessions], key
