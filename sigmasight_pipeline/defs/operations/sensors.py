"""Sensors: launch the follow-ups of successful runs (chaining by tag), and onboard files dropped in the inbox.

``run_chain_sensor`` is a cursor-based ``@dg.sensor`` reading successful runs from ``context.instance``
rather than a ``@run_status_sensor``: a run status sensor cannot target an asset selection (it takes
``request_job(s)`` only, and RunRequests of a sensor without a target are refused), and it sees only runs of
its own code location, whereas runs launched in-process by the ``sigmasight`` CLI carry the same tags and are
followed up too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from sigmasight_pipeline.defs.operations import requests as rq
from sigmasight_pipeline.defs.partitions import portfolios
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.onboarding import PortfolioValidationError, parse_portfolio_csv, slugify
from sigmasight_pipeline.onboarding import inbox
from sigmasight_pipeline.warehouse.io import project_home
from sigmasight_pipeline.warehouse.portfolios import save_portfolio_source
from sigmasight_pipeline.warehouse.reference import load_reference_data

# --------------------------------------------------------------------------------------------------------
# Chaining: the follow-ups of every successful run, exactly once.

#: With no cursor yet (first evaluation), successful runs updated within this period are followed up.
CHAIN_LOOKBACK = dt.timedelta(hours=24)
#: Runs updated this close to the cursor are read again (timestamps can tie); their ids are in the cursor.
CHAIN_OVERLAP_SECONDS = 5.0
CHAIN_PAGE = 500


def _utc_ts(value: dt.datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()


def chain_tick(instance: dg.DagsterInstance, cursor: str | None, *, now: float | None = None) -> tuple[list[dg.RunRequest], str]:
    """The follow-up requests of the successful runs not seen yet, and the new cursor.

    Cursor: ``{"after": <update timestamp of the newest run read>, "seen": {run_id: update timestamp}}``; runs
    updated after ``after - CHAIN_OVERLAP_SECONDS`` are read and those in ``seen`` skipped.
    """
    now = time.time() if now is None else now
    state = json.loads(cursor) if cursor else {}
    after = float(state.get("after", now - CHAIN_LOOKBACK.total_seconds()))
    seen: dict[str, float] = dict(state.get("seen", {}))

    def read(since: float):
        return instance.get_run_records(
            filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.SUCCESS],
                updated_after=dt.datetime.fromtimestamp(since, tz=dt.timezone.utc),
            ),
            order_by="update_timestamp",
            ascending=True,
            limit=CHAIN_PAGE,
        )

    records = read(after - CHAIN_OVERLAP_SECONDS)
    if len(records) == CHAIN_PAGE and all(r.dagster_run.run_id in seen for r in records):
        records = read(after)  # a full page of already-seen runs: step past the overlap
    requests: list[dg.RunRequest] = []
    newest = after
    for record in records:
        run = record.dagster_run
        ts = _utc_ts(record.update_timestamp)
        newest = max(newest, ts)
        if run.run_id in seen:
            continue
        seen[run.run_id] = ts
        requests += rq.follow_up_requests(run.run_id, dict(run.tags))
    seen = {rid: ts for rid, ts in seen.items() if ts >= newest - CHAIN_OVERLAP_SECONDS}
    return requests, json.dumps({"after": newest, "seen": seen}, sort_keys=True)


@dg.sensor(
    name="run_chain_sensor",
    asset_selection=dg.AssetSelection.all(),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Launches the follow-up runs carried in the `sigmasight/then` tag of every successful run (market -> "
        "portfolios -> SQL models; onboarding positions -> market history -> portfolio backfill -> SQL models), "
        "once: run key `<parent run id>:then:<i>`, the parent in `sigmasight/parent_run`. A failed run launches "
        "nothing; re-executing it from the UI keeps its tags, so its success continues the chain."
    ),
)
def run_chain_sensor(context: dg.SensorEvaluationContext):
    requests, cursor = chain_tick(context.instance, context.cursor)
    for r in requests:
        context.log.info(f"follow-up {r.run_key}: {', '.join(k.to_user_string() for k in r.asset_selection or [])}")
    if not requests:
        return dg.SensorResult(skip_reason="no successful run with follow-ups since the last evaluation", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


# --------------------------------------------------------------------------------------------------------
# The portfolio inbox.

INBOX_ENV = "SIGMASIGHT_INBOX_DIR"
INBOX_SETTLE_ENV = "SIGMASIGHT_INBOX_SETTLE_SECONDS"
DEFAULT_INBOX_SETTLE_SECONDS = 5.0
INBOX_FILES_PER_TICK = 10
SOURCE_FILE_TAG = "sigmasight/source_file"
FILE_HASH_TAG = "sigmasight/file_sha256"


def inbox_root() -> Path:
    """``$SIGMASIGHT_INBOX_DIR``, else ``$SIGMASIGHT_HOME/inbox`` (``./.sigmasight/inbox``), created with its
    ``processed/`` and ``rejected/`` folders."""
    return inbox.ensure_inbox(os.environ.get(INBOX_ENV) or project_home() / "inbox")


def _settle_seconds() -> float:
    raw = os.environ.get(INBOX_SETTLE_ENV)
    return float(raw) if raw not in (None, "") else DEFAULT_INBOX_SETTLE_SECONDS


@dataclass
class InboxOutcome:
    file: str
    moved_to: Path
    portfolio_id: str | None = None
    request: dg.RunRequest | None = None
    reason: str | None = None  # why it was rejected
    report: Path | None = None


def onboard_file(path: Path, root: Path, engine, keys: rq.PipelineKeys, *, log=None) -> InboxOutcome:
    """Validate, store and move one inbox file; the run request of an accepted one (see module docstring).

    Order: read, sidecar, full validation, name and id; only then the upload is stored (a rejected file stores
    nothing) and the file moved to ``processed/``. A problem with the file itself rejects it with its report;
    an error of the system (database down) propagates and leaves the file where it is for the next tick.
    """
    original = path.name

    def rejected(reason: str, errors=()) -> InboxOutcome:
        moved, report = inbox.reject(path, root, reason=reason, errors=errors)
        if log:
            log.warning(f"rejected {original}: {reason} (report: {report})")
        return InboxOutcome(original, moved, reason=reason, report=report)

    try:
        data = path.read_bytes()
    except OSError as exc:
        return rejected(f"unreadable file: {exc}")
    try:
        sidecar = inbox.read_sidecar(path)
    except ValueError as exc:
        return rejected(str(exc))
    try:
        parsed = parse_portfolio_csv(data)
    except PortfolioValidationError as exc:
        n = len(exc.errors)
        return rejected(f"{n} validation error{'s' if n != 1 else ''} in the portfolio CSV", exc.errors)
    try:
        name = sidecar.get("name") or inbox.name_from_filename(path)
        portfolio_id = slugify(sidecar.get("id") or name)
    except ValueError as exc:
        return rejected(str(exc))
    digest = inbox.file_digest(data)
    request = rq.onboarding_request(
        portfolio_id,
        min(p.entry_date for p in parsed),
        keys,
        run_key=f"inbox:{portfolio_id}:{digest[:16]}",
        tags={SOURCE_FILE_TAG: original, FILE_HASH_TAG: digest[:16]},
    )
    try:
        save_portfolio_source(
            engine, portfolio_id=portfolio_id, name=name, owner=sidecar.get("owner"),
            csv_text=data.decode("utf-8-sig"), filename=original,
        )
    except ValueError as exc:  # the name belongs to another portfolio
        return rejected(str(exc))
    moved = inbox.accept(path, root)
    if log:
        log.info(f"accepted {original} as portfolio {portfolio_id!r} ({name}); moved to {moved}")
    return InboxOutcome(original, moved, portfolio_id=portfolio_id, request=request)


@dg.sensor(
    name="portfolio_inbox_sensor",
    asset_selection=dg.AssetSelection.all(),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Onboards each portfolio CSV dropped in $SIGMASIGHT_INBOX_DIR (default $SIGMASIGHT_HOME/inbox), oldest "
        "first: validates it (all-or-nothing), names it from an optional <stem>.json sidecar "
        '({"name", "owner", "id"}) or from the file name, stores the upload, adds the portfolio partition and '
        "requests portfolio_positions, then (chained) the market history, the portfolio's backfill window and "
        "the SQL models. The file moves to processed/, or to rejected/ with <file>.errors.txt listing every error."
    ),
)
def portfolio_inbox_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    root = inbox_root()
    files = inbox.list_candidates(root, min_age_seconds=_settle_seconds())[:INBOX_FILES_PER_TICK]
    if not files:
        return dg.SkipReason(f"no portfolio CSV waiting in {root}")
    engine = warehouse.engine
    keys = rq.pipeline_keys(context)
    outcomes: list[InboxOutcome] = []
    reference_loaded = False
    for path in files:
        try:
            if not reference_loaded:
                load_reference_data(engine)  # as `sigmasight onboard` does: security master, factors, scenarios
                reference_loaded = True
            outcomes.append(onboard_file(path, root, engine, keys, log=context.log))
        except Exception:  # a system error: keep this file (and the next ones) for the next evaluation
            context.log.exception(f"could not process {path.name}; it stays in the inbox for the next evaluation")
            break
    accepted = [o for o in outcomes if o.request is not None]
    rejected = [o for o in outcomes if o.request is None]
    if not accepted:
        summary = "; ".join(f"{o.file}: {o.reason}" for o in rejected) or "nothing processed"
        return dg.SkipReason(f"rejected {len(rejected)} file(s): {summary}")
    new_ids = list(dict.fromkeys(o.portfolio_id for o in accepted))
    return dg.SensorResult(
        run_requests=[o.request for o in accepted],
        dynamic_partitions_requests=[portfolios.build_add_request(new_ids)],
    )
