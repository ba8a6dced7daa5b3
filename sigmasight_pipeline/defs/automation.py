"""Declarative automation: when each asset materializes by itself, and the sensor that evaluates it.

Every trading day, with nobody touching the UI:

1. **Market data** (``market_prices``) on a cron condition after the New York close (18:30, Monday to
   Friday) for the session that just closed; sessions missed in the last week (the daemon was down) are
   caught up on the same tick. A weekday holiday requests nothing. When a book changes (a portfolio's
   positions are materialized: onboarding, a new upload), the whole market history is requested again, so
   new symbols get the 150-session window behind the first computed date.
2. **Returns** follow exactly the market partitions that were updated.
3. **The date x portfolio engines** (Greeks, valuations, factor exposures, ...) follow once their upstream
   partitions are updated and the blocking checks upstream passed: the recent sessions when market data
   updates, and every date of a portfolio whose book is new or changed (a new portfolio's history).
4. **The SQL models** (staging views, marts) follow any update of the tables they read.

A tick's requests go out as ONE backfill (``emit_backfills``), so Dagster orders them by dependency
(market before engines before SQL models) and applies the single-run backfill policy: one market run, one
run per key of the smaller dimension of the engines (one run for a day's portfolios), one SQL-models run.
The UI's Automation page shows, per asset and partition, which part of the condition held.

What Dagster's built-in conditions cannot express is the exchange calendar: a cron string knows weekdays,
not XNYS holidays or early closes. ``XnysSessions`` (a custom condition) keeps only partitions whose date is
a completed XNYS session; it needs the sensor to evaluate in the code server (``use_user_code_server``),
which is what makes custom conditions possible. ``test_automation.py`` shows a holiday requesting nothing.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from sigmasight_pipeline.defs.partitions import key_dimensions
from sigmasight_pipeline.marketdata import calendar as xcal

#: After the 16:00 close (13:00 on early closes) with time for the last prints to settle.
DAILY_CRON = "30 18 * * 1-5"
DAILY_TIMEZONE = "America/New_York"
#: Missed sessions this far back are caught up by the next daily tick.
CATCH_UP_SESSIONS = 5
#: Engine partitions recomputed when market data updates (the latest session and a few before it, so a
#: corrected close recomputes its neighbourhood; older dates change only with their book).
RECENT_SESSIONS = 5

POSITIONS = dg.AssetSelection.assets("portfolio_positions")  # by key: no import of another domain's module
SENSOR_NAME = "sigmasight_automation"
#: Tag of a positions run whose caller computes the dates its trades affect (``sigmasight trades import``:
#: from the first trade date on); the engines' "book changed" trigger ignores it. Value: that first date.
TRADES_WINDOW_TAG = "sigmasight/trades_from"


class XnysSessions(dg.AutomationCondition):
    """True for partitions dated on or before the latest XNYS session closed at the evaluation time.

    ``latest=None``: every such date; ``latest=n``: from the ``n``-th most recent closed session on; holidays
    between sessions are kept, so a requested range stays contiguous (one run under the single-run policy)
    and a holiday inside it materializes as its explicit no-op. ``latest=0``: only today's date in New York,
    once today's session has closed (nothing on a holiday). Works on date and date x portfolio partitions.
    """

    def __init__(self, latest: int | None = None):
        self.latest = latest

    @property
    def name(self) -> str:  # part of the condition's unique id: the parameter must be in it
        return "xnys_sessions" if self.latest is None else f"xnys_sessions(latest={self.latest})"

    @property
    def description(self) -> str:
        if self.latest is None:
            return "dated on or before the latest closed XNYS session"
        if self.latest == 0:
            return "dated today, and today's XNYS session has closed"
        return f"dated within the {self.latest} latest closed XNYS sessions"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidates = context.candidate_subset
        if candidates.is_empty:
            return dg.AutomationResult(context=context, true_subset=candidates)
        first, last = closed_date_range(context.evaluation_time, self.latest)
        keep = {k for k in candidates.expensively_compute_partition_keys() if first <= _date_of(k) <= last}
        return dg.AutomationResult(context=context, true_subset=candidates.compute_intersection_with_partition_keys(keep))


def closed_date_range(now: dt.datetime, latest: int | None) -> tuple[str, str]:
    """The ISO dates ``(first, last)`` a :class:`XnysSessions` condition keeps at ``now`` (first > last: none)."""
    last = xcal.latest_completed_session(now)
    if latest == 0:
        today = xcal.business_date(now)
        return (f"{today:%Y-%m-%d}",) * 2 if last == today else ("9999-12-31", "0000-01-01")
    first = xcal.sessions_window(last, latest)[0] if latest else xcal.CALENDAR_START
    return f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"


def _date_of(partition_key: str) -> str:
    return key_dimensions(partition_key)["date"] if "|" in partition_key else partition_key


def _recent() -> dg.AutomationCondition:
    # A cheap time-window filter first: `&` narrows the partitions the conditions after it look at, and a
    # `since` condition evaluates its trigger over every partition of the asset.
    return dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=10))


def _not_running() -> dg.AutomationCondition:
    return ~dg.AutomationCondition.in_progress()


def market_condition() -> dg.AutomationCondition:
    """``market_prices``: today's session once closed, on the daily cron tick (plus missed recent sessions;
    a holiday requests nothing); every session again when a book changed (new symbols need their history)."""
    cron_tick = dg.AutomationCondition.cron_tick_passed(DAILY_CRON, DAILY_TIMEZONE).since_last_handled()
    daily = cron_tick & _recent() & (
        XnysSessions(latest=0) | (XnysSessions(latest=CATCH_UP_SESSIONS) & dg.AutomationCondition.missing())
    )
    book_changed = dg.AutomationCondition.any_deps_updated().since_last_handled() & XnysSessions()
    return ((daily | book_changed) & _not_running()).with_label("after the close on XNYS sessions, or a book changed")


def blocking_checks_passed() -> dg.AutomationCondition:
    """Every dependency either passed its blocking checks (on its latest materialization) or runs in this
    tick's run, where a failing blocking check stops this asset's step anyway.

    Dagster's ``all_deps_blocking_checks_passed()`` accepts a check only if the CHECK is requested this tick;
    our checks have no conditions of their own and ride along with their asset's run, so the in-tick case
    is decided on the asset instead (``test_automation.py``: a failed check stops what follows).
    """
    passed = dg.AutomationCondition.all_checks_match(dg.AutomationCondition.check_passed(), blocking_only=True)
    return dg.AutomationCondition.all_deps_match(passed | dg.AutomationCondition.will_be_requested()).with_label(
        "all_deps_blocking_checks_passed"
    )


def _deps_ready() -> dg.AutomationCondition:
    return (
        ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & blocking_checks_passed()
        & _not_running()
    )


def follow_condition() -> dg.AutomationCondition:
    """``security_returns``: exactly the partitions whose upstream updated, once blocking checks passed."""
    updated = dg.AutomationCondition.any_deps_updated().since_last_handled()
    return (updated & XnysSessions() & _deps_ready()).with_label("upstream updated")


def engine_condition() -> dg.AutomationCondition:
    """The date x portfolio engines: recent sessions when market data or an upstream engine updates; every
    session of a portfolio that is new (its partitions appear) or whose book changed."""
    new_partition = dg.AutomationCondition.newly_missing()
    # A positions run tagged with TRADES_WINDOW_TAG comes from `sigmasight trades import`, which computes the
    # dates its trades affect (from the first trade date on) itself; a new upload or an inbox file of trades
    # is followed here, over every session of the book.
    book_update = dg.AutomationCondition.newly_updated() & ~dg.AutomationCondition.executed_with_tags(
        tag_keys={TRADES_WINDOW_TAG}
    )
    book_changed = dg.AutomationCondition.any_deps_match(book_update).allow(POSITIONS)
    upstream = dg.AutomationCondition.any_deps_updated().ignore(POSITIONS)
    trigger = (
        ((new_partition | book_changed) & XnysSessions())
        | (_recent() & XnysSessions(latest=RECENT_SESSIONS) & upstream)
    ).since_last_handled()
    return (trigger & _deps_ready()).with_label("new or changed book, or upstream updated")


def sql_models_condition() -> dg.AutomationCondition:
    """The SQL models (unpartitioned, over the whole warehouse): after any update of what they read, and
    once when missing (a new deployment: views of reference tables have no upstream run to follow). A
    missing model whose last build failed waits for an update of what it reads instead of retrying."""
    missing = dg.AutomationCondition.missing() & ~dg.AutomationCondition.execution_failed()
    return (
        (dg.AutomationCondition.any_deps_updated().since_last_handled() | missing)
        & ~dg.AutomationCondition.any_deps_in_progress()
        & _not_running()
    ).with_label("a table they read updated, or missing")


# `portfolio_positions` has no condition: a book is stored by onboarding, which requests its run.
automation_sensor = dg.AutomationConditionSensorDefinition(
    SENSOR_NAME,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    emit_backfills=True,
    # Custom conditions (XnysSessions) are evaluated in the code location, not in the daemon.
    use_user_code_server=True,
    description=(
        "Evaluates the assets' automation conditions every 30 s: market data after the New York close on XNYS "
        "sessions, then returns, the date x portfolio engines and the SQL models as their upstream updates; a "
        "new or changed book gets its history. Each tick's requests are one backfill (single-run policy)."
    ),
)
