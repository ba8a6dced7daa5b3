"""Reliability: killed runs, concurrent runs, and a flaky market-data source.

1. A portfolio run killed with SIGKILL midway (its own process, SQLite and PostgreSQL) leaves every
   date x portfolio partition either fully written or untouched, never partial; rows of other partitions
   are untouched; a run killed INSIDE a write transaction (paused right after its DELETE) leaves the
   previous rows intact; rerunning completes the window with the same numbers as a never-killed run.
2. Four runs for four portfolios at the same moment on one PostgreSQL warehouse all succeed (no
   ``deadlock detected``), with exactly the expected rows and the numbers of a sequential run.
3. The yfinance source survives timeouts and a partial answer: it retries, then the missing symbol is
   named in the ``market_prices`` metadata and by the ``universe_priced`` check; only real closes are stored.

One module-scoped build (SQLite) serves as the never-killed reference: the demo books plus a copy of one,
market data with its 260-session history, then each portfolio's window, sequentially. Test warehouses are
copies of that build taken before the portfolio runs (a copy costs a second; rebuilding the market
history would cost ten). ``portfolio_reports`` is left out of the runs: it renders PNG charts (four seconds
a session here) and writes files, not only rows; every date x portfolio TABLE asset is in.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.resources import MarketDataResource, WarehouseResource
from sigmasight_pipeline.marketdata import sources as marketdata_sources
from sigmasight_pipeline.marketdata.base import universe
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, DATABASE_URL_ENV, get_engine, read_table
from sigmasight_pipeline_tests.conftest import throwaway_postgres_database

REPO_ROOT = Path(__file__).resolve().parents[1]

START, END = "2025-06-09", "2025-06-13"  # 5 weekdays, 5 XNYS sessions
SESSIONS = pd.bdate_range(START, END)
KILLED = "demo-individual"  # the portfolio whose run is killed
COPY = ("demo-individual-copy", "Demo Individual Investor Portfolio (copy)", "copy@sigmasight.com", "individual.csv")
BOOKS = [(b.portfolio_id, b.name, b.owner, b.csv_file) for b in DEMO_BOOKS] + [COPY]
PORTFOLIOS = [b[0] for b in BOOKS]
OTHERS = [p for p in PORTFOLIOS if p != KILLED]
POSITIONS = {"demo-individual": 16, "demo-hnw": 17, "demo-hedge-fund": 30, "demo-individual-copy": 16}
SKIP = "portfolio_reports"

#: The tables each date x portfolio asset writes, in ONE transaction per portfolio batch (defs/date_portfolio.write_tables).
ASSET_TABLES: dict[str, list[sa.Table]] = {
    "position_greeks": [schema.position_greeks],
    "position_valuations": [schema.position_valuations, schema.portfolio_exposures, schema.group_exposures],
    "factor_exposures": [
        schema.position_factor_exposures, schema.portfolio_factor_exposures,
        schema.factor_regression_windows, schema.factor_correlations,
    ],
    "portfolio_snapshots": [schema.portfolio_snapshots, schema.position_daily_pnl],
    "position_correlations": [schema.position_correlations, schema.correlation_summaries, schema.correlation_clusters],
    "rate_sensitivity": [schema.position_rate_sensitivity, schema.portfolio_rate_sensitivity],
    "stress_results": [schema.stress_results, schema.stress_factor_breakdown],
    "risk_measures": [schema.portfolio_risk_measures, schema.position_risk_contributions,
                      schema.factor_risk_contributions, schema.risk_backtest],
    "portfolio_performance": [schema.portfolio_performance],
    "pnl_attribution": [schema.pnl_attribution],
}
TABLES: list[sa.Table] = [t for tables in ASSET_TABLES.values() for t in tables]
FROM_SECOND_SESSION = ("risk_backtest", "pnl_attribution")
#: Rows per session and portfolio position count n, stated independently of the engines.
EXPECTED_PER_SESSION = {
    "position_valuations": lambda n: n,
    "position_greeks": lambda n: n,
    "position_factor_exposures": lambda n: 7 * n,
    "portfolio_factor_exposures": lambda n: 7,
    "portfolio_exposures": lambda n: 1,
    "portfolio_snapshots": lambda n: 1,
    "stress_results": lambda n: 18,
}

#: What the kill and concurrency tests saw, printed at the end of the module (pytest -s shows it).
REPORT_LOG: list[str] = []


# --------------------------------------------------------------------------------------------------
# Builds, copies, reads, comparisons
# --------------------------------------------------------------------------------------------------
@dataclass
class World:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    base_url: str  # books imported, market data with history; no portfolio run
    pre_url: str  # base + every portfolio but KILLED run over the window
    reference: dict[str, pd.DataFrame]  # every table after every portfolio ran (never killed)


def _resources(defs: dg.Definitions, url: str) -> dict:
    return {**dict(defs.resources or {}), "warehouse": WarehouseResource(database_url=url)}


def _selection(defs: dg.Definitions) -> list[dg.AssetKey]:
    keys = [k for k in orch.portfolio_asset_keys(defs) if k.to_user_string() != SKIP]
    assert {k.to_user_string() for k in keys} == set(ASSET_TABLES)
    return keys


def _copy_warehouse(src_url: str, dst_url: str) -> None:
    """Every row of every table of ``src_url`` into the (empty) warehouse at ``dst_url``, one transaction."""
    src, dst = get_engine(src_url), get_engine(dst_url)
    with src.connect() as s, dst.begin() as d:
        for table in schema.metadata.sorted_tables:
            rows = [dict(r) for r in s.execute(sa.select(table)).mappings()]
            for i in range(0, len(rows), 5000):
                d.execute(table.insert(), rows[i : i + 5000])


def _read(engine, table: sa.Table, portfolios=None) -> pd.DataFrame:
    frame = read_table(engine, table)
    if portfolios is not None:
        frame = frame[frame.portfolio_id.isin(list(portfolios))].reset_index(drop=True)
    return frame


def _read_all(engine, portfolios=None) -> dict[str, pd.DataFrame]:
    return {t.name: _read(engine, t, portfolios) for t in TABLES}


def _assert_same_numbers(got: pd.DataFrame, want: pd.DataFrame, label: str) -> None:
    """Same keys and columns; numbers equal to 1e-9, everything else equal."""
    got, want = got.reset_index(drop=True), want.reset_index(drop=True)
    assert len(got) == len(want), f"{label}: {len(got)} rows, reference {len(want)}"
    assert list(got.columns) == list(want.columns), label
    for col in want.columns:
        a, b = got[col], want[col]
        numeric = any(pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) for x in (a, b))
        if numeric:
            np.testing.assert_allclose(
                pd.to_numeric(a, errors="coerce").astype(float), pd.to_numeric(b, errors="coerce").astype(float),
                rtol=1e-9, atol=1e-9, err_msg=f"{label}.{col}",
            )
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), f"{label}.{col}"


def _of(frame: pd.DataFrame, portfolio_id: str) -> pd.DataFrame:
    return frame[frame.portfolio_id == portfolio_id].reset_index(drop=True)


def _per_session_counts(frame: pd.DataFrame) -> list[int]:
    counts = frame[frame.date.isin(SESSIONS)].groupby("date").size()
    return [int(counts.get(d, 0)) for d in SESSIONS]


def _assert_equals_reference(engine, reference: dict[str, pd.DataFrame], portfolios, label: str) -> None:
    for table in TABLES:
        got = _read(engine, table, portfolios)
        want = reference[table.name]
        want = want[want.portfolio_id.isin(list(portfolios))].reset_index(drop=True)
        _assert_same_numbers(got, want, f"{label}:{table.name}")


def _assert_unchanged(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame], label: str) -> None:
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=f"{label}:{name}")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("reliability")
    base_url, ref_url, pre_url = (f"sqlite:///{root / name}.db" for name in ("base", "reference", "pre"))
    defs = orch.load_definitions()
    instance = dg.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATABASE_URL_ENV, base_url)
        mp.setenv("SIGMASIGHT_HOME", str(root / "home"))
        mp.setenv("SIGMASIGHT_REPORTS_DIR", str(root / "reports"))
        mp.setenv("SIGMASIGHT_MARKET_DATA", "sample")
        csv = {b.csv_file: demo_csv_text(b) for b in DEMO_BOOKS}
        for pid, name, owner, csv_file in BOOKS:
            orch.import_portfolio(instance, csv[csv_file], name=name, owner=owner, portfolio_id=pid, defs=defs)
        orch.materialize_market(instance, orch.history_start(START), END, defs=defs)
        _copy_warehouse(base_url, ref_url)
        for pid in OTHERS:  # sequential, never killed
            orch.materialize_portfolio(instance, pid, START, END, defs=defs, selection=_selection(defs),
                                       resources=_resources(defs, ref_url))
        _copy_warehouse(ref_url, pre_url)
        orch.materialize_portfolio(instance, KILLED, START, END, defs=defs, selection=_selection(defs),
                                   resources=_resources(defs, ref_url))
        reference = _read_all(get_engine(ref_url))
    yield World(defs, instance, base_url, pre_url, reference)
    if REPORT_LOG:
        print("\n" + "\n".join(REPORT_LOG))
    dispose_engines()


def test_reference_build_has_the_expected_rows(world):
    """The reference itself: every table has rows, and the stated counts per session and portfolio."""
    for table in TABLES:
        assert len(world.reference[table.name]) > 0, table.name
        for pid in PORTFOLIOS:
            counts = _per_session_counts(_of(world.reference[table.name], pid))
            rule = EXPECTED_PER_SESSION.get(table.name)
            if rule:
                assert counts == [rule(POSITIONS[pid])] * len(SESSIONS), (table.name, pid, counts)
        # the backtest needs the previous session's VaR, attribution its exposures: none on the first session
        first = 1 if table.name in FROM_SECOND_SESSION else 0
        assert set(world.reference[table.name].date) == set(SESSIONS[first:]), table.name
        assert not world.reference[table.name].duplicated([c.name for c in table.primary_key.columns]).any()
    # The copy is a separate portfolio with the same book: identical numbers under another id.
    for table in TABLES:
        a = _of(world.reference[table.name], KILLED).drop(columns="portfolio_id")
        b = _of(world.reference[table.name], COPY[0]).drop(columns="portfolio_id")
        _assert_same_numbers(a, b, f"copy:{table.name}")


# --------------------------------------------------------------------------------------------------
# Subprocess runs
# --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _warehouse(dialect: str, tmp_path: Path):
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'killed.db'}"
        try:
            yield url
        finally:
            get_engine(url).dispose()
    else:
        with throwaway_postgres_database() as url:
            yield url


@dataclass
class Worker:
    proc: subprocess.Popen
    app_name: str
    out: Path
    err: Path
    ready: Path
    go: Path

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_worker_left_behind():
    """A failing test must not leave a worker running (a paused one would wait for its kill forever)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _spawn(url: str, tmp_path: Path, portfolio: str, *extra: str) -> Worker:
    """Start a worker process; it loads Dagster and the definitions, then waits for :func:`_go`."""
    tag = uuid.uuid4().hex[:8]
    app_name = f"sigmasight-reliability-{tag}"
    env = {
        **os.environ,
        DATABASE_URL_ENV: url,
        "SIGMASIGHT_MARKET_DATA": "sample",
        "PGAPPNAME": app_name,  # libpq: lets the test find this process's PostgreSQL backends
        "PYTHONWARNINGS": "ignore",
    }
    out, err = tmp_path / f"worker-{tag}.out", tmp_path / f"worker-{tag}.err"
    ready, go = tmp_path / f"worker-{tag}.ready", tmp_path / f"worker-{tag}.go"
    cmd = [sys.executable, "-m", "sigmasight_pipeline_tests.reliability_worker",
           "--portfolio", portfolio, "--start", START, "--end", END, "--skip", SKIP,
           "--ready", str(ready), "--go", str(go), *extra]
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=o, stderr=e)
    _STARTED.append(proc)
    return Worker(proc, app_name, out, err, ready, go)


def _wait_ready(workers, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(w.ready.exists() for w in workers):
        for w in workers:
            assert w.proc.poll() is None, f"worker died before its start:\n{w.output()}"
        assert time.monotonic() < deadline, "workers not ready in time"
        time.sleep(0.02)


def _go(*workers: Worker) -> None:
    """Let the workers' runs start (all at the same moment)."""
    _wait_ready(workers)
    for w in workers:
        w.go.touch()


def _sigkill(worker: Worker, engine) -> None:
    worker.proc.send_signal(signal.SIGKILL)
    assert worker.proc.wait(timeout=30) == -signal.SIGKILL
    if engine.dialect.name == "postgresql":
        # The server notices the closed socket and aborts the open transaction; wait until the backend is gone.
        deadline = time.monotonic() + 30
        q = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n")
        while True:
            with engine.connect() as conn:
                if conn.execute(q, {"n": worker.app_name}).scalar() == 0:
                    break
            assert time.monotonic() < deadline, "the killed worker's PostgreSQL backend did not go away"
            time.sleep(0.05)


def _count(conn, table: sa.Table, portfolio: str) -> int:
    q = sa.select(sa.func.count()).select_from(table).where(table.c.portfolio_id == portfolio)
    return conn.execute(q).scalar()


def _state_of_killed(engine, reference: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Per asset: "complete" or "untouched"; fails on any partial partition or any asset half written."""
    state = {}
    for asset, tables in ASSET_TABLES.items():
        per_table = {}
        for table in tables:
            counts = _per_session_counts(_read(engine, table, [KILLED]))
            want = _per_session_counts(_of(reference[table.name], KILLED))
            if counts == want:
                per_table[table.name] = "complete"
            elif counts == [0] * len(SESSIONS):
                per_table[table.name] = "untouched"
            else:
                pytest.fail(f"{table.name}: partial partitions for {KILLED}: rows per session {counts}, full {want}")
        informative = {s for name, s in per_table.items() if _per_session_counts(_of(reference[name], KILLED)) != [0] * len(SESSIONS)}
        assert len(informative) == 1, f"{asset}: tables of one transaction disagree: {per_table}"
        state[asset] = informative.pop()
    return state


# --------------------------------------------------------------------------------------------------
# 1. SIGKILL midway
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_sigkill_midway_leaves_whole_partitions_and_a_rerun_completes(world, dialect, tmp_path):
    with _warehouse(dialect, tmp_path) as url:
        worker = _spawn(url, tmp_path, KILLED)  # loads Dagster while the warehouse is prepared
        _copy_warehouse(world.pre_url, url)
        engine = get_engine(url)
        others_before = _read_all(engine, OTHERS)
        market_before = {t.name: read_table(engine, t) for t in (schema.market_prices, schema.security_returns)}
        with engine.connect() as conn:
            assert all(_count(conn, t, KILLED) == 0 for t in TABLES)

        # -- kill 1: a fresh run, killed once an early asset has committed and a late one has not ------
        _go(worker)
        deadline = time.monotonic() + 150
        while True:
            assert worker.proc.poll() is None, "the run ended before it could be killed midway:\n" + worker.output()
            assert time.monotonic() < deadline, "the run never reached its middle:\n" + worker.output()
            with engine.connect() as conn:
                early = _count(conn, schema.position_valuations, KILLED)
                late = _count(conn, schema.stress_results, KILLED)
            if early and not late:
                break
            time.sleep(0.02)
        _sigkill(worker, engine)

        state = _state_of_killed(engine, world.reference)
        complete = [a for a, s in state.items() if s == "complete"]
        untouched = [a for a, s in state.items() if s == "untouched"]
        REPORT_LOG.append(
            f"{dialect} kill 1 (fresh run): {len(complete)} assets complete x {len(SESSIONS)} sessions = "
            f"{len(complete) * len(SESSIONS)} partitions {complete}; {len(untouched)} assets untouched = "
            f"{len(untouched) * len(SESSIONS)} partitions {untouched}"
        )
        assert "position_valuations" in complete and "stress_results" in untouched
        # What was committed before the kill is already final: the never-killed numbers.
        for asset in complete:
            for table in ASSET_TABLES[asset]:
                _assert_same_numbers(_read(engine, table, [KILLED]), _of(world.reference[table.name], KILLED),
                                     f"{dialect} committed before kill:{table.name}")
        _assert_unchanged(others_before, _read_all(engine, OTHERS), f"{dialect} other portfolios after kill 1")
        _assert_unchanged(market_before, {t: read_table(engine, getattr(schema, t)) for t in market_before},
                          f"{dialect} market after kill 1")

        # -- rerun in-process: completes the window, same numbers as the never-killed reference -----------
        marker = tmp_path / "paused.json"
        table = schema.factor_regression_windows  # third of the four tables factor_exposures writes at once
        worker = _spawn(url, tmp_path, KILLED, "--pause-after-delete", table.name, "--marker", str(marker))
        result = orch.materialize_portfolio(world.instance, KILLED, START, END, defs=world.defs,
                                            selection=_selection(world.defs), resources=_resources(world.defs, url))
        assert result.success
        assert all(ev.passed for ev in result.get_asset_check_evaluations() if ev.severity == dg.AssetCheckSeverity.ERROR)
        _assert_equals_reference(engine, world.reference, PORTFOLIOS, f"{dialect} after rerun")

        # -- kill 2: a rerun killed INSIDE factor_exposures' transaction, right after one of its DELETEs ----
        before = _read_all(engine)
        _go(worker)
        deadline = time.monotonic() + 150
        while not marker.exists():
            assert worker.proc.poll() is None, "the worker ended before its pause point:\n" + worker.output()
            assert time.monotonic() < deadline, "the worker never reached its pause point:\n" + worker.output()
            time.sleep(0.02)
        paused = json.loads(marker.read_text())
        assert paused["statement"].startswith(f"DELETE FROM {table.name}")
        # The delete is done but not committed: another connection still sees the previous rows.
        with engine.connect() as conn:
            assert _count(conn, table, KILLED) == len(SESSIONS)
            if engine.dialect.name == "postgresql":
                states = conn.execute(sa.text("SELECT state FROM pg_stat_activity WHERE application_name = :n"),
                                      {"n": worker.app_name}).scalars().all()
                assert "idle in transaction" in states, states
        _sigkill(worker, engine)
        _assert_unchanged(before, _read_all(engine), f"{dialect} after a kill inside a transaction")
        REPORT_LOG.append(
            f"{dialect} kill 2 (rerun, inside the factor_exposures transaction after `{paused['statement']}`): "
            f"all {len(ASSET_TABLES) * len(SESSIONS)} partitions of {KILLED} intact (previous rows), "
            f"{len(_of(before[table.name], KILLED))} deleted {table.name} rows back"
        )

        # The warehouse takes writes again (no lock left behind) and the result is still the reference.
        result = orch.materialize_portfolio(world.instance, KILLED, START, END, defs=world.defs,
                                            selection=[dg.AssetKey("factor_exposures")],
                                            resources=_resources(world.defs, url))
        assert result.success
        _assert_equals_reference(engine, world.reference, PORTFOLIOS, f"{dialect} final")
        engine.dispose()


# --------------------------------------------------------------------------------------------------
# 2. Four runs at once on PostgreSQL
# --------------------------------------------------------------------------------------------------
def test_four_concurrent_portfolio_runs_on_postgresql(world, tmp_path):
    with throwaway_postgres_database() as url:
        _copy_warehouse(world.base_url, url)
        engine = get_engine(url)
        workers = {pid: _spawn(url, tmp_path, pid) for pid in PORTFOLIOS}
        try:
            _go(*workers.values())  # all four runs start now
            deadline = time.monotonic() + 150  # a deadlock that PostgreSQL does not break fails here, not hangs
            for pid, w in workers.items():
                try:
                    w.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pytest.fail(f"{pid}: run still going after 150 s (deadlock or hang):\n{w.output()}")
        finally:
            for w in workers.values():
                if w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait()
        for pid, w in workers.items():
            assert "deadlock" not in w.output().lower(), f"{pid}:\n{w.output()}"
            assert w.proc.returncode == 0, f"{pid} failed:\n{w.output()}"
        runs = {pid: json.loads(w.out.read_text().strip().splitlines()[-1]) for pid, w in workers.items()}
        assert all(r["success"] for r in runs.values())
        # The four runs really overlapped in time.
        assert max(r["started"] for r in runs.values()) < min(r["finished"] for r in runs.values())
        t0 = min(r["started"] for r in runs.values())
        REPORT_LOG.append("concurrent runs (s from the common start): " + ", ".join(
            f"{pid} {r['started'] - t0:.1f}..{r['finished'] - t0:.1f}" for pid, r in runs.items()))
        with engine.connect() as conn:
            deadlocks = conn.execute(sa.text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")).scalar()
        assert deadlocks == 0

        for table in TABLES:
            got = _read(engine, table)
            assert not got.duplicated([c.name for c in table.primary_key.columns]).any(), table.name
            for pid in PORTFOLIOS:
                counts = _per_session_counts(_of(got, pid))
                assert counts == _per_session_counts(_of(world.reference[table.name], pid)), (table.name, pid, counts)
                rule = EXPECTED_PER_SESSION.get(table.name)
                if rule:
                    assert counts == [rule(POSITIONS[pid])] * len(SESSIONS), (table.name, pid, counts)
            assert len(got) == len(world.reference[table.name]), table.name  # nothing outside the window either
        _assert_equals_reference(engine, world.reference, PORTFOLIOS, "concurrent")
        engine.dispose()


# --------------------------------------------------------------------------------------------------
# 3. yfinance: timeouts, then a partial answer
# --------------------------------------------------------------------------------------------------
MISSING, PARTIAL = "SIZE", "^IRX"  # SIZE: no value at all; ^IRX: no value on the first date
YF_DATES = ("2025-06-12", "2025-06-13")
TIMEOUTS = 2


def _price(symbol: str, date: pd.Timestamp) -> float:
    return round(50.0 + (sum(map(ord, symbol)) % 97) + date.day / 8, 4)


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open an internet socket (the test must never reach Yahoo)."""
    attempts = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(real):
        def connect(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                attempts.append(address)
                raise OSError(f"network access blocked in tests: {address}")
            return real(self, address)
        return connect

    monkeypatch.setattr(socket.socket, "connect", guard(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(real_connect_ex))
    yield attempts
    assert attempts == [], f"tried to reach the network: {attempts}"


def test_yfinance_timeouts_then_partial_answer(monkeypatch, no_network, sqlite_url, sqlite_engine):
    calls: list[dict] = []
    sleeps: list[float] = []

    def download(**kw):
        """yfinance.download stand-in: times out, then answers like yfinance 1.x, with gaps."""
        calls.append(kw)
        if len(calls) <= TIMEOUTS:
            raise TimeoutError("Read timed out. (read timeout=10)")
        tickers = list(kw["tickers"])
        days = pd.bdate_range(kw["start"], pd.Timestamp(kw["end"]) - pd.Timedelta(days=1))
        # A trailing row of NaN (yfinance's row for a day without data yet), on the exclusive end date.
        index = pd.DatetimeIndex([*days, pd.Timestamp(kw["end"])], name="Date")
        fields = ["Close", "High", "Low", "Open", "Volume"]
        cols = pd.MultiIndex.from_product([fields, tickers], names=["Price", "Ticker"])
        frame = pd.DataFrame(np.nan, index=index, columns=cols)
        for t in tickers:
            for d in days:
                if t == MISSING or (t == PARTIAL and d == pd.Timestamp(YF_DATES[0])):
                    continue
                p = _price(t, d)
                frame.loc[d, [("Close", t), ("High", t), ("Low", t), ("Open", t), ("Volume", t)]] = [p, p + 1, p - 1, p, 1e6]
        return frame

    real_get_source = marketdata_sources.get_source

    def get_source(name=None, **options):  # the configured source, with the stand-in downloader and no waiting
        # (and stand-ins for the split history and Ticker.info the asset also reads: no split, no info)
        return real_get_source(name, download=download, sleep=sleeps.append,
                               splits=lambda s: pd.Series(dtype=float), info=lambda s: {}, **options)

    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "yfinance")
    monkeypatch.setattr(marketdata_sources, "get_source", get_source)

    result = dg.materialize(
        [market_prices],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(database_url=sqlite_url), "market_data": MarketDataResource()},
        tags={orch.RANGE_START_TAG: YF_DATES[0], orch.RANGE_END_TAG: YF_DATES[1]},
    )
    assert result.success

    symbols = universe([])  # no portfolio imported: the factor ETFs and the two yields
    assert MISSING in symbols and PARTIAL in symbols
    # 2 timeouts + 1 answer for the batch, then MISSING alone: 3 answers without a value for it.
    assert len(calls) == TIMEOUTS + 1 + 3
    assert calls[TIMEOUTS]["tickers"] == symbols and [c["tickers"] for c in calls[-3:]] == [[MISSING]] * 3
    assert sleeps == [1.0, 2.0, 1.0, 2.0]  # exponential backoff, between attempts only
    assert all(c["auto_adjust"] is True and c["start"] == YF_DATES[0] and c["end"] == "2025-06-14" for c in calls)

    mats = result.asset_materializations_for_node("market_prices")
    assert len(mats) == 2  # one per date partition
    md = mats[0].metadata
    assert md["source"].value == "yfinance"
    assert md["run_download_attempts"].value == len(calls) > 1
    assert md["run_symbols_missing"].value == MISSING
    # Each date partition shows its own rows: every symbol but MISSING, and PARTIAL only on the second date.
    rows = {m.partition: m.metadata["dagster/row_count"].value for m in mats}
    assert rows == {YF_DATES[0]: len(symbols) - 2, YF_DATES[1]: len(symbols) - 1}

    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "universe_priced" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    incomplete = check.metadata["symbols_incomplete"].value
    assert f"{MISSING} (2 sessions missing)" in incomplete and f"{PARTIAL} (1 sessions missing)" in incomplete
    assert all(s not in incomplete for s in symbols if s not in (MISSING, PARTIAL))

    stored = read_table(sqlite_engine, schema.market_prices)
    want = sorted(
        (d, s) for d in YF_DATES for s in symbols
        if s != MISSING and not (s == PARTIAL and d == YF_DATES[0])
    )
    assert sorted(zip(stored.date.dt.strftime("%Y-%m-%d"), stored.symbol)) == want
    assert (stored.source == "yfinance").all()
    for r in stored.itertuples():
        assert r.close == pytest.approx(_price(r.symbol, r.date), abs=1e-9)
