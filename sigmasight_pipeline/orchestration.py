"""Operations shared by the CLI, sensors and tests: import a portfolio, materialize ranges through Dagster.

Everything here launches work through Dagster (``materialize`` against the given instance), so every
number the CLI produces has its run, lineage and check results recorded where the UI shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
        run_config=QUIET,
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
    tags: dict[str, str] | None = None,
) -> dict:
    """Market data (with the history behind it) then every portfolio's assets for [start, end].

    One run for the market (a single-run range), one run per portfolio (the runs a single-run backfill
    policy would create), then one run rebuilding the SQL models.
    """
    defs = defs or load_definitions()
    summary = {"runs": [], "checks": {}}
    market_start = history_start(start) if with_history else pd.Timestamp(start)
    progress(f"market data {market_start:%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}")
    results = [materialize_market(instance, market_start, end, defs=defs, tags=tags)]
    for pid in portfolio_ids:
        progress(f"portfolio {pid}: {pd.Timestamp(start):%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}")
        results.append(materialize_portfolio(instance, pid, start, end, defs=defs, tags=tags))
    if with_sql_models:
        progress("SQL models (staging views, marts)")
        results.append(materialize_sql_models(instance, defs=defs, tags=tags))
    for result in filter(None, results):
        summary["runs"].append(result.run_id)
        for ev in result.get_asset_check_evaluations():
            name = f"{ev.asset_key.to_user_string()}.{ev.check_name}"
            summary["checks"][name] = summary["checks"].get(name, True) and ev.passed
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
