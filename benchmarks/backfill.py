"""Scale benchmark: backfill a window through Dagster, on SQLite and on PostgreSQL.

For each (dialect, scenario) it builds a fresh warehouse (a temp SQLite file, or a throwaway PostgreSQL
database that is dropped at the end, also on failure) and a fresh Dagster instance, imports the portfolios
through ``orchestration.import_portfolio`` (one ``portfolio_positions`` run each), then times the phases
the way ``orchestration.run_window`` runs them:

* market      one ranged run: ``market_prices`` + ``security_returns`` over the history and the window;
* portfolios  one ranged run per portfolio over the window (what a single-run backfill policy creates),
              ``--workers`` at a time;
* sql         one run rebuilding the SQL models (staging views, marts) and their tests.

Scenarios: ``demo`` = the three demo books; ``generated`` = N deterministic random books of M positions
(stocks and ETFs drawn from a fixed universe of ~150 real-looking tickers, which the sample source prices
from hashed parameters, plus a few options on SPY / QQQ / AAPL with strikes near the sample price),
written as upload CSV text and imported like any upload.

It prints wall time per phase, the runs recorded by the instance, the rows in the warehouse afterwards
(every table, SQL-model marts included), and seconds per (portfolio, session) partition of the portfolio
phase, with the first and last tenth of the portfolio runs side by side (the cost should stay flat as
portfolios are added), the portfolio phase split by step (Dagster's step stats), and the CPU time of the
process next to the wall time with the load average (on a shared machine wall time is inflated).
``--profile`` reruns the last portfolio over the last ``--profile-sessions`` weekdays under cProfile (after
the counts, outside the timings) and prints the top cumulative entries and where the time goes (Dagster
event writes, SQL reads, stress engine, report rendering, ...).

Dagster instance (``--instance``): ``sqlite`` (the default: a temp DAGSTER_HOME with SQLite run/event
storage, the event log configured as in ``deploy/dagster-local.yaml``, as ``make demo`` and a local deployment
record events), ``postgresql`` (dagster-postgres storage in a
throwaway database, as ``dagster.yaml`` configures production) or ``ephemeral`` (in memory: no event-storage
cost). The instance is printed with the results: event writes cost real time per partition on a persistent
instance. On a persistent instance the portfolio runs go ``--workers`` at a time in worker processes
(``orchestration.materialize_portfolios``, as ``sigmasight demo`` / ``backfill`` run them); an in-memory
instance cannot be shared between processes, so there they run one after another.

    python benchmarks/backfill.py --quick
    python benchmarks/backfill.py --scenario demo
    python benchmarks/backfill.py --scenario generated --portfolios 100 --start 2025-06-02 --end 2025-06-30
    python benchmarks/backfill.py --dialect sqlite --profile
    python benchmarks/backfill.py --scenario demo --instance ephemeral --workers 1
    python benchmarks/backfill.py --scenario demo --instance postgresql

Environment: ``SIGMASIGHT_DATABASE_URL``, ``SIGMASIGHT_MARKET_DATA=sample``, ``SIGMASIGHT_REPORTS_DIR`` and
``SIGMASIGHT_HOME`` are set per case (to temp locations) before any run; the resources read them at run
time. ``SIGMASIGHT_BENCH_POSTGRES_URL`` overrides the PostgreSQL server (default the local one, trust auth);
throwaway databases are named ``sigmasight_bench_<random>`` and dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field

DEMO_START = "2025-01-02"
DEMO_END = "2025-06-30"
QUICK_START = "2025-06-16"
QUICK_END = "2025-06-27"
QUICK_PORTFOLIOS = 10
DEMO_TARGET_SECONDS = 60.0  # the demo window for the demo books, on a 2-core machine
PG_ADMIN_URL = os.environ.get("SIGMASIGHT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

#: Stocks and ETFs a generated book draws from: real symbols across sectors (the sample source prices any
#: symbol; the ones outside its demo universe get hashed loadings and a level of 20-400).
UNIVERSE: tuple[str, ...] = (
    # technology and communication
    "AAPL", "MSFT", "NVDA", "GOOGL", "META", "AMZN", "AVGO", "ORCL", "CRM", "ADBE", "AMD", "INTC", "CSCO", "QCOM",
    "TXN", "IBM", "NOW", "INTU", "AMAT", "MU", "LRCX", "KLAC", "ADI", "SNPS", "CDNS", "PANW", "CRWD", "FTNT",
    "NFLX", "DIS", "CMCSA", "T", "VZ", "TMUS", "SHOP", "UBER", "ABNB", "PYPL", "SQ", "ZM", "ROKU", "SNOW", "DDOG",
    "MDB", "NET", "PLTR",
    # financials
    "JPM", "BAC", "WFC", "C", "GS", "MS", "SCHW", "BLK", "AXP", "V", "MA", "COF", "USB", "PNC", "BRK-B", "CB",
    "MMC", "PGR", "SPGI", "ICE",
    # health care
    "JNJ", "UNH", "PFE", "MRK", "ABBV", "LLY", "TMO", "ABT", "DHR", "BMY", "AMGN", "GILD", "CVS", "CI", "MDT",
    "ISRG", "VRTX", "REGN", "ZTS", "HCA",
    # consumer
    "TSLA", "HD", "LOW", "MCD", "SBUX", "NKE", "TGT", "COST", "WMT", "PG", "KO", "PEP", "PM", "MO", "CL", "EL",
    "F", "GM", "BKNG", "MAR", "PTON", "LULU", "CMG", "YUM",
    # industrials, energy, materials, utilities, real estate
    "GE", "CAT", "DE", "HON", "UPS", "FDX", "BA", "LMT", "RTX", "NOC", "MMM", "UNP", "CSX", "ETN", "XOM", "CVX",
    "COP", "SLB", "EOG", "OXY", "LIN", "APD", "FCX", "NEM", "NEE", "DUK", "SO", "D", "AMT", "PLD", "EQIX", "O",
    # ETFs
    "SPY", "QQQ", "IWM", "DIA", "VTI", "VOO", "EFA", "EEM", "TLT", "IEF", "HYG", "LQD", "BND", "GLD", "SLV",
    "XLE", "XLF", "XLK", "XLV", "VNQ",
)
OPTION_UNDERLYINGS: tuple[str, ...] = ("SPY", "QQQ", "AAPL")


# ------------------------------------------------------------------------------------------------------
# Environment (before anything loads the definitions)
# ------------------------------------------------------------------------------------------------------

def _prepare_process_env(start: str) -> None:
    """Quiet warnings; make sure the date partitions reach back to the market history of ``start``."""
    import pandas as pd

    warnings.filterwarnings("ignore")
    os.environ.setdefault("SIGMASIGHT_MARKET_DATA", "sample")
    # as the Makefile and docker-compose.yml configure it: batched event writes on a PostgreSQL instance
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
    # The date x portfolio partitions start at the window (the market ones 160 sessions earlier), and end with
    # it, as `make demo` configures the demo.
    if pd.Timestamp(start) < pd.Timestamp(os.environ.get("SIGMASIGHT_PARTITION_START", "2025-01-02")):
        os.environ["SIGMASIGHT_PARTITION_START"] = start


@contextlib.contextmanager
def _case_env(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def warehouse_url(dialect: str, workdir: str):
    """A fresh, empty warehouse: a SQLite file in ``workdir`` or a throwaway PostgreSQL database."""
    if dialect == "sqlite":
        url = f"sqlite:///{os.path.join(workdir, 'warehouse.db')}"
        try:
            yield url
        finally:
            _dispose(url)
        return
    from sigmasight_pipeline.warehouse.scratch import throwaway_postgres_database

    with throwaway_postgres_database(PG_ADMIN_URL, "sigmasight_bench") as url:
        try:
            yield url
        finally:
            _dispose(url)


def _dispose(url: str) -> None:
    from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine

    with contextlib.suppress(Exception):
        get_engine(url).dispose()
    dispose_engines()


LOCAL_INSTANCE_YAML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "dagster-local.yaml")


def local_event_log_storage(home: str) -> dict:
    """The ``event_log_storage`` block of the local instance (``deploy/dagster-local.yaml``, what ``make demo``
    records into) with its ``base_dir`` set to ``home``; empty when that file configures none (Dagster's
    default storage)."""
    import yaml

    with open(LOCAL_INSTANCE_YAML, encoding="utf-8") as f:
        block = (yaml.safe_load(f) or {}).get("event_log_storage")
    if not block:
        return {}
    return {"event_log_storage": {**block, "config": {**(block.get("config") or {}), "base_dir": home}}}


@contextlib.contextmanager
def dagster_instance(kind: str, workdir: str):
    """A fresh Dagster instance: ``ephemeral`` (in memory, cheapest), ``sqlite`` (SQLite run/event storage in
    a temp DAGSTER_HOME, the event log as ``deploy/dagster-local.yaml`` configures it, as the local deployment
    records events) or ``postgresql`` (dagster-postgres run,
    event and schedule storage in a throwaway database, as ``dagster.yaml`` configures production)."""
    import dagster as dg

    if kind == "ephemeral":
        instance = dg.DagsterInstance.ephemeral()
        try:
            yield instance
        finally:
            instance.dispose()
        return
    home = os.path.join(workdir, "dagster_home")
    os.makedirs(home, exist_ok=True)
    if kind == "sqlite":
        overrides = {"telemetry": {"enabled": False}, **local_event_log_storage(home)}
        instance = dg.DagsterInstance.local_temp(tempdir=home, overrides=overrides)
        try:
            yield instance
        finally:
            instance.dispose()
        return
    import sqlalchemy as sa

    from sigmasight_pipeline.warehouse.scratch import throwaway_postgres_database

    with throwaway_postgres_database(PG_ADMIN_URL, "sigmasight_bench_dagster") as pg_url:
        url = sa.engine.make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
        instance = dg.DagsterInstance.local_temp(tempdir=home, overrides={"storage": {"postgres": {"postgres_url": url}}, "telemetry": {"enabled": False}})
        try:
            yield instance
        finally:
            instance.dispose()


# ------------------------------------------------------------------------------------------------------
# Portfolios
# ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Book:
    portfolio_id: str
    name: str
    owner: str
    csv_text: str
    filename: str


def demo_books() -> list[Book]:
    from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text

    return [Book(b.portfolio_id, b.name, b.owner, demo_csv_text(b), b.csv_file) for b in DEMO_BOOKS]


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def generated_books(n: int, positions: int, start: str, end: str, seed: int = 7) -> list[Book]:
    """``n`` deterministic books of ``positions`` positions as upload CSV text.

    Stocks/ETFs are drawn without replacement from :data:`UNIVERSE` (about 1 in 5 short), sized to
    $20k-$250k at the sample close on their entry date (a 2024 session before the window). A few options
    (1 per 15 positions, at most 3) on SPY / QQQ / AAPL: strike within +-10 % of the sample close before the
    window (rounded to 5), expiring on the third Friday 1-6 months after the window, long or written.
    """
    import numpy as np
    import pandas as pd

    from sigmasight_pipeline.marketdata import calendar as xcal
    from sigmasight_pipeline.marketdata.sample import SampleSource

    n_options = min(3, positions // 15)
    n_stocks = positions - n_options
    if n_stocks > len(UNIVERSE):
        raise SystemExit(f"--positions {positions}: at most {len(UNIVERSE) + n_options} (universe of {len(UNIVERSE)})")
    source = SampleSource()
    window_start = pd.Timestamp(start)
    entry_sessions = xcal.sessions_in_range(window_start - pd.Timedelta(days=330), window_start - pd.Timedelta(days=10))
    spot = {u: float(source.series(u).asof(xcal.previous_session(window_start))) for u in OPTION_UNDERLYINGS}
    end_ts = pd.Timestamp(end)
    rng = np.random.default_rng(seed)
    books = []
    for i in range(1, n + 1):
        lines = ["ticker,quantity,entry_price,entry_date,tags"]
        for sym in rng.choice(UNIVERSE, size=n_stocks, replace=False):
            entry = entry_sessions[rng.integers(len(entry_sessions))]
            price = float(source.series(str(sym)).loc[entry])
            qty = max(1, int(round(rng.uniform(20_000, 250_000) / price)))
            short = rng.random() < 0.2
            tag = "Short Book" if short else "Long Book"
            lines.append(f"{sym},{-qty if short else qty},{price:.2f},{entry:%Y-%m-%d},{tag}")
        used = set()
        while len(used) < n_options:
            und = str(rng.choice(OPTION_UNDERLYINGS))
            strike = max(5, int(round(spot[und] * rng.uniform(0.9, 1.1) / 5.0)) * 5)
            month = end_ts.to_period("M") + int(rng.integers(1, 7))
            expiry = _third_friday(month.year, month.month)
            cp = "C" if rng.random() < 0.5 else "P"
            occ = f"{und}{expiry:%y%m%d}{cp}{strike * 1000:08d}"
            if occ in used:
                continue
            used.add(occ)
            written = rng.random() < 0.4
            contracts = int(rng.integers(5, 51))
            entry = entry_sessions[-1 - int(rng.integers(0, 40))]
            premium = spot[und] * rng.uniform(0.015, 0.05)
            lines.append(
                f"{occ},{-contracts if written else contracts},{premium:.2f},{entry:%Y-%m-%d},Options Overlay"
            )
        pid = f"gen-{i:03d}"
        books.append(Book(pid, f"Generated Book {i:03d}", f"{pid}@bench.sigmasight", "\n".join(lines) + "\n", f"{pid}.csv"))
    return books


# ------------------------------------------------------------------------------------------------------
# One case
# ------------------------------------------------------------------------------------------------------

@dataclass
class CaseResult:
    dialect: str
    scenario: str
    instance: str
    portfolios: int
    positions: int = 0
    sessions: int = 0
    weekdays: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of this process (user + system)
    load: list[float] = field(default_factory=list)  # 1-minute load average, sampled at each phase's end
    runs: int = 0
    rows: int = 0
    rows_by_table: dict[str, int] = field(default_factory=dict)
    portfolio_run_seconds: list[float] = field(default_factory=list)
    step_runs: list[dict[str, float]] = field(default_factory=list)  # per portfolio run: step -> seconds
    failed_runs: list[str] = field(default_factory=list)
    workers: int = 1  # portfolio runs at once
    failed_checks: set[str] = field(default_factory=set)
    error: str | None = None
    profile: str | None = None

    @property
    def partitions(self) -> int:
        """(portfolio, session) partitions computed: failed portfolio runs are left out."""
        return (self.portfolios - len(self.failed_runs)) * self.sessions

    @property
    def wall(self) -> float:
        return sum(self.phases.values())

    @property
    def step_seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for run in self.step_runs:
            for k, v in run.items():
                out[k] = out.get(k, 0.0) + v
        return out

    def seconds_per_partition(self) -> float | None:
        """Throughput: wall time of the portfolio phase / the partitions it computed (runs may overlap)."""
        if "portfolios" not in self.phases or not self.partitions:
            return None
        return self.phases["portfolios"] / self.partitions

    def run_seconds_per_partition(self, runs: list[float]) -> float | None:
        """Cost inside one run: its own wall time / its sessions, averaged over ``runs``."""
        if not runs or not self.sessions:
            return None
        return sum(runs) / (len(runs) * self.sessions)

    def cpu_per_partition(self) -> float | None:
        if "portfolios" not in self.cpu or not self.partitions:
            return None
        return self.cpu["portfolios"] / self.partitions


def _short_error(exc: BaseException) -> str:
    """One or a few lines saying what failed, never a traceback wall."""
    from sigmasight_pipeline.runner import RunFailedError

    if isinstance(exc, RunFailedError):
        return f"run {exc.run_id} failed: " + ("; ".join(exc.failures) or "no step failure recorded")
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        clines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
        if clines and clines[0] not in text:
            text += f" (caused by {type(cause).__name__}: {clines[0]})"
    return text


def _collect_checks(result, into: set[str]) -> None:
    from sigmasight_pipeline.runner import check_results

    checks = result if isinstance(result, dict) else check_results(result)
    into.update(name for name, passed in checks.items() if not passed)


def _count_rows(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from sigmasight_pipeline.warehouse.io import get_engine

    engine = get_engine(url)
    names = sa.inspect(engine).get_table_names()
    counts = {}
    with engine.connect() as conn:
        for name in sorted(names):
            counts[name] = int(conn.execute(sa.text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one())
    return counts


def _step_durations(instance, run_id: str) -> dict[str, float]:
    return {
        stat.step_key: stat.end_time - stat.start_time
        for stat in instance.get_run_step_stats(run_id)
        if stat.start_time and stat.end_time
    }


def _live_descendants_cpu(pid: int | None = None) -> float:
    """CPU seconds of the live (or not yet reaped) descendants of ``pid`` (default this process), with the
    children they reaped: the worker processes of parallel runs are forked by multiprocessing's fork server,
    a child of this process that lives until it exits, so ``os.times`` alone would not see them. Linux /proc
    only (0 elsewhere)."""
    pid = os.getpid() if pid is None else pid
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    children = set()
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children.update(int(c) for c in f.read().split())
        except OSError:
            continue
    for child in children:
        try:
            with open(f"/proc/{child}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])  # stat fields 14-17
        total += (utime + stime + cutime + cstime) / tick + _live_descendants_cpu(child)
    return total


class _Phase:
    """Wall and CPU time of one phase, stored into the result when the block ends (also on failure)."""

    def __init__(self, res: CaseResult, name: str):
        self.res, self.name = res, name

    @staticmethod
    def _cpu() -> float:
        t = os.times()  # this process and its finished (reaped) children
        return t.user + t.system + t.children_user + t.children_system + _live_descendants_cpu()

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc):
        self.res.phases[self.name] = time.perf_counter() - self.t0
        self.res.cpu[self.name] = self._cpu() - self.c0
        self.res.load.append(os.getloadavg()[0])
        return False


def run_case(dialect: str, scenario: str, books: list[Book], args, defs) -> CaseResult:
    import pandas as pd
    from tqdm import tqdm

    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.marketdata import calendar as xcal

    res = CaseResult(dialect, scenario, args.instance, len(books))
    res.sessions = len(xcal.sessions_in_range(args.start, args.end))
    res.weekdays = len(pd.bdate_range(args.start, args.end))
    res.positions = sum(max(0, b.csv_text.strip().count("\n")) for b in books)
    label = f"[{dialect}/{scenario}]"
    workdir = tempfile.mkdtemp(prefix=f"sigmasight_bench_{dialect}_{scenario}_")
    try:
        with warehouse_url(dialect, workdir) as url, _case_env(
            {
                "SIGMASIGHT_DATABASE_URL": url,
                "SIGMASIGHT_MARKET_DATA": "sample",
                "SIGMASIGHT_REPORTS_DIR": os.path.join(workdir, "reports"),
                "SIGMASIGHT_HOME": os.path.join(workdir, "home"),
            }
        ), dagster_instance(args.instance, workdir) as instance:
            tqdm.write(
                f"{label} warehouse {url.split('@')[-1] if dialect == 'postgresql' else url}; "
                f"Dagster instance: {args.instance}; {len(books)} portfolios, {res.positions} positions; "
                f"window {args.start} .. {args.end} ({res.sessions} sessions, {res.weekdays} weekday partitions)"
            )
            phase = "import"
            try:
                ids = []
                with _Phase(res, "import"):
                    for book in tqdm(books, desc=f"{label} import", unit="book", leave=False):
                        ids.append(
                            orch.import_portfolio(
                                instance, book.csv_text, name=book.name, owner=book.owner,
                                portfolio_id=book.portfolio_id, filename=book.filename, database_url=url, defs=defs,
                            )
                        )

                phase = "market"
                market_start = orch.market_history_start(args.start)
                tqdm.write(f"{label} market run {market_start:%Y-%m-%d} .. {args.end} (history + window)")
                with _Phase(res, "market"):
                    result = orch.materialize_market(instance, market_start, args.end, defs=defs)
                _collect_checks(result, res.failed_checks)

                phase = "portfolios"
                res.workers = 1 if args.instance == "ephemeral" else min(args.workers, len(ids))
                with _Phase(res, "portfolios"):
                    bar = tqdm(total=len(ids), desc=f"{label} portfolio runs ({res.workers} at a time)", unit="run", leave=False)
                    runs = orch.materialize_portfolios(instance, ids, args.start, args.end, defs=defs, workers=args.workers)
                    for run in runs:  # in the order they finish
                        bar.update(1)
                        if run.error is not None:
                            res.failed_runs.append(run.portfolio_id)
                            tqdm.write(f"{label} error: portfolio {run.portfolio_id}: {_short_error(run.error)}")
                            continue
                        res.portfolio_run_seconds.append(run.seconds)
                        bar.set_postfix_str(f"{run.seconds / max(res.sessions, 1):.3f} s/partition in its run")
                        _collect_checks(run.checks, res.failed_checks)
                        res.step_runs.append(_step_durations(instance, run.run_id))
                    bar.close()

                phase = "sql"
                if not args.no_sql:
                    tqdm.write(f"{label} SQL models run")
                    with _Phase(res, "sql"):
                        result = orch.materialize_sql_models(instance, defs=defs)
                    if result is not None:
                        _collect_checks(result, res.failed_checks)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a failing run: say what failed, keep going with the next case
                res.error = f"{phase}: {_short_error(exc)}"
                tqdm.write(f"{label} error in {phase}: {_short_error(exc)}")
                if args.traceback:
                    traceback.print_exc()
            res.runs = instance.get_runs_count()
            res.rows_by_table = _count_rows(url)
            res.rows = sum(res.rows_by_table.values())
            if args.profile and ids[-1:] and not res.error:
                res.profile = _profile_run(instance, ids[-1], args, defs, label)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # setup failures (PostgreSQL unreachable, ...)
        res.error = f"setup: {_short_error(exc)}"
        print(f"{label} error: {res.error}", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _print_case(res, label)
    return res


# ------------------------------------------------------------------------------------------------------
# Profiling
# ------------------------------------------------------------------------------------------------------

def _profile_run(instance, pid: str, args, defs, label: str) -> str:
    """cProfile a rerun of ``pid`` over the last ``--profile-sessions`` weekdays of the window (after the
    runs and rows were counted and outside the timings: a rerun writes the same rows)."""
    import pandas as pd

    from sigmasight_pipeline import runner as orch

    days = pd.bdate_range(args.start, args.end)[-args.profile_sessions:]
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    try:
        orch.materialize_portfolio(instance, pid, days[0], days[-1], defs=defs)
    except Exception as exc:
        profiler.disable()
        return f"{label} profiled run failed: {_short_error(exc)}"
    profiler.disable()
    wall = time.perf_counter() - t0
    if args.profile_out:
        path = f"{args.profile_out}.{label.strip('[]').replace('/', '_')}.prof"
        profiler.dump_stats(path)
    title = f"{label} rerun of portfolio {pid} over {days[0]:%Y-%m-%d} .. {days[-1]:%Y-%m-%d} ({len(days)} weekdays)"
    return _profile_report(profiler, args.profile_top, title, wall)


#: (label, path fragment, function name): inclusive (cumulative) time of the places the time may go.
HOTSPOTS: tuple[tuple[str, str, str], ...] = (
    ("Dagster: store events (handle_new_event)", "dagster/_core/instance", "handle_new_event"),
    ("Dagster: latest check results (failed_upstream_checks)", "sigmasight_pipeline/defs/reports", "failed_upstream_checks"),
    ("warehouse: SQL reads (read_frame, every caller)", "sigmasight_pipeline/warehouse/io", "read_frame"),
    ("  of which SQLAlchemy Row hasattr misses (pd.DataFrame(rows))", "sqlalchemy/engine/result", "_key_not_found"),
    ("warehouse: trailing market window (market_window)", "sigmasight_pipeline/warehouse/reads", "market_window"),
    ("warehouse: read_positions", "sigmasight_pipeline/warehouse/portfolios", "read_positions"),
    ("warehouse: write_partition (delete + insert)", "sigmasight_pipeline/warehouse/io", "write_partition"),
    ("engines: stress_test_range", "sigmasight_pipeline/engines/stress", "stress_test_range"),
    ("reports: load_report_input (SQL reads)", "sigmasight_pipeline/reporting", "load_report_input"),
    ("reports: build_report (Jinja2, JSON, CSV)", "sigmasight_pipeline/reporting", "build_report"),
    ("reports: prepublish_problems (checks, JSON Schema)", "sigmasight_pipeline/reporting", "prepublish_problems"),
    ("reports: render_charts (matplotlib, 3 PNGs)", "sigmasight_pipeline/reporting", "render_charts"),
    ("  of which stress_chart", "sigmasight_pipeline/reporting/charts", "stress_chart"),
    ("  of which factor_exposure_chart", "sigmasight_pipeline/reporting/charts", "factor_exposure_chart"),
    ("  of which cumulative_pnl_chart", "sigmasight_pipeline/reporting/charts", "cumulative_pnl_chart"),
    ("  of which savefig (PNG encode, bbox_inches=tight)", "sigmasight_pipeline/reporting/charts", "_png"),
    ("reports: write_report (files)", "sigmasight_pipeline/reporting", "write_report"),
)


#: Exclusive (own) time by library: where the CPU actually is. A builtin or C method (file "~") counts for
#: the library of the Python function that called it.
LIBRARIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sqlalchemy + DB driver (incl. sqlite3/psycopg C calls)", ("sqlalchemy/", "psycopg", "sqlite3")),
    ("dagster", ("dagster/", "dagster_shared/", "dagster_postgres/")),
    ("matplotlib / PIL (charts)", ("matplotlib/", "PIL/", "contourpy", "kiwisolver")),
    ("jinja2 / jsonschema", ("jinja2/", "jsonschema", "referencing/", "rpds", "markupsafe")),
    ("pandas / numpy / scipy / statsmodels", ("pandas/", "numpy/", "scipy/", "statsmodels/", "patsy/")),
    ("sigmasight_pipeline (own code)", ("sigmasight_pipeline/",)),
)


def _library(path: str) -> str:
    path = path.replace(os.sep, "/")
    return next((name for name, frags in LIBRARIES if any(x in path for x in frags)), "other (stdlib, ...)")


def _profile_report(profiler: cProfile.Profile, top: int, title: str, wall: float) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    out.write(f"\ncProfile of the {title}: {total:.2f} s profiled ({wall:.2f} s wall under the profiler)\n")
    stats.sort_stats("cumulative").print_stats(top)
    # The entries above are Dagster's execution wrappers; the project's own functions say more.
    out.write(f"Top {top} cumulative entries in sigmasight_pipeline (orchestration wrappers left out):\n")
    stats.print_stats(r"sigmasight_pipeline[/\\](?!orchestration)", top)
    raw = stats.stats  # type: ignore[attr-defined]

    out.write("Where the time goes (inclusive, calls):\n")
    for name, path, func in HOTSPOTS:
        hits = [(v[1], v[3]) for (f, _line, fn), v in raw.items() if path in f.replace(os.sep, "/") and fn == func]
        if hits:
            calls, cum = sum(h[0] for h in hits), max(h[1] for h in hits)
            out.write(f"  {name:<56} {cum:8.2f} s  {cum / total:6.1%}  ({calls} calls)\n")
    out.write("Own time by library (exclusive, sums to the total):\n")
    by_lib: dict[str, float] = {}
    for (f, _line, fn), v in raw.items():
        if f == "~" and v[4]:  # a builtin: split its own time over its callers' libraries
            for (cf, _cl, _cfn), cv in v[4].items():
                lib = _library(cf) if cf != "~" else "other (stdlib, ...)"
                by_lib[lib] = by_lib.get(lib, 0.0) + cv[2]
        else:
            lib = _library(f if f != "~" else fn)
            by_lib[lib] = by_lib.get(lib, 0.0) + v[2]
    for lib, secs in sorted(by_lib.items(), key=lambda kv: -kv[1]):
        out.write(f"  {lib:<56} {secs:8.2f} s  {secs / total:6.1%}\n")
    return out.getvalue()


# ------------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------------

def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _tenths(items: list) -> tuple[list, list]:
    k = max(1, len(items) // 10)
    return items[:k], items[-k:]


def _print_case(res: CaseResult, label: str) -> None:
    from tqdm import tqdm

    cpu = sum(res.cpu.values())
    lines = [
        f"{label} done: {res.wall:.1f} s wall ({cpu:.1f} s CPU in this process), {res.runs} runs, {res.rows:,} rows; "
        f"1-min load average at phase ends: {', '.join(f'{x:.1f}' for x in res.load) or '-'}"
    ]
    if res.rows_by_table:
        big = sorted(((n, c) for n, c in res.rows_by_table.items() if c), key=lambda kv: -kv[1])
        lines.append("  rows: " + ", ".join(f"{n} {c:,}" for n, c in big))
    runs = res.portfolio_run_seconds
    if runs:
        lines.append(
            f"  portfolio runs: mean {statistics.mean(runs):.2f} s, median {statistics.median(runs):.2f} s, "
            f"min {min(runs):.2f} s, max {max(runs):.2f} s"
        )
    steps = res.step_seconds
    if steps:
        total_steps = sum(steps.values())
        phase = sum(res.portfolio_run_seconds)  # the runs' own wall times (parallel runs overlap in the phase)
        n = max(len(res.step_runs), 1)
        lines.append("  portfolio phase by step (s per partition: all runs | first 10% of runs | last 10%):")
        first, last = _tenths(res.step_runs)
        for k, v in sorted(steps.items(), key=lambda kv: -kv[1]):
            f = sum(r.get(k, 0.0) for r in first) / (len(first) * res.sessions)
            l = sum(r.get(k, 0.0) for r in last) / (len(last) * res.sessions)
            lines.append(f"    {k:<24} {v / res.partitions:8.4f} | {f:8.4f} | {l:8.4f}   ({v / max(phase, 1e-9):5.1%})")
        outside = phase - total_steps
        lines.append(
            f"    {'outside steps':<24} {outside / res.partitions:8.4f}   ({outside / max(phase, 1e-9):5.1%}; "
            f"{outside / n:.2f} s per run: job build, planning, run/event storage, resources)"
        )
    if res.failed_checks:
        lines.append("  failed checks: " + ", ".join(sorted(res.failed_checks)))
    if res.failed_runs:
        lines.append(f"  failed portfolio runs: {len(res.failed_runs)} ({', '.join(res.failed_runs[:5])}...)")
    if res.error:
        lines.append(f"  ERROR {res.error}")
    tqdm.write("\n".join(lines))
    if res.profile:
        tqdm.write(res.profile)


def code_fingerprint() -> str:
    """Hash and newest change of the package's sources: the code under test (it may change between runs)."""
    import hashlib
    from pathlib import Path

    import sigmasight_pipeline

    root = Path(sigmasight_pipeline.__file__).parent
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".sql", ".j2", ".yaml", ".yml", ".json", ".csv", ".md"})
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    newest = max(files, key=lambda p: p.stat().st_mtime)
    when = dt.datetime.fromtimestamp(newest.stat().st_mtime, dt.timezone.utc)
    return f"sources sha256 {digest.hexdigest()[:12]}, newest {newest.relative_to(root)} at {when:%Y-%m-%d %H:%M:%S}Z"


def print_table(results: list[CaseResult], args) -> None:
    head = (
        "dialect", "scenario", "ports", "workers", "positions", "sessions", "partitions", "import s", "market s",
        "ports s", "sql s", "total s", "total CPU s", "runs", "rows", "s/partition", "first 10%", "last 10%",
        "CPU s/partition", "load", "status",
    )
    rows = []
    for r in results:
        first, last = _tenths(r.portfolio_run_seconds)
        problems = ([f"{len(r.failed_runs)} portfolio runs"] if r.failed_runs else []) + ([r.error] if r.error else [])
        status = ("FAILED " + "; ".join(problems))[:70] if problems else "ok"
        if r.scenario == "demo" and not r.error and (args.start, args.end) == (DEMO_START, DEMO_END):
            status += f" ({'meets' if r.wall < DEMO_TARGET_SECONDS else 'MISSES'} the 60 s target)"
        rows.append((
            r.dialect, r.scenario, str(r.portfolios), str(r.workers), str(r.positions), str(r.sessions),
            f"{r.partitions:,}", _fmt(r.phases.get("import")), _fmt(r.phases.get("market")),
            _fmt(r.phases.get("portfolios")), _fmt(r.phases.get("sql")), _fmt(r.wall),
            _fmt(sum(r.cpu.values()) if r.cpu else None), str(r.runs), f"{r.rows:,}",
            _fmt(r.seconds_per_partition(), ".3f"),
            _fmt(r.run_seconds_per_partition(first) if len(r.portfolio_run_seconds) >= 2 else None, ".3f"),
            _fmt(r.run_seconds_per_partition(last) if len(r.portfolio_run_seconds) >= 2 else None, ".3f"),
            _fmt(r.cpu_per_partition(), ".3f"),
            _fmt(statistics.mean(r.load) if r.load else None),
            status,
        ))
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(head)]
    right = lambda i: 2 <= i < len(head) - 1  # noqa: E731

    def line(cells) -> str:
        return "  ".join(c.rjust(w) if right(i) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print()
    print(
        f"Backfill benchmark: window {args.start} .. {args.end}, Dagster instance: {args.instance}, "
        f"{args.workers} worker(s), "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(f"code under test ({args.fingerprint})")
    print(line(head))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    print(
        "partitions = portfolios x XNYS sessions in the window (failed portfolio runs left out); workers = "
        "portfolio runs at once (worker processes; 1 on an ephemeral instance); s/partition = wall time of the "
        "portfolio phase / the partitions it computed (first/last 10% = each run's own wall time / its sessions, "
        "over the first and the last tenth of the runs to finish: flat means no slowdown as portfolios are added); "
        "CPU = CPU time of this process and its worker processes (and the fork server they start from; the PostgreSQL server's own CPU is not in it); load = mean 1-min load average (2 CPUs: "
        "above 2 means other processes shared the machine and wall times are inflated); runs = runs the instance "
        "recorded (imports, market, one per portfolio, SQL models); rows = rows in every warehouse table "
        "afterwards (reference data and SQL-model marts included)."
    )


# ------------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dialect", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--scenario", choices=("demo", "generated", "both"), default="both")
    p.add_argument("--portfolios", type=int, default=None, help="generated portfolios (default 100; 10 with --quick)")
    p.add_argument("--positions", type=int, default=50, help="positions per generated portfolio (default 50)")
    p.add_argument("--start", default=None, help=f"first date (default {DEMO_START}; {QUICK_START} with --quick)")
    p.add_argument("--end", default=None, help=f"last date (default {DEMO_END}; {QUICK_END} with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke run: a two-week window and 10 generated portfolios")
    p.add_argument("--instance", choices=("ephemeral", "sqlite", "postgresql"), default="sqlite",
                   help="Dagster instance: SQLite storage in a temp DAGSTER_HOME (the local deployment `make demo` "
                        "records into; the default), dagster-postgres storage in a throwaway database (dagster.yaml, "
                        "production), or in-memory (no event storage cost; runs one at a time)")
    p.add_argument("--workers", type=int, default=None,
                   help="portfolio runs at once (default: SIGMASIGHT_WORKERS, else one more than the CPUs, up to 4)")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated books")
    p.add_argument("--no-sql", action="store_true", help="skip the SQL-models run")
    p.add_argument("--profile", action="store_true",
                   help="cProfile a rerun of the last portfolio over the last --profile-sessions weekdays, per case")
    p.add_argument("--profile-sessions", type=int, default=5, help="weekdays of the profiled rerun (default 5)")
    p.add_argument("--profile-out", default=None, help="also dump the profiles to PREFIX.<dialect>_<scenario>.prof")
    p.add_argument("--profile-top", type=int, default=10, help="cumulative entries to print (default 10)")
    p.add_argument("--traceback", action="store_true", help="print the full traceback of a failure")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.start = args.start or (QUICK_START if args.quick else DEMO_START)
    args.end = args.end or (QUICK_END if args.quick else DEMO_END)
    args.portfolios = args.portfolios if args.portfolios is not None else (QUICK_PORTFOLIOS if args.quick else 100)
    if args.workers is None:
        from sigmasight_pipeline.runner import default_workers

        args.workers = default_workers()
    _prepare_process_env(args.start)

    from sigmasight_pipeline import runner as orch

    args.fingerprint = code_fingerprint()
    print(f"code under test: {args.fingerprint}", flush=True)
    defs = orch.load_definitions()
    dialects = ("sqlite", "postgresql") if args.dialect == "both" else (args.dialect,)
    scenarios = ("demo", "generated") if args.scenario == "both" else (args.scenario,)
    books = {
        "demo": demo_books,
        "generated": lambda: generated_books(args.portfolios, args.positions, args.start, args.end, seed=args.seed),
    }
    results = []
    try:
        for scenario in scenarios:
            scenario_books = books[scenario]()
            for dialect in dialects:
                results.append(run_case(dialect, scenario, scenario_books, args, defs))
    except KeyboardInterrupt:
        print("\ninterrupted; partial results:", file=sys.stderr)
    print_table(results, args)
    return 0 if results and all(not r.error and not r.failed_runs for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
