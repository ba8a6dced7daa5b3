"""The pipeline's RunRequests, and how one run's success launches the next (chaining by tag).

A run of the market assets (partitioned by date) and a run of the portfolio assets (date x portfolio) cannot
be one run (different partitions definitions), and the portfolio run may only start once the market run
succeeded. So a request carries its follow-ups in the tag ``sigmasight/then``: JSON of a list of request
specs ``{"assets": [asset key strings], "tags": {...}, "partition_key": optional, "then": [nested specs]}``.
``run_chain_sensor`` (``sensors.py``) launches the follow-ups of every successful run once, with run keys
derived from the parent run id.

Ranges (single-run backfill policy): a market request is one run over a weekday range; a portfolio request
holds one dimension fixed, as Dagster's own single-run splitting does: ONE portfolio over a date range
(``D1|p`` .. ``D2|p``), or ONE date over a contiguous block of portfolio keys (``D|p_first`` .. ``D|p_last``).
Dagster resolves a range of the dynamic ``portfolio`` dimension by the position of the keys in
``instance.get_dynamic_partitions("portfolio")``, i.e. the order in which they were added; a set of
portfolios that is not contiguous in that order is split into one request per contiguous block.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.partitions import multi_key, trading_days
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.orchestration import RANGE_END_TAG, RANGE_START_TAG, history_start, weekday_keys

THEN_TAG = "sigmasight/then"
PARENT_RUN_TAG = "sigmasight/parent_run"
#: What a run is, for filtering in the UI: "positions", "market", "portfolios" or "sql_models".
STEP_TAG = "sigmasight/step"

MARKET_KEYS: tuple[dg.AssetKey, ...] = (dg.AssetKey("market_prices"), dg.AssetKey("security_returns"))
POSITIONS_KEY = dg.AssetKey("portfolio_positions")

NEW_YORK = ZoneInfo("America/New_York")

BACKFILL_START_ENV = "SIGMASIGHT_BACKFILL_START"
DEFAULT_BACKFILL_START = "2025-01-02"
BACKFILL_END_ENV = "SIGMASIGHT_BACKFILL_END"

RequestLike = dg.RunRequest | dict


# --------------------------------------------------------------------------------------------------------
# Which assets: read from the asset graph, so an asset added to the graph is requested without a change here.


@dataclass(frozen=True)
class PipelineKeys:
    """The asset keys a request selects: the date x portfolio assets and the SQL models, in dependency order."""

    portfolio: tuple[dg.AssetKey, ...]
    sql_models: tuple[dg.AssetKey, ...]


def _keys_from_graph(graph) -> PipelineKeys:
    ordered = list(graph.toposorted_asset_keys)
    portfolio = tuple(
        k for k in ordered
        if graph.get(k).is_materializable and isinstance(graph.get(k).partitions_def, dg.MultiPartitionsDefinition)
    )
    sql = tuple(k for k in ordered if graph.get(k).is_materializable and graph.get(k).group_name == "sql_models")
    return PipelineKeys(portfolio, sql)


@lru_cache(maxsize=1)
def _loaded_keys() -> PipelineKeys:
    from sigmasight_pipeline.orchestration import load_definitions

    return _keys_from_graph(load_definitions().resolve_asset_graph())


def pipeline_keys(source=None) -> PipelineKeys:
    """The keys from ``source``: a ``Definitions``, a ``RepositoryDefinition``, a schedule or sensor context
    (its repository when it has one), or None (the package's definitions, loaded once per process)."""
    if isinstance(source, PipelineKeys):
        return source
    if isinstance(source, dg.Definitions):
        return _keys_from_graph(source.resolve_asset_graph())
    if isinstance(source, dg.RepositoryDefinition):
        return _keys_from_graph(source.asset_graph)
    if source is not None:  # an evaluation context
        try:
            repo = source.repository_def
        except Exception:  # build_schedule_context without a repository_def raises
            repo = None
        if repo is not None:
            return _keys_from_graph(repo.asset_graph)
    return _loaded_keys()


# --------------------------------------------------------------------------------------------------------
# Serialising requests into the `then` tag and back.


def _key_str(key) -> str:
    return dg.AssetKey.from_coercible(key).to_user_string()


def request_to_spec(request: RequestLike) -> dict:
    """A JSON-able spec of ``request`` (its nested ``then`` decoded, not double-encoded)."""
    if isinstance(request, dict):
        return request
    tags = dict(request.tags or {})
    then = json.loads(tags.pop(THEN_TAG)) if THEN_TAG in tags else []
    spec: dict = {"assets": [_key_str(k) for k in request.asset_selection or []], "tags": tags}
    if request.partition_key:
        spec["partition_key"] = request.partition_key
    if then:
        spec["then"] = then
    return spec


def encode_then(then: Iterable[RequestLike]) -> str:
    return json.dumps([request_to_spec(r) for r in then], sort_keys=True, separators=(",", ":"))


def request_from_spec(spec: dict, *, run_key: str | None = None, tags: dict[str, str] | None = None) -> dg.RunRequest:
    """The RunRequest of a spec, with ``run_key`` and extra ``tags``; its follow-ups go back into the tag."""
    all_tags = {**spec.get("tags", {}), **(tags or {})}
    if spec.get("then"):
        all_tags[THEN_TAG] = encode_then(spec["then"])
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[dg.AssetKey.from_user_string(k) for k in spec["assets"]],
        partition_key=spec.get("partition_key"),
        tags=all_tags,
    )


def follow_up_specs(run_tags: dict[str, str]) -> list[dict]:
    """The follow-up specs a run carries (``[]`` without the tag or with an unreadable one)."""
    raw = (run_tags or {}).get(THEN_TAG)
    if not raw:
        return []
    try:
        specs = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return [s for s in specs if isinstance(s, dict) and s.get("assets")] if isinstance(specs, list) else []


def follow_up_run_key(parent_run_id: str, index: int) -> str:
    return f"{parent_run_id}:then:{index}"


def follow_up_requests(parent_run_id: str, run_tags: dict[str, str]) -> list[dg.RunRequest]:
    """The RunRequests that follow a successful run: run key ``<parent run id>:then:<i>`` (so a request is
    never launched twice for one parent) and the parent's id in ``sigmasight/parent_run``."""
    return [
        request_from_spec(spec, run_key=follow_up_run_key(parent_run_id, i), tags={PARENT_RUN_TAG: parent_run_id})
        for i, spec in enumerate(follow_up_specs(run_tags))
    ]


def _with_then(tags: dict[str, str], then: Iterable[RequestLike]) -> dict[str, str]:
    then = list(then or [])
    return {**tags, THEN_TAG: encode_then(then)} if then else tags


# --------------------------------------------------------------------------------------------------------
# The requests.


def market_request(start, end, *, then: Iterable[RequestLike] = (), run_key: str | None = None) -> dg.RunRequest:
    """One run of ``market_prices`` and ``security_returns`` for every weekday in [start, end]."""
    first, last = weekday_keys(start, end)
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last, STEP_TAG: "market"}
    return dg.RunRequest(run_key=run_key, asset_selection=list(MARKET_KEYS), tags=_with_then(tags, then))


def portfolio_range_request(
    portfolio_id: str, start, end, asset_keys: Sequence[dg.AssetKey], *, then: Iterable[RequestLike] = (),
    run_key: str | None = None,
) -> dg.RunRequest:
    """One run of the date x portfolio assets of ONE portfolio over the weekdays of [start, end]."""
    first, last = weekday_keys(start, end)
    tags = {RANGE_START_TAG: str(multi_key(first, portfolio_id)), RANGE_END_TAG: str(multi_key(last, portfolio_id)),
            STEP_TAG: "portfolios"}
    return dg.RunRequest(run_key=run_key, asset_selection=list(asset_keys), tags=_with_then(tags, then))


def portfolios_date_request(
    block: Sequence[str], date, asset_keys: Sequence[dg.AssetKey], *, then: Iterable[RequestLike] = (),
    run_key: str | None = None,
) -> dg.RunRequest:
    """One run of the date x portfolio assets for ONE date over ``block``: portfolio keys contiguous in the
    dynamic dimension's order (first .. last of the block)."""
    day, _ = weekday_keys(date, date)
    tags = {RANGE_START_TAG: str(multi_key(day, block[0])), RANGE_END_TAG: str(multi_key(day, block[-1])),
            STEP_TAG: "portfolios"}
    return dg.RunRequest(run_key=run_key, asset_selection=list(asset_keys), tags=_with_then(tags, then))


def contiguous_blocks(portfolio_ids: Iterable[str], order: Sequence[str]) -> list[list[str]]:
    """``portfolio_ids`` as runs of consecutive keys of ``order`` (the dynamic dimension's key order)."""
    position = {p: i for i, p in enumerate(order)}
    unknown = sorted(set(portfolio_ids) - set(position))
    if unknown:
        raise ValueError(f"portfolios not in the portfolio partitions: {', '.join(unknown)}")
    blocks: list[list[str]] = []
    last = None
    for i in sorted({position[p] for p in portfolio_ids}):
        if last is not None and i == last + 1:
            blocks[-1].append(order[i])
        else:
            blocks.append([order[i]])
        last = i
    return blocks


def portfolio_requests(
    portfolio_ids: Sequence[str], start, end, asset_keys: Sequence[dg.AssetKey], *,
    order: Sequence[str] | None = None, then: Iterable[RequestLike] = (),
) -> list[dg.RunRequest]:
    """The runs covering ``portfolio_ids`` x the weekdays of [start, end], each holding one dimension fixed.

    One date and several portfolios with ``order`` (``instance.get_dynamic_partitions("portfolio")``): one run
    per contiguous block of portfolios (one run when they are all the portfolios). Otherwise one run per
    portfolio over the date range. Every run carries ``then`` (follow-ups are idempotent rebuilds).
    """
    ids = list(dict.fromkeys(portfolio_ids))
    if not ids or not asset_keys:
        return []
    first, last = weekday_keys(start, end)
    then = list(then or [])
    if first == last and len(ids) > 1 and order is not None:
        return [portfolios_date_request(b, first, asset_keys, then=then) for b in contiguous_blocks(ids, order)]
    return [portfolio_range_request(p, first, last, asset_keys, then=then) for p in ids]


def sql_models_request(asset_keys: Sequence[dg.AssetKey], *, run_key: str | None = None) -> dg.RunRequest:
    """One run rebuilding the SQL models (unpartitioned) and running their model tests."""
    return dg.RunRequest(run_key=run_key, asset_selection=list(asset_keys), tags={STEP_TAG: "sql_models"})


def positions_request(
    portfolio_id: str, *, then: Iterable[RequestLike] = (), run_key: str | None = None, tags: dict | None = None
) -> dg.RunRequest:
    """One run of ``portfolio_positions`` for one portfolio (its partition key)."""
    base = {**(tags or {}), STEP_TAG: "positions"}
    return dg.RunRequest(
        run_key=run_key, asset_selection=[POSITIONS_KEY], partition_key=portfolio_id, tags=_with_then(base, then)
    )


# --------------------------------------------------------------------------------------------------------
# Dates: business date of a tick, latest completed session, the onboarding backfill window.


def new_york_time(when: dt.datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """``when`` (default now) in New York; a naive value is read as New York wall-clock time."""
    ts = pd.Timestamp.now(tz=NEW_YORK) if when is None else pd.Timestamp(when)
    return ts.tz_localize(NEW_YORK) if ts.tzinfo is None else ts.tz_convert(NEW_YORK)


def business_date(when: dt.datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """The New York calendar date of ``when`` (the session a tick after the close computes)."""
    return pd.Timestamp(new_york_time(when).date())


def latest_completed_session(now: dt.datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """The last XNYS session whose close (13:00 on early closes, else 16:00 New York) is at or before ``now``."""
    ts = new_york_time(now)
    day = pd.Timestamp(ts.date())
    if xcal.is_session(day) and ts >= xcal.session_close(day):
        return day
    return xcal.previous_session(day)


def _first_partition_date() -> pd.Timestamp:
    return pd.Timestamp(trading_days.get_first_partition_key())


def market_history_start(first_date) -> pd.Timestamp:
    """``orchestration.history_start``: the 160 sessions behind ``first_date``, not before the first partition."""
    return history_start(first_date)


def backfill_window(earliest_entry, *, now=None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The dates an onboarded portfolio is backfilled over, or None when there is none yet.

    Start: the later of the first session after the portfolio's earliest entry date and
    ``$SIGMASIGHT_BACKFILL_START`` (default 2025-01-02; never before the first date partition). End:
    ``$SIGMASIGHT_BACKFILL_END`` if set, else the latest completed session (see
    :func:`latest_completed_session`).
    """
    floor = pd.Timestamp(os.environ.get(BACKFILL_START_ENV) or DEFAULT_BACKFILL_START)
    floor = max(floor, _first_partition_date())
    start = max(xcal.next_session(earliest_entry), xcal.next_session(floor - pd.Timedelta(days=1)))
    end_env = os.environ.get(BACKFILL_END_ENV)
    end = xcal.session_on_or_before(end_env) if end_env else latest_completed_session(now)
    return None if start > end else (start, end)


# --------------------------------------------------------------------------------------------------------
# The chains.


def daily_market_request(
    date, portfolio_ids: Sequence[str], keys: PipelineKeys, *, order: Sequence[str] | None = None,
    run_key: str | None = None,
) -> dg.RunRequest:
    """The daily chain for one session: market (that date) -> every portfolio (that date) -> SQL models.

    Without portfolios only the market run is requested.
    """
    then: list[dg.RunRequest] = []
    if portfolio_ids and keys.portfolio:
        sql = [sql_models_request(keys.sql_models)] if keys.sql_models else []
        then = portfolio_requests(portfolio_ids, date, date, keys.portfolio, order=order or portfolio_ids, then=sql)
    return market_request(date, date, then=then, run_key=run_key)


def onboarding_request(
    portfolio_id: str, earliest_entry, keys: PipelineKeys, *, run_key: str | None = None, now=None,
    tags: dict | None = None,
) -> dg.RunRequest:
    """The onboarding chain of a new (or replaced) portfolio.

    ``portfolio_positions`` (its partition) -> market history (``market_history_start(window start)`` .. window
    end, so new symbols get prices and the regression window is filled) -> the portfolio's assets over the
    backfill window (one run) -> SQL models. Without a backfill window only the positions run.
    """
    then: list[dg.RunRequest] = []
    window = backfill_window(earliest_entry, now=now)
    if window is not None:
        start, end = window
        sql = [sql_models_request(keys.sql_models)] if keys.sql_models else []
        portfolio = portfolio_requests([portfolio_id], start, end, keys.portfolio, then=sql)
        then = [market_request(market_history_start(start), end, then=portfolio)]
    return positions_request(portfolio_id, then=then, run_key=run_key, tags=tags)


def chain_specs(request: RequestLike) -> list[dict]:
    """``request`` and all its follow-ups, depth first (for logs and tests)."""
    spec = request_to_spec(request)
    out = [spec]
    for child in spec.get("then", []):
        out += chain_specs(child)
    return out
