"""Operations shared by the CLI, sensors and tests: import a portfolio, materialize ranges through Dagster.

Everything here launches work through Dagster (``materialize`` against the given instance), so every
number the CLI produces has its run, lineage and check results recorded where the UI shows them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.partitions import PORTFOLIO_DIMENSION, multi_key, trading_days
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.onboarding import parse_portfolio_csv, slugify
from sigmasight_pipeline.warehouse.io import get_engine
from sigmasight_pipeline.warehouse.portfolios import save_portfolio_source
from sigmasight_pipeline.warehouse.reference import load_reference_data

#: Sessions of market history loaded before the first computed date: the 150-session regression window,
#: the previous close its first return needs, and a margin.
HISTORY_SESSIONS = 160

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

#: Tag carried by every run of one CLI backfill, so the UI's Runs page can filter them together.
BACKFILL_TAG = "sigmasight/backfill"

# The CLI prints its own progress; Dagster's per-event DEBUG lines stay in the run log the UI shows.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Parallel portfolio runs: concurrent runs of other partitions of the same assets make Dagster warn, once per
# step, that the asset's latest materialization (another portfolio's) differs from the step's own ("Data
# version mismatch"). That is expected with concurrent runs and says nothing about the data; the console shows
# errors only, and every warning stays in the run's event log in the UI. Failures still raise RunFailedError.
QUIET_PARALLEL = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
_run_config = QUIET  # the worker processes of materialize_portfolios switch to QUIET_PARALLEL


def load_definitions() -> dg.Definitions:
    from sigmasight_pipeline.definitions import defs

    return defs()


def portfolio_asset_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """Assets partitioned by date x portfolio, in dependency order."""
    graph = defs.resolve_asset_graph()
    keys = [
        k
        for k in graph.toposorted_asset_keys
        if isinstance(graph.get(k).partitions_def, dg.MultiPartitionsDefinition)
    ]
    return keys


def sql_model_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """The dbt_like_sql model assets (unpartitioned; rebuilt over the whole warehouse)."""
    graph = defs.resolve_asset_graph()
    return [k for k in graph.toposorted_asset_keys if graph.get(k).group_name == "sql_models"]


def materialize_sql_models(instance, *, defs=None, resources=None, tags=None) -> dg.ExecuteInProcessResult | None:
    """One run rebuilding every SQL model (staging views, marts) and running their model tests."""
    defs = defs or load_definitions()
    keys = sql_model_keys(defs)
    return _run(defs, instance, keys, dict(tags or {}), resources) if keys else None


def _run(defs, instance, selection, tags, resources=None) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        assets=list(defs.assets or []) + list(defs.asset_checks or []),
        selection=selection,
        instance=instance,
        tags=tags,
        resources=resources or dict(defs.resources or {}),
        run_config=_run_config,
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


class RunFailedError(RuntimeError):
    def __init__(self, run_id: str, failures: list[str]):
        self.run_id = run_id
        self.failures = failures
        super().__init__(f"run {run_id} failed: " + ("; ".join(failures) or "see the run in the Dagster UI"))

    def __reduce__(self):  # crosses process boundaries (parallel portfolio runs) with its fields
        return (type(self), (self.run_id, self.failures))


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
    """Validate, store and materialize a portfolio; returns its id (its partition key).

    Validation runs first and raises :class:`~sigmasight_pipeline.onboarding.PortfolioValidationError`
    with every error; nothing is stored in that case. Then the upload is stored, the portfolio's key is
    added to the dynamic partitions, and ``portfolio_positions`` is materialized for it.
    """
    defs = defs or load_definitions()
    parse_portfolio_csv(csv)  # raises with every error (size, encoding, rows) before anything is written
    csv_text = csv.decode("utf-8-sig") if isinstance(csv, bytes) else csv
    portfolio_id = slugify(portfolio_id or name)
    engine = get_engine(database_url)
    load_reference_data(engine)
    save_portfolio_source(engine, portfolio_id=portfolio_id, name=name, owner=owner, csv_text=csv_text, filename=filename)
    instance.add_dynamic_partitions(PORTFOLIO_DIMENSION, [portfolio_id])
    resources = dict(defs.resources or {})
    if database_url:  # the run must write where the upload was stored
        resources["warehouse"] = WarehouseResource(database_url=database_url)
    dg.materialize(
        assets=list(defs.assets or []),
        selection=[dg.AssetKey("portfolio_positions")],
        instance=instance,
        partition_key=portfolio_id,
        resources=resources,
        run_config=QUIET,
    )
    return portfolio_id


def history_start(first_date) -> pd.Timestamp:
    """First session of the market history needed to compute ``first_date`` (never before the first partition)."""
    first_partition = pd.Timestamp(trading_days.get_first_partition_key())
    return max(xcal.sessions_window(xcal.previous_session(first_date), HISTORY_SESSIONS)[0], first_partition)


def weekday_keys(start, end) -> tuple[str, str]:
    """First and last weekday partition keys in [start, end]."""
    days = pd.bdate_range(pd.Timestamp(start), pd.Timestamp(end))
    if days.empty:
        raise ValueError(f"no weekday between {start} and {end}")
    return days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d")


def new_backfill_id() -> str:
    """A backfill id in Dagster's own format (8 lowercase letters)."""
    from dagster._core.utils import make_new_backfill_id

    return make_new_backfill_id()


def materialize_market(instance, start, end, *, defs=None, resources=None, tags=None) -> dg.ExecuteInProcessResult:
    """One run materializing ``market_prices`` and ``security_returns`` for every weekday in [start, end]."""
    defs = defs or load_definitions()
    first, last = weekday_keys(start, end)
    return _run(
        defs,
        instance,
        [dg.AssetKey("market_prices"), dg.AssetKey("security_returns")],
        {**(tags or {}), RANGE_START_TAG: first, RANGE_END_TAG: last},
        resources,
    )


def materialize_portfolio(
    instance, portfolio_id: str, start, end, *, defs=None, selection: Sequence[dg.AssetKey] | None = None,
    resources=None, tags=None,
) -> dg.ExecuteInProcessResult | None:
    """One run materializing the date x portfolio assets of one portfolio over [start, end]."""
    defs = defs or load_definitions()
    selection = list(selection or portfolio_asset_keys(defs))
    if not selection:
        return None
    first, last = weekday_keys(start, end)
    return _run(
        defs,
        instance,
        selection,
        {
            **(tags or {}),
            RANGE_START_TAG: str(multi_key(first, portfolio_id)),
            RANGE_END_TAG: str(multi_key(last, portfolio_id)),
        },
        resources,
    )


class WorkerDiedError(RuntimeError):
    """A worker process of :func:`materialize_portfolios` ended without finishing its run."""


class PortfolioRun(NamedTuple):
    """One finished portfolio run: its Dagster run id, wall seconds, check results, and the error if it failed."""

    portfolio_id: str
    run_id: str | None
    seconds: float
    checks: dict[str, bool]
    error: RunFailedError | None = None


def check_results(result: dg.ExecuteInProcessResult | None) -> dict[str, bool]:
    """``asset.check -> passed`` for every check a run evaluated."""
    out: dict[str, bool] = {}
    for ev in result.get_asset_check_evaluations() if result is not None else []:
        name = f"{ev.asset_key.to_user_string()}.{ev.check_name}"
        out[name] = out.get(name, True) and ev.passed
    return out


def default_workers() -> int:
    """How many portfolio runs go at once: ``SIGMASIGHT_WORKERS``, else one per CPU, at most 4 (each run is
    one process doing vectorised work; more would only queue on the warehouse's writer lock)."""
    configured = os.environ.get("SIGMASIGHT_WORKERS", "").strip()
    if configured:
        try:
            workers = int(configured)
        except ValueError:
            raise ValueError(f"SIGMASIGHT_WORKERS must be a whole number, got {configured!r}") from None
        if workers < 1:
            raise ValueError(f"SIGMASIGHT_WORKERS must be at least 1, got {workers}")
        return workers
    return max(1, min(4, os.cpu_count() or 1))


def _portfolio_run(instance, portfolio_id: str, start, end, defs, tags) -> PortfolioRun:
    started = time.perf_counter()
    try:
        result = materialize_portfolio(instance, portfolio_id, start, end, defs=defs, tags=tags)
    except RunFailedError as exc:
        return PortfolioRun(portfolio_id, exc.run_id, time.perf_counter() - started, {}, exc)
    run_id = result.run_id if result is not None else None
    return PortfolioRun(portfolio_id, run_id, time.perf_counter() - started, check_results(result))


_WORKER_DEFS: dg.Definitions | None = None  # loaded once per worker process
_WORKER_STOP = None  # set by the parent when the backfill ends early: a worker then starts no run


def _worker_init(stop) -> None:
    # A Ctrl-C reaches the whole process group. Between runs a worker ignores it (no traceback from an idle
    # worker) and checks the stop event before starting a run; during a run Dagster's own handler interrupts
    # the run and records it as failed.
    global _WORKER_STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_STOP = stop


def _portfolio_run_in_worker(instance_ref, portfolio_id: str, start, end, tags) -> PortfolioRun | None:
    global _WORKER_DEFS, _run_config
    _run_config = QUIET_PARALLEL
    if _WORKER_DEFS is None:
        _WORKER_DEFS = load_definitions()
    if _WORKER_STOP is not None and _WORKER_STOP.is_set():
        return None  # the backfill was interrupted while this run waited for its worker
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return _portfolio_run(instance, portfolio_id, start, end, _WORKER_DEFS, tags)


def materialize_portfolios(
    instance: dg.DagsterInstance,
    portfolio_ids: Sequence[str],
    start,
    end,
    *,
    defs: dg.Definitions | None = None,
    tags: dict[str, str] | None = None,
    workers: int | None = None,
) -> Iterator[PortfolioRun]:
    """One ranged run per portfolio over [start, end], ``workers`` at a time; yields each as it finishes.

    Portfolio runs are independent (each writes only its own portfolio's partitions), so on a persistent
    instance they run in parallel worker processes (``spawn``: no state is inherited but the environment),
    each recording its run in the same instance as Dagster's own run launcher would. An ephemeral
    (in-memory) instance cannot be shared between processes, so its runs go one after another. A failed
    run does not stop the others: its ``PortfolioRun.error`` says what failed.
    """
    workers = default_workers() if workers is None else workers
    ids = list(portfolio_ids)
    if workers <= 1 or len(ids) <= 1 or instance.is_ephemeral:
        defs = defs or load_definitions()
        for pid in ids:
            yield _portfolio_run(instance, pid, start, end, defs, tags)
        return
    slots = min(workers, len(ids))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    pool = ProcessPoolExecutor(max_workers=slots, mp_context=context, initializer=_worker_init, initargs=(stop,))
    try:
        ref = instance.get_ref()
        waiting, running = list(ids), {}
        while waiting or running:
            # Submit only as many runs as there are workers: the executor would otherwise queue one more that no
            # cancel can stop, so a Ctrl-C would still start it.
            while waiting and len(running) < slots:
                pid = waiting.pop(0)
                running[pool.submit(_portfolio_run_in_worker, ref, pid, start, end, tags)] = pid
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            finished = []
            for future in done:
                pid = running.pop(future)
                try:
                    finished.append(future.result())
                except BrokenProcessPool as exc:
                    unfinished = [pid, *running.values(), *waiting]
                    raise WorkerDiedError(
                        "a worker process died (killed, or out of memory); portfolios not finished: "
                        f"{', '.join(unfinished)}. Partitions already written are complete and an interrupted run's "
                        "are rolled back: rerun the same backfill"
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
    Dagster's handler is installed (writing its planned events takes seconds), so repeat until all are done."""
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
    """Market data (with the history behind it) then every portfolio's assets for [start, end].

    One run for the market (a single-run range), one run per portfolio (the runs a single-run backfill
    policy would create; ``workers`` of them at once on a persistent instance, see
    :func:`materialize_portfolios`), then one run rebuilding the SQL models. ``progress`` gets a line
    before each phase; ``on_run`` gets a label after each run finishes. If a portfolio run fails, the
    other portfolios still finish, then :class:`RunFailedError` is raised (the SQL models are not rebuilt).
    """
    defs = defs or load_definitions()
    summary = {"runs": [], "checks": {}}
    done = on_run or (lambda _label: None)

    def record(run_id: str | None, checks: dict[str, bool]) -> None:
        if run_id:
            summary["runs"].append(run_id)
        for name, ok in checks.items():
            summary["checks"][name] = summary["checks"].get(name, True) and ok

    market_start = history_start(start) if with_history else pd.Timestamp(start)
    progress(f"market data {market_start:%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}")
    result = materialize_market(instance, market_start, end, defs=defs, tags=tags)
    record(result.run_id, check_results(result))
    done("market data")
    workers = default_workers() if workers is None else workers
    parallel = min(workers, len(portfolio_ids)) if not instance.is_ephemeral else 1
    progress(
        f"{len(portfolio_ids)} portfolio run(s) {pd.Timestamp(start):%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}"
        + (f", {parallel} at a time" if parallel > 1 else "")
    )
    failed = []
    for run in materialize_portfolios(instance, portfolio_ids, start, end, defs=defs, tags=tags, workers=workers):
        record(run.run_id, run.checks)
        if run.error is not None:
            failed.append(run.error)
        done(f"portfolio {run.portfolio_id} ({run.seconds:.0f} s{', FAILED' if run.error else ''})")
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


def submit_asset_backfill(
    instance: dg.DagsterInstance, portfolio_ids: Sequence[str], start, end, *, with_history: bool = True, defs=None
) -> str:
    """Register an asset backfill for the Dagster daemon: market data (with its history) and every date x
    portfolio asset of ``portfolio_ids`` over [start, end], plus the SQL models.

    The daemon orders the runs by dependency and applies the single-run backfill policies: one run for the
    market range, then one run per portfolio (or per date, whichever dimension is smaller). The backfill
    shows in the UI's Backfills tab.
    """
    from dagster._core.definitions.asset_graph_subset import AssetGraphSubset
    from dagster._core.execution.backfill import PartitionBackfill

    defs = defs or load_definitions()
    graph = defs.resolve_asset_graph()
    market_start = history_start(start) if with_history else pd.Timestamp(start)
    market_keys = pd.bdate_range(market_start, pd.Timestamp(end)).strftime("%Y-%m-%d").tolist()
    portfolio_keys = [str(multi_key(d, p)) for p in portfolio_ids for d in pd.bdate_range(pd.Timestamp(start), pd.Timestamp(end))]
    subsets = {}
    for key in graph.get_all_asset_keys():
        pdef = graph.get(key).partitions_def
        if pdef is None:
            continue
        wanted = portfolio_keys if isinstance(pdef, dg.MultiPartitionsDefinition) else market_keys if key.path[0] in ("market_prices", "security_returns") else None
        if wanted:
            subsets[key] = pdef.subset_with_partition_keys(wanted)
    subset = AssetGraphSubset(
        partitions_subsets_by_asset_key=subsets,
        non_partitioned_asset_keys=set(sql_model_keys(defs)),
    )
    backfill_id = new_backfill_id()
    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id=backfill_id,
        backfill_timestamp=pd.Timestamp.now("UTC").timestamp(),
        tags={BACKFILL_TAG: backfill_id},
        dynamic_partitions_store=instance,
        asset_graph_subset=subset,
        title=f"sigmasight backfill {pd.Timestamp(start):%Y-%m-%d}..{pd.Timestamp(end):%Y-%m-%d} ({', '.join(portfolio_ids)})",
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill_id
