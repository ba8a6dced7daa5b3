"""The in-process range runner: what the CLI runs on a machine without a Dagster daemon (the demo, a laptop).

It runs the runs a single-run backfill would create: one ranged run of the market assets over the window
and the history behind it, one ranged run per portfolio over the window, then one run of the SQL models;
each recorded in the given Dagster instance (lineage, check results and the runs show in the UI). Portfolio
runs are independent, so on a persistent instance ``workers`` of them run at once, each in a worker process
(forked from a fork server that imported the pipeline once) that records into the same instance, as runs the
daemon launches do.

With a daemon running, none of this is needed: declarative automation and backfills launched from the UI
or its GraphQL API (``webserver_client``) run the same assets.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import string
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.operations.onboarding import onboard
from sigmasight_pipeline.defs.partitions import history_start, multi_key, portfolios, trading_days
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.run_tags import COVERS_TAG, RANGE_END_TAG, RANGE_START_TAG
from sigmasight_pipeline.warehouse.io import env_positive_int, get_engine


# A ranged run records one "materialization planned" event per asset instead of one per asset and partition
# (a Dagster switch read by its event log storage). On the SQLite instance each event costs ~8 ms, so this
# saves ~3 s per 100 partitions of a run; in exchange, partitions of a FAILED ranged run show as missing
# rather than failed in the UI (the CLI names the failure and exits 1). Runs the daemon launches keep the
# per-partition events.
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")

# The CLI prints its own progress; Dagster's per-event DEBUG lines stay in the run log the UI shows.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Concurrent runs of other partitions of the same assets make Dagster warn once per step that the asset's
# latest materialization (another portfolio's) differs from the step's own ("Data version mismatch"): that
# says nothing about the data. Parallel runs log errors only to the console; the run log keeps everything.
QUIET_PARALLEL = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def load_definitions() -> dg.Definitions:
    from sigmasight_pipeline.definitions import defs

    return defs()


def _keys(defs: dg.Definitions, keep: Callable) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable and keep(graph.get(k))]


def portfolio_asset_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """Assets partitioned by date x portfolio, in dependency order."""
    return _keys(defs, lambda node: isinstance(node.partitions_def, dg.MultiPartitionsDefinition))


def market_asset_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """Assets partitioned by trading date only (market prices, returns), in dependency order."""
    return _keys(defs, lambda node: node.partitions_def == trading_days)


def sql_model_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """The dbt_like_sql model assets (unpartitioned; rebuilt over the whole warehouse)."""
    return _keys(defs, lambda node: node.group_name == "sql_models")


class RunFailedError(RuntimeError):
    def __init__(self, run_id: str, failures: list[str]):
        self.run_id = run_id
        self.failures = failures
        super().__init__(f"run {run_id} failed: " + ("; ".join(failures) or "see the run in the Dagster UI"))

    def __reduce__(self):  # crosses process boundaries (parallel portfolio runs) with its fields
        return (type(self), (self.run_id, self.failures))


class WorkerDiedError(RuntimeError):
    """A worker process of :func:`materialize_portfolios` ended without finishing its run."""


def run(
    instance, selection, *, defs=None, tags=None, resources=None, partition_key=None, run_config=None
) -> dg.ExecuteInProcessResult:
    """One run of ``selection`` (with its checks) in this process, recorded in ``instance``; a failure raises
    :class:`RunFailedError` naming each failed step."""
    defs = defs or load_definitions()
    result = dg.materialize(
        assets=list(defs.assets or []) + list(defs.asset_checks or []),
        selection=list(selection),
        instance=instance,
        tags=dict(tags or {}),
        partition_key=partition_key,
        resources=resources or dict(defs.resources or {}),
        run_config=run_config or QUIET,
        raise_on_error=False,
    )
    if not result.success:
        failures = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip().splitlines()[0]}"
            for e in result.all_events
            if e.is_step_failure and e.event_specific_data and getattr(e.event_specific_data, "error", None)
        ]
        raise RunFailedError(result.run_id, failures)
    return result


def check_results(result: dg.ExecuteInProcessResult | None, *, warnings: bool = False) -> dict[str, bool]:
    """``asset.check -> passed`` for every check of ERROR severity a run evaluated (``warnings``: of WARN
    severity instead: a failed warning names something to look at, such as stress losses beyond a levered
    book's equity, and fails nothing)."""
    severity = dg.AssetCheckSeverity.WARN if warnings else dg.AssetCheckSeverity.ERROR
    out: dict[str, bool] = {}
    for ev in result.get_asset_check_evaluations() if result is not None else []:
        if ev.severity != severity:
            continue
        name = f"{ev.asset_key.to_user_string()}.{ev.check_name}"
        out[name] = out.get(name, True) and ev.passed
    return out


def weekday_keys(start, end) -> tuple[str, str]:
    """First and last weekday partition keys in [start, end]."""
    days = pd.bdate_range(pd.Timestamp(start), pd.Timestamp(end))
    if days.empty:
        raise ValueError(f"no weekday between {start} and {end}")
    return days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d")


def market_history_start(first_date) -> pd.Timestamp:
    """The first market session that computing from ``first_date`` needs: the ``HISTORY_SESSIONS`` (260) sessions
    of history behind it (the 250-session risk window and its first return's previous close), never before the
    first market partition."""
    return max(history_start(first_date), pd.Timestamp(trading_days.get_first_partition_key()))


def backfill_ranges(defs, portfolio_ids: Sequence[str], first, last, *, history: bool = True,
                    sql_models: bool = True) -> dict:
    """Asset key -> partition key ranges of an asset backfill over the weekdays of [first, last] for
    ``portfolio_ids``, as the UI's Materialize dialog sends them (``webserver_client.launch_backfill``): the market
    assets from the history behind the window (``history=False``: from ``first``), each portfolio's
    date x portfolio rectangle, and the SQL models whole (unpartitioned)."""
    first, last = weekday_keys(first, last)
    market_first = f"{market_history_start(first):%Y-%m-%d}" if history else first
    ranges: dict = {key: [(market_first, last)] for key in market_asset_keys(defs)}
    for key in portfolio_asset_keys(defs):
        ranges[key] = [(str(multi_key(first, p)), str(multi_key(last, p))) for p in portfolio_ids]
    if sql_models:
        ranges.update({key: [] for key in sql_model_keys(defs)})
    return ranges


def range_tags(first, last, label: str) -> dict[str, str]:
    """The tags of a ranged run: Dagster's range tags and what the run covers, for the Runs list."""
    return {RANGE_START_TAG: str(first), RANGE_END_TAG: str(last), COVERS_TAG: label}


def import_portfolio(
    instance: dg.DagsterInstance,
    csv: str | bytes,
    *,
    name: str,
    owner: str | None = None,
    portfolio_id: str | None = None,
    filename: str | None = None,
    database_url: str | None = None,
    defs: dg.Definitions | None = None,
) -> str:
    """The onboarding path (validate, store, add the partition) with its positions run executed here;
    returns the portfolio id. Validation errors raise before anything is stored."""
    defs = defs or load_definitions()
    done = onboard(get_engine(database_url), csv, name=name, owner=owner, portfolio_id=portfolio_id, filename=filename)
    instance.add_dynamic_partitions(done.add_partition.partitions_def_name, list(done.add_partition.partition_keys))
    resources = dict(defs.resources or {})
    if database_url:  # the run must write where the upload was stored
        resources["warehouse"] = WarehouseResource(database_url=database_url)
    request = done.run_request
    run(instance, request.asset_selection, defs=defs, tags=request.tags, resources=resources,
        partition_key=request.partition_key)
    return done.portfolio_id


def import_trades(
    instance: dg.DagsterInstance,
    portfolio_id: str,
    csv: str | bytes,
    *,
    filename: str | None = None,
    database_url: str | None = None,
    defs: dg.Definitions | None = None,
):
    """Store a trades file (all or nothing) and run the portfolio's positions here; returns the
    :class:`~sigmasight_pipeline.defs.operations.onboarding.TradesOnboarding`. The caller computes the
    affected dates (from the first trade date on): the positions run is tagged so that automation does not
    request the book's whole history again."""
    from sigmasight_pipeline.defs.automation import TRADES_WINDOW_TAG
    from sigmasight_pipeline.defs.operations.onboarding import onboard_trades

    defs = defs or load_definitions()
    done = onboard_trades(get_engine(database_url), portfolio_id, csv, filename=filename)
    if not instance.has_dynamic_partition(portfolios.name, done.portfolio_id):  # a book stored through another instance
        instance.add_dynamic_partitions(portfolios.name, [done.portfolio_id])
    resources = dict(defs.resources or {})
    if database_url:
        resources["warehouse"] = WarehouseResource(database_url=database_url)
    request = done.run_request
    run(instance, request.asset_selection, defs=defs, resources=resources, partition_key=request.partition_key,
        tags={**request.tags, TRADES_WINDOW_TAG: f"{done.first_trade_date:%Y-%m-%d}"})
    return done


def materialize_market(instance, start, end, *, defs=None, resources=None, tags=None) -> dg.ExecuteInProcessResult:
    """One run of the market assets for every weekday in [start, end]."""
    defs = defs or load_definitions()
    first, last = weekday_keys(start, end)
    return run(instance, market_asset_keys(defs), defs=defs, resources=resources,
               tags={**(tags or {}), **range_tags(first, last, f"market {first}..{last}")})


def materialize_portfolio(
    instance, portfolio_id: str, start, end, *, defs=None, selection: Sequence[dg.AssetKey] | None = None,
    resources=None, tags=None, run_config=None,
) -> dg.ExecuteInProcessResult | None:
    """One run of the date x portfolio assets (or ``selection``) of one portfolio over [start, end]."""
    defs = defs or load_definitions()
    selection = list(selection or portfolio_asset_keys(defs))
    if not selection:
        return None
    first, last = weekday_keys(start, end)
    tags = {**(tags or {}), **range_tags(multi_key(first, portfolio_id), multi_key(last, portfolio_id),
                                         f"{portfolio_id} {first}..{last}")}
    return run(instance, selection, defs=defs, tags=tags, resources=resources, run_config=run_config)


def materialize_sql_models(instance, *, defs=None, resources=None, tags=None) -> dg.ExecuteInProcessResult | None:
    """One run rebuilding every SQL model (staging views, marts) and running their model tests."""
    defs = defs or load_definitions()
    keys = sql_model_keys(defs)
    return run(instance, keys, defs=defs, resources=resources, tags={**(tags or {}), COVERS_TAG: "SQL models"}) if keys else None


class PortfolioRun(NamedTuple):
    """One finished portfolio run: its Dagster run id, wall seconds, check results, and the error if it failed."""

    portfolio_id: str
    run_id: str | None
    seconds: float
    checks: dict[str, bool]
    error: RunFailedError | None = None
    warnings: dict[str, bool] | None = None  # WARN-severity checks -> passed


def default_workers() -> int:
    """How many portfolio runs go at once: ``SIGMASIGHT_WORKERS``, else one more than the CPUs, at most 4.

    A run waits part of its time on the Dagster instance's and the warehouse's SQLite commits, so one extra
    process keeps the CPUs busy (the demo on 2 CPUs: 41-45 s with 3 workers, 47-50 s with 2); more would only
    queue on the writer locks."""
    return env_positive_int("SIGMASIGHT_WORKERS", max(1, min(4, (os.cpu_count() or 1) + 1)))


def _portfolio_run(instance, portfolio_id: str, start, end, defs, tags, run_config=None) -> PortfolioRun:
    started = time.perf_counter()
    try:
        result = materialize_portfolio(instance, portfolio_id, start, end, defs=defs, tags=tags, run_config=run_config)
    except RunFailedError as exc:
        return PortfolioRun(portfolio_id, exc.run_id, time.perf_counter() - started, {}, exc)
    return PortfolioRun(portfolio_id, result.run_id if result else None, time.perf_counter() - started,
                        check_results(result), warnings=check_results(result, warnings=True))


_WORKER: dict = {}  # per worker process: its definitions (loaded once) and the parent's stop event


def _worker_init(stop) -> None:
    # A Ctrl-C reaches the whole process group. Between runs a worker ignores it and checks the stop event
    # before starting a run; during a run Dagster's own handler interrupts the run and records it as failed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["stop"] = stop


#: What the fork server imports once, before it forks the first worker: the definitions (Dagster, pandas, every
#: engine) and the modules the reports import on first use. Workers forked from it start with them loaded
#: instead of importing them again each (~3 s CPU per worker on 2 CPUs).
WORKER_PRELOAD = (
    "sigmasight_pipeline.definitions",
    "sigmasight_pipeline.reporting.charts",
    "matplotlib.backends.backend_agg",
    "matplotlib.dates",
    "matplotlib.ticker",
    "fastjsonschema",
)


def _worker_context():
    """How worker processes start: from a fork server that imported :data:`WORKER_PRELOAD` once (a fresh process
    forked from it, not from this one: no engine, connection or thread of this process is inherited), else
    (where there is no fork server: Windows) spawned and importing everything themselves."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(WORKER_PRELOAD))  # read when the fork server starts (first pool)
        return context
    return multiprocessing.get_context("spawn")


def _run_in_worker(instance_ref, portfolio_id: str, start, end, tags, environ=None, cwd=None) -> PortfolioRun | None:
    if _WORKER["stop"].is_set():
        return None  # the backfill was interrupted while this run waited for its worker
    if environ is not None:
        # A forked worker has the environment and folder of the fork server, which started with the first pool of
        # this process: the resources read the caller's current ones (warehouse URL, reports folder, ...).
        os.environ.clear()
        os.environ.update(environ)
    if cwd is not None:
        os.chdir(cwd)
    if "defs" not in _WORKER:
        _WORKER["defs"] = load_definitions()
    defs = _WORKER["defs"]
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return _portfolio_run(instance, portfolio_id, start, end, defs, tags, QUIET_PARALLEL)


def materialize_portfolios(
    instance: dg.DagsterInstance, portfolio_ids: Sequence[str], start, end, *, defs=None, tags=None, workers=None,
) -> Iterator[PortfolioRun]:
    """One ranged run per portfolio over [start, end], ``workers`` at a time; yields each as it finishes.

    An in-memory instance cannot be shared between processes, so there the runs go one after another. A
    failed run does not stop the others: its ``PortfolioRun.error`` says what failed. Ctrl-C interrupts the
    runs in progress (recorded as failed, their open partition rolled back) and starts no other.
    """
    workers = default_workers() if workers is None else workers
    ids = list(portfolio_ids)
    if workers <= 1 or len(ids) <= 1 or instance.is_ephemeral:
        defs = defs or load_definitions()
        for pid in ids:
            yield _portfolio_run(instance, pid, start, end, defs, tags)
        return
    slots = min(workers, len(ids))
    context = _worker_context()
    stop = context.Event()
    pool = ProcessPoolExecutor(max_workers=slots, mp_context=context, initializer=_worker_init, initargs=(stop,))
    waiting, running = list(ids), {}
    try:
        ref = instance.get_ref()
        while waiting or running:
            # Submit only as many runs as there are workers: the pool would otherwise queue one more that no
            # cancel can stop, so a Ctrl-C would still start it.
            while waiting and len(running) < slots:
                pid = waiting.pop(0)
                running[pool.submit(_run_in_worker, ref, pid, start, end, tags, dict(os.environ), os.getcwd())] = pid
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            finished = []
            for future in done:
                pid = running.pop(future)
                try:
                    finished.append(future.result())
                except BrokenProcessPool as exc:
                    unfinished = ", ".join([pid, *running.values(), *waiting])
                    raise WorkerDiedError(
                        f"a worker process died (killed, or out of memory); portfolios not finished: {unfinished}. "
                        "Partitions already written are complete and an interrupted run's are rolled back: rerun the "
                        "same backfill"
                    ) from exc
            yield from finished
    except (KeyboardInterrupt, GeneratorExit):
        stop.set()
        _interrupt_runs(running)
        raise
    finally:
        stop.set()  # on an error or Ctrl-C, no worker starts another run; the parent waits for those running
        pool.shutdown(wait=True, cancel_futures=True)


def _interrupt_runs(running: dict) -> None:
    """Ctrl-C: interrupt the runs in progress the way Dagster interrupts an in-process run (SIGINT), so each is
    recorded as failed with its partitions rolled back. A worker still creating its run ignores SIGINT until
    Dagster's handler is installed, so repeat until all are done."""
    while any(not f.done() for f in running):
        for child in multiprocessing.active_children():  # the pool's worker processes
            try:
                os.kill(child.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        wait(running, timeout=1.0)


def run_window(
    instance: dg.DagsterInstance,
    portfolio_ids: Sequence[str],
    start,
    end,
    *,
    defs: dg.Definitions | None = None,
    with_history: bool = True,
    with_sql_models: bool = True,
    progress: Callable[[str], None] = print,
    on_run: Callable[[str], None] | None = None,
    tags: dict[str, str] | None = None,
    workers: int | None = None,
) -> dict:
    """Market data (with the history behind it), every portfolio's assets for [start, end], the SQL models.

    ``progress`` gets a line before each phase; ``on_run`` a label after each run. If a portfolio run fails,
    the other portfolios still finish, then :class:`RunFailedError` is raised (the SQL models are not rebuilt).
    Returns ``{"runs": [run ids], "checks": {check: passed}, "warnings": {check: passed}}`` (ERROR- and
    WARN-severity checks).
    """
    defs = defs or load_definitions()
    summary: dict = {"runs": [], "checks": {}, "warnings": {}}
    done = on_run or (lambda _label: None)

    def record(run_id: str | None, checks: dict[str, bool], warnings: dict[str, bool] | None = None) -> None:
        if run_id:
            summary["runs"].append(run_id)
        for kind, results in (("checks", checks), ("warnings", warnings or {})):
            for name, ok in results.items():
                summary[kind][name] = summary[kind].get(name, True) and ok

    market_start = market_history_start(start) if with_history else pd.Timestamp(start)
    progress(f"market data {market_start:%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}")
    result = materialize_market(instance, market_start, end, defs=defs, tags=tags)
    record(result.run_id, check_results(result), check_results(result, warnings=True))
    done("market data")
    workers = default_workers() if workers is None else workers
    parallel = 1 if instance.is_ephemeral else min(workers, len(portfolio_ids))
    progress(
        f"{len(portfolio_ids)} portfolio run(s) {pd.Timestamp(start):%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}"
        + (f", {parallel} at a time" if parallel > 1 else "")
    )
    failed = []
    for pr in materialize_portfolios(instance, portfolio_ids, start, end, defs=defs, tags=tags, workers=workers):
        record(pr.run_id, pr.checks, pr.warnings)
        if pr.error is not None:
            failed.append(pr.error)
        done(f"portfolio {pr.portfolio_id} ({pr.seconds:.0f} s{', FAILED' if pr.error else ''})")
    if failed:
        if len(failed) == 1:
            raise failed[0]
        raise RunFailedError(", ".join(e.run_id for e in failed), [f for e in failed for f in e.failures])
    if with_sql_models:
        progress("SQL models (staging views, marts)")
        result = materialize_sql_models(instance, defs=defs, tags=tags)
        if result is not None:
            record(result.run_id, check_results(result))
        done("SQL models")
    return summary


def new_backfill_id() -> str:
    """An id for the runs of one CLI backfill (8 lowercase letters, the shape of Dagster's backfill ids)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
