"""The daily schedule: after the US close, on XNYS sessions only, the whole graph for that session.

The business date is computed here, not taken from the partitions: a weekday time-window partition for
Friday only closes at Monday 00:00, so "the latest complete partition" on Friday evening is Thursday.
"""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from sigmasight_pipeline.defs.operations import requests as rq
from sigmasight_pipeline.defs.partitions import PORTFOLIO_DIMENSION
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame

DAILY_CRON = "30 18 * * 1-5"
DAILY_TIMEZONE = "America/New_York"


def portfolios_with_positions(engine) -> set[str]:
    """Portfolios that have positions in the warehouse (``portfolio_positions`` has run for them)."""
    p = schema.positions
    return set(read_frame(engine, sa.select(p.c.portfolio_id).distinct()).portfolio_id)


def daily_run_key(date) -> str:
    return f"daily-{rq.business_date(date):%Y-%m-%d}"


@dg.schedule(
    name="daily_risk_schedule",
    cron_schedule=DAILY_CRON,
    execution_timezone=DAILY_TIMEZONE,
    target=dg.AssetSelection.assets(*rq.MARKET_KEYS),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "18:30 New York, Monday to Friday (after the 16:00 close; early closes at 13:00 are covered too). On an "
        "XNYS session: one market run (market_prices, security_returns and their checks) for that date; when it "
        "succeeds, run_chain_sensor launches one run of every date x portfolio asset for that date over every "
        "portfolio with positions, then the SQL models. Holidays launch nothing (the skip names the holiday). "
        "Needs run_chain_sensor running for the follow-ups."
    ),
)
def daily_risk_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    when = rq.new_york_time(context.scheduled_execution_time)
    date = rq.business_date(when)
    reason = xcal.non_session_reason(date)
    if reason is not None:
        return dg.SkipReason(f"{date:%Y-%m-%d} is not an XNYS session ({reason}): nothing to compute")
    close = xcal.session_close(date)
    if when < close:
        return dg.SkipReason(
            f"{when:%Y-%m-%d %H:%M %Z} is before the close of {date:%Y-%m-%d} "
            f"({close.tz_convert(rq.NEW_YORK):%H:%M %Z}): prices are not final"
        )
    order = list(context.instance.get_dynamic_partitions(PORTFOLIO_DIMENSION))
    with_positions = portfolios_with_positions(warehouse.engine)
    portfolio_ids = [p for p in order if p in with_positions]
    skipped = [p for p in order if p not in with_positions]
    if skipped:
        context.log.warning(f"portfolios without positions left out of {date:%Y-%m-%d}: {', '.join(skipped)}")
    return rq.daily_market_request(
        date, portfolio_ids, rq.pipeline_keys(context), order=order, run_key=daily_run_key(date)
    )
