"""Operations (api.md [3.0.1]) and the state of work requests.

* ``GET /requests/{request_id}``: a work request of this API process (``launch.Launcher``) with the Dagster runs
  it made, read from the instance (its runs carry ``sigmasight/backfill=<request id>``; a request sent through a
  webserver is the Dagster backfill or run of that id). Visible to the key that made it and to operators.
* Operator keys only (a normal key gets 403): the run history of the Dagster instance and one run with its asset
  check results; a request to compute a date range for a portfolio (in process: ``runner.run_window`` as
  ``sigmasight backfill`` runs it; through a webserver: the asset backfill the UI's Materialize dialog sends,
  as ``sigmasight backfill --submit`` does); the state of the sensors and schedules and the latest computed
  date per portfolio (``status.portfolio_status``); this process's work requests.

Dagster is read through its instance only (public methods of ``DagsterInstance``), never ``dagster._*``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from sigmasight_pipeline.api.access import Caller, caller, operator, portfolio_of
from sigmasight_pipeline.api.common import Cursor, Limit, Page, Strict, check_range, page
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError
from sigmasight_pipeline.run_tags import (
    BACKFILL_TAG, COVERS_TAG, DAGSTER_BACKFILL_TAG, PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG, REQUESTED_BY_TAG,
    portfolios_of_run,
)

router = APIRouter(tags=["operations"], responses=ERROR_RESPONSES)

RUN_STATUSES = ("QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED")


# --- models ----------------------------------------------------------------------------------------------------

class RunItem(BaseModel):
    """One Dagster run as the instance records it."""

    run_id: str
    status: str
    job_name: str
    partition: str | None  # dagster/partition (a single-partition run)
    range_start: str | None  # dagster/asset_partition_range_start (a ranged run)
    range_end: str | None
    covers: str | None  # sigmasight/covers: "market 2024-06-12..2025-06-30", "demo-hnw 2025-06-27..2025-06-30"
    backfill_id: str | None  # sigmasight/backfill (a CLI or API request) or dagster/backfill (the daemon's)
    requested_by: str | None  # the API key id that asked for it (sigmasight/requested_by)
    tags: dict[str, str]
    created_at: dt.datetime | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None


class CheckResult(BaseModel):
    asset_key: str
    check_name: str
    passed: bool
    severity: str


class RunDetail(RunItem):
    asset_checks: list[CheckResult]
    failures: list[str]  # first line of each failed step's error


class WorkRequestOut(BaseModel):
    """A request for work: its state (``queued`` | ``running`` | ``succeeded`` | ``failed`` in process,
    ``launched`` through a webserver), what it returned, and where to read it."""

    request_id: str
    label: str
    state: str
    mode: str
    submitted_at: dt.datetime
    error: str | None
    result: dict[str, Any]
    status_url: str


class WorkRequestDetail(WorkRequestOut):
    dagster_status: str | None  # webserver mode: the backfill's or run's status in the instance
    runs: list[RunItem]


class ComputeRequest(Strict):
    """Compute ``portfolio_id`` over the sessions of [``from``, ``to``] (market data with its history, the
    portfolio's assets, the SQL models), as ``sigmasight backfill --portfolio ID --from ... --to ...``."""

    portfolio_id: str = Field(min_length=1, max_length=64)
    start: dt.date = Field(alias="from")
    end: dt.date = Field(alias="to")


class Instigator(BaseModel):
    name: str
    kind: str  # "sensor" | "schedule" | "automation" (Dagster's instigator type, lower case)
    status: str  # RUNNING | STOPPED
    status_source: str  # "instance" (set in the UI / daemon) or "default" (the definition's default status)
    defined: bool  # in the loaded definitions (False: a state the instance keeps of an instigator gone since)
    cron_schedule: str | None
    last_tick_at: dt.datetime | None


class EngineCoverage(BaseModel):
    engine: str
    first: dt.date | None
    latest: dt.date | None
    covered: int
    sessions: int
    gaps: int
    missing: str | None
    failed_checks: str | None


class PortfolioCoverage(BaseModel):
    portfolio_id: str
    latest_computed_date: dt.date | None  # of the portfolio snapshots
    engines: list[EngineCoverage]


class Automation(BaseModel):
    instigators: list[Instigator]
    portfolios: list[PortfolioCoverage]


# --- helpers ---------------------------------------------------------------------------------------------------

def instance_of(request: Request):
    """The API process's Dagster instance (``DAGSTER_HOME``); 503 when it cannot be opened."""
    try:
        return request.app.state.launcher.instance()
    except Exception as exc:  # noqa: BLE001 - a missing / broken DAGSTER_HOME is the deployment's, not a 500
        raise ApiError(503, None, f"the Dagster instance is not reachable: {type(exc).__name__}: {exc}"[:400]) from None


def _when(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)


def run_item(record=None, *, run=None) -> dict:
    """A :class:`RunItem` of a ``RunRecord`` (or of a bare ``DagsterRun``)."""
    run = record.dagster_run if record is not None else run
    tags = dict(run.tags or {})
    return {
        "run_id": run.run_id, "status": run.status.value, "job_name": run.job_name,
        "partition": tags.get(PARTITION_TAG), "range_start": tags.get(RANGE_START_TAG), "range_end": tags.get(RANGE_END_TAG),
        "covers": tags.get(COVERS_TAG), "backfill_id": tags.get(BACKFILL_TAG) or tags.get(DAGSTER_BACKFILL_TAG),
        "requested_by": tags.get(REQUESTED_BY_TAG), "tags": tags,
        "created_at": _when(record.create_timestamp) if record is not None else None,
        "start_time": _when(record.start_time) if record is not None else None,
        "end_time": _when(record.end_time) if record is not None else None,
    }


def _records_of(instance, run_ids) -> list:
    import dagster as dg

    ids = list(run_ids)
    return list(instance.get_run_records(filters=dg.RunsFilter(run_ids=ids))) if ids else []


def request_runs(instance, work) -> tuple[list[dict], str | None]:
    """The runs of a work request (newest first) and, through a webserver, its backfill's or run's status."""
    import dagster as dg

    if work.mode == "in_process":
        records = instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_TAG: work.request_id}))
        return [run_item(r) for r in records], None
    backfill = instance.get_backfill(work.request_id)
    if backfill is not None:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={DAGSTER_BACKFILL_TAG: work.request_id}))
        return [run_item(r) for r in records], backfill.status.value
    records = _records_of(instance, [work.request_id])
    return [run_item(r) for r in records], (records[0].dagster_run.status.value if records else None)


def describe(request: Request, work) -> dict:
    return request.app.state.launcher.describe(work)


# --- work requests -----------------------------------------------------------------------------------------------

@router.get("/requests/{request_id}", response_model=WorkRequestDetail,
            summary="A work request's state and its Dagster runs (the key that made it, or an operator)")
def get_request(request: Request, request_id: str, who: Caller = Depends(caller)):
    launcher = request.app.state.launcher
    work = launcher.get(request_id) or launcher.recover(request_id)  # taken before a restart: from its runs
    if work is None or not (who.is_operator or work.key_id == who.key.key_id):
        raise ApiError(404, "request_id", f"no work request {request_id!r}")
    runs, status = request_runs(instance_of(request), work)
    return {**describe(request, work), "dagster_status": status, "runs": runs}


@router.get("/operations/requests", response_model=Page[WorkRequestOut],
            summary="This API process's work requests, newest first (operators)")
def list_requests(request: Request, limit: Limit = 100, cursor: Cursor = None, who: Caller = Depends(operator)):
    items = [describe(request, w) for w in request.app.state.launcher.requests()]
    return page(items, limit=limit, cursor=cursor)


# --- runs --------------------------------------------------------------------------------------------------------

@router.get("/operations/runs", response_model=Page[RunItem],
            summary="Run history of the Dagster instance, newest first (operators)")
def list_runs(
    request: Request,
    status: Annotated[str | None, Query(max_length=20, description=f"one of {', '.join(RUN_STATUSES)}")] = None,
    portfolio_id: Annotated[str | None, Query(max_length=64, description="runs whose partitions are this portfolio's")] = None,
    limit: Limit = 100, cursor: Cursor = None, who: Caller = Depends(operator),
):
    import dagster as dg

    filters = None
    if status is not None:
        if status.upper() not in RUN_STATUSES:
            raise ApiError(422, "status", f"unknown run status {status!r}; one of {', '.join(RUN_STATUSES)}")
        filters = dg.RunsFilter(statuses=[dg.DagsterRunStatus(status.upper())])
    if portfolio_id is not None:
        portfolio_of(request, portfolio_id, who)
    records = instance_of(request).get_run_records(filters=filters)  # newest first
    items = [run_item(r) for r in records]
    if portfolio_id is not None:
        items = [i for i in items if portfolio_id in portfolios_of_run(i["tags"])]
    return page(items, limit=limit, cursor=cursor)


@router.get("/operations/runs/{run_id}", response_model=RunDetail,
            summary="One run with its asset check results and step failures (operators)")
def get_run(request: Request, run_id: str, who: Caller = Depends(operator)):
    import dagster as dg

    instance = instance_of(request)
    record = instance.get_run_record_by_id(run_id) if len(run_id) <= 64 else None
    if record is None:
        raise ApiError(404, "run_id", f"no run {run_id!r} in the Dagster instance")
    checks, failures = [], []
    events = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.STEP_FAILURE}).records
    for event in events:
        dagster_event = event.event_log_entry.dagster_event
        data = dagster_event.event_specific_data if dagster_event is not None else None
        if data is None:
            continue
        if dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            checks.append({"asset_key": data.asset_key.to_user_string(), "check_name": data.check_name,
                           "passed": bool(data.passed), "severity": data.severity.value})
        elif getattr(data, "error", None) is not None:
            message = (data.error.message or "").strip().splitlines()
            failures.append(f"{dagster_event.step_key}: {message[0] if message else 'failed'}")
    return {**run_item(record), "asset_checks": checks, "failures": failures}


# --- compute -------------------------------------------------------------------------------------------------------

def partition_bounds() -> tuple[dt.date, dt.date]:
    """First and last date of the date x portfolio partitions (``SIGMASIGHT_PARTITION_START`` / ``_END``)."""
    from sigmasight_pipeline.defs.partitions import portfolio_days

    first = dt.date.fromisoformat(portfolio_days.get_first_partition_key())
    last = portfolio_days.get_last_partition_key()
    return first, (dt.date.fromisoformat(last) if last else first)


def webserver_failure(exc: Exception) -> ApiError:
    return ApiError(502, None, f"the Dagster webserver refused or could not be reached: {type(exc).__name__}: {exc}"[:500])


@router.post("/operations/compute", response_model=WorkRequestOut, status_code=202,
             summary="Compute a portfolio over a date range: a Dagster backfill or in-process runs (operators)")
def compute(request: Request, body: ComputeRequest, who: Caller = Depends(operator)):
    from sigmasight_pipeline import runner as orch

    pid = portfolio_of(request, body.portfolio_id, who)["portfolio_id"]
    check_range(body.start, body.end)
    first_allowed, last_allowed = partition_bounds()
    for name, value in (("from", body.start), ("to", body.end)):
        if not first_allowed <= value <= last_allowed:
            raise ApiError(422, name, f"'{name}' ({value:%Y-%m-%d}) is outside the partitions "
                                      f"{first_allowed:%Y-%m-%d} .. {last_allowed:%Y-%m-%d} "
                                      "(SIGMASIGHT_PARTITION_START / _END)")
    try:
        first, last = orch.weekday_keys(body.start, body.end)
    except ValueError as exc:
        raise ApiError(422, "from", str(exc)) from None
    label = f"compute {pid} {first}..{last}"
    launcher = request.app.state.launcher

    def plan(ctx) -> dict:
        summary = orch.run_window(ctx.instance, [pid], first, last, defs=ctx.defs, tags=ctx.tags, workers=1,
                                  progress=lambda _line: None)
        failed = sorted(k for k, ok in summary["checks"].items() if not ok)
        if failed:  # as `sigmasight backfill` exits 1
            raise RuntimeError(f"failed checks: {', '.join(failed)} (runs {', '.join(summary['runs'])})")
        return {"runs": summary["runs"], "warnings": sorted(k for k, ok in summary["warnings"].items() if not ok)}

    def launch(url: str, tags: dict[str, str]) -> str:
        from sigmasight_pipeline import webserver_client as web

        ranges = orch.backfill_ranges(launcher.definitions(), [pid], first, last)
        try:
            return web.launch_backfill(url, list(ranges), partition_ranges=ranges, tags=tags,
                                       title=f"sigmasight api: {label}")
        except (web.WebserverError, OSError, ValueError) as exc:
            raise webserver_failure(exc) from None

    work = launcher.submit(label, key_id=who.key.key_id, in_process=plan, via_webserver=launch)
    return describe(request, work)


# --- automation ----------------------------------------------------------------------------------------------------

@router.get("/operations/automation", response_model=Automation,
            summary="Sensors / schedules state and the latest computed date per portfolio (operators)")
def automation(request: Request, who: Caller = Depends(operator)):
    from sigmasight_pipeline.status import portfolio_status

    instance = instance_of(request)
    defs = request.app.state.launcher.definitions()
    stored = {s.instigator_name: s for s in instance.all_instigator_state()}
    out = []
    defined = [(s, "sensor", None) for s in (defs.sensors or [])]
    defined += [(s, "schedule", getattr(s, "cron_schedule", None)) for s in (defs.schedules or [])]
    for definition, kind, cron in defined:
        state = stored.pop(definition.name, None)
        default = getattr(definition.default_status, "value", str(definition.default_status))
        out.append({
            "name": definition.name, "kind": kind, "defined": True,
            "status": state.status.value if state is not None else default,
            "status_source": "instance" if state is not None else "default",
            "cron_schedule": cron if isinstance(cron, str) else (", ".join(cron) if cron else None),
            "last_tick_at": _last_tick(state),
        })
    for name, state in sorted(stored.items()):
        out.append({"name": name, "kind": state.instigator_type.value.lower(), "defined": False,
                    "status": state.status.value, "status_source": "instance", "cron_schedule": None,
                    "last_tick_at": _last_tick(state)})
    table = portfolio_status(instance, engine=request.app.state.engine)
    portfolios = []
    for pid, rows in table.groupby("portfolio", sort=True):
        engines = [{
            "engine": r.engine, "first": _day(r.first), "latest": _day(r.latest), "covered": int(r.covered),
            "sessions": int(r.sessions), "gaps": int(r.gaps), "missing": r.missing or None,
            "failed_checks": r.failed_checks or None,
        } for r in rows.itertuples()]
        snapshots = [e["latest"] for e in engines if e["engine"] == "portfolio_snapshots"]
        portfolios.append({"portfolio_id": pid, "latest_computed_date": snapshots[0] if snapshots else None,
                           "engines": engines})
    return {"instigators": out, "portfolios": portfolios}


def _last_tick(state) -> dt.datetime | None:
    data = getattr(state, "instigator_data", None) if state is not None else None
    return _when(getattr(data, "last_tick_timestamp", None)) if data is not None else None


def _day(value) -> dt.date | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()
