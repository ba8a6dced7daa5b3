"""``portfolio_inbox_sensor``: a portfolio CSV dropped in the inbox folder becomes a portfolio; a file named
``<portfolio-id>.trades.csv`` adds trades to that portfolio.

Each file goes through the one onboarding path (``onboarding.onboard`` / ``onboard_trades``): validated
(all-or-nothing), stored, (for a new book) its partition added, and ``portfolio_positions`` requested. Its
history follows by declarative automation once the positions are materialized (``defs/automation.py``):
for a trades file, every session of the book is recomputed (a superset of the dates its trades affect;
``sigmasight trades import`` computes only those). A file with any error goes to ``rejected/`` with
``<file>.errors.txt`` listing every error; an accepted one to ``processed/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from sigmasight_pipeline.defs.operations.onboarding import Onboarding, TradesOnboarding, onboard, onboard_trades
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.onboarding import PortfolioValidationError, inbox
from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError
from sigmasight_pipeline.warehouse.io import project_home

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
    onboarding: Onboarding | None = None
    trades: TradesOnboarding | None = None
    reason: str | None = None  # why it was rejected
    report: Path | None = None


def onboard_file(path: Path, root: Path, engine, *, log=None) -> InboxOutcome:
    """Onboard one inbox file and move it; a rejected file stores nothing.

    Order: read, sidecar, the onboarding path (validation first); only then the file moves to
    ``processed/``. A problem with the file itself rejects it with its report; an error of the system
    (database down) propagates and leaves the file where it is for the next tick.
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
    digest = inbox.file_digest(data)[:16]
    tags = {SOURCE_FILE_TAG: original, FILE_HASH_TAG: digest}
    trades_for = inbox.trades_portfolio(path)
    if trades_for is not None:
        try:
            done = onboard_trades(engine, trades_for, data, filename=original, run_key=f"inbox:{digest}", tags=tags)
        except PortfolioValidationError as exc:
            n = len(exc.errors)
            return rejected(f"{n} validation error{'s' if n != 1 else ''} in the trades CSV", exc.errors)
        except UnknownPortfolioError as exc:
            return rejected(str(exc))
        moved = inbox.accept(path, root)
        if log:
            log.info(f"accepted {original}: {done.trades} trade(s) for portfolio {done.portfolio_id!r}; moved to {moved}")
        return InboxOutcome(original, moved, trades=done)
    try:
        sidecar = inbox.read_sidecar(path)
        name = sidecar.get("name") or inbox.name_from_filename(path)
    except ValueError as exc:
        return rejected(str(exc))
    try:
        done = onboard(
            engine, data, name=name, owner=sidecar.get("owner"), portfolio_id=sidecar.get("id"), filename=original,
            run_key=f"inbox:{digest}", tags=tags,
        )
    except PortfolioValidationError as exc:
        n = len(exc.errors)
        return rejected(f"{n} validation error{'s' if n != 1 else ''} in the portfolio CSV", exc.errors)
    except ValueError as exc:  # not a valid id, or the name belongs to another portfolio
        return rejected(str(exc))
    moved = inbox.accept(path, root)
    if log:
        log.info(f"accepted {original} as portfolio {done.portfolio_id!r} ({name}); moved to {moved}")
    return InboxOutcome(original, moved, onboarding=done)


@dg.sensor(
    name="portfolio_inbox_sensor",
    asset_selection=dg.AssetSelection.assets("portfolio_positions"),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Onboards each portfolio CSV dropped in $SIGMASIGHT_INBOX_DIR (default $SIGMASIGHT_HOME/inbox), oldest "
        "first (a <portfolio-id>.trades.csv adds trades to that portfolio): validates it (all-or-nothing), names it from an optional <stem>.json sidecar "
        '({"name", "owner", "id"}) or from the file name, stores the upload, adds the portfolio partition and '
        "requests portfolio_positions; declarative automation then computes its history. The file moves to "
        "processed/, or to rejected/ with <file>.errors.txt listing every error."
    ),
)
def portfolio_inbox_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    root = inbox_root()
    files = inbox.list_candidates(root, min_age_seconds=_settle_seconds())[:INBOX_FILES_PER_TICK]
    if not files:
        return dg.SkipReason(f"no portfolio CSV waiting in {root}")
    outcomes: list[InboxOutcome] = []
    for path in files:
        try:
            outcomes.append(onboard_file(path, root, warehouse.engine, log=context.log))
        except Exception:  # a system error: keep this file (and the next ones) for the next evaluation
            context.log.exception(f"could not process {path.name}; it stays in the inbox for the next evaluation")
            break
    accepted = [o.onboarding for o in outcomes if o.onboarding is not None]
    trades = [o.trades for o in outcomes if o.trades is not None]
    if not accepted and not trades:
        summary = "; ".join(f"{o.file}: {o.reason}" for o in outcomes) or "nothing processed"
        return dg.SkipReason(f"rejected {len(outcomes)} file(s): {summary}")
    return dg.SensorResult(
        run_requests=[o.run_request for o in accepted] + [t.run_request for t in trades],
        dynamic_partitions_requests=[o.add_partition for o in accepted],
    )
