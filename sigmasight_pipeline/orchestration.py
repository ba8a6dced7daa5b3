"""Operations shared by the CLI, sensors and tests: import a portfolio, materialize ranges through Dagster.

Everything here launches work through Dagster (``materialize`` against the given instance), so every
number the CLI produces has its run, lineage and check results recorded where the UI shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.partitions import PORTFOLIO_DIMENSION, multi_key
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

# The CLI prints its own progress; Dagster's per-event DEBUG lines stay in the run log the UI shows.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def load_definitions() -> dg.Definitions:
    from sigmasight_pipeline.definitions import defs

    return defs()


def _assets_by_group(defs: dg.Definitions) -> dict[str, list[dg.AssetKey]]:
    groups: dict[str, list[dg.AssetKey]] = {}
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        groups.setdefault(node.group_name, []).append(key)
    return groups


def portfolio_asset_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """Assets partitioned by date x portfolio, in dependency order."""
    graph = defs.resolve_asset_graph()
    keys = [
        k
        for k in graph.toposorted_asset_keys
        if isinstance(graph.get(k).partitions_def, dg.MultiPartitionsDefinition)
    ]
    return keys


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
    dg.materialize(
        assets=list(defs.assets or []),
        selection=[dg.AssetKey("portfolio_positions")],
        instance=instance,
        partition_key=portfolio_id,
        resources=dict(defs.resources or {}),
        run_config=QUIET,
    )
    return portfolio_id


def history_start(first_date) -> pd.Timestamp:
    """First session of the market history needed to compute ``first_date``."""
    return xcal.sessions_window(xcal.previous_session(first_date), HISTORY_SESSIONS)[0]


def weekday_keys(start, end) -> tuple[str, str]:
    """First and last weekday partition keys in [start, end]."""
    days = pd.bdate_range(pd.Timestamp(start), pd.Timestamp(end))
    if days.empty:
        raise ValueError(f"no weekday between {start} and {end}")
    return days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d")


def materialize_market(instance, start, end, *, defs=None, resources=None) -> dg.ExecuteInProcessResult:
    """One run materializing ``market_prices`` and ``security_returns`` for every weekday in [start, end]."""
    defs = defs or load_definitions()
    first, last = weekday_keys(start, end)
    return _run(
        defs,
        instance,
        [dg.AssetKey("market_prices"), dg.AssetKey("security_returns")],
        {RANGE_START_TAG: first, RANGE_END_TAG: last},
        resources,
    )


def materialize_portfolio(
    instance, portfolio_id: str, start, end, *, defs=None, selection: Sequence[dg.AssetKey] | None = None, resources=None
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
        {RANGE_START_TAG: str(multi_key(first, portfolio_id)), RANGE_END_TAG: str(multi_key(last, portfolio_id))},
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
    progress: Callable[[str], None] = print,
) -> dict:
    """Market data (with the history behind it) then every portfolio's assets for [start, end].

    One run for the market (a single-run range) and one run per portfolio: the runs a single-run
    backfill policy would create.
    """
    defs = defs or load_definitions()
    summary = {"runs": [], "checks": {}}
    market_start = history_start(start) if with_history else pd.Timestamp(start)
    progress(f"market data {market_start:%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}")
    results = [materialize_market(instance, market_start, end, defs=defs)]
    for pid in portfolio_ids:
        progress(f"portfolio {pid}: {pd.Timestamp(start):%Y-%m-%d} .. {pd.Timestamp(end):%Y-%m-%d}")
        results.append(materialize_portfolio(instance, pid, start, end, defs=defs))
    for result in filter(None, results):
        summary["runs"].append(result.run_id)
        for ev in result.get_asset_check_evaluations():
            name = f"{ev.asset_key.to_user_string()}.{ev.check_name}"
            summary["checks"][name] = summary["checks"].get(name, True) and ev.passed
    return summary

