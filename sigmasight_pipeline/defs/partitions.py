"""Partitions shared by every domain: trading dates, portfolios, and their product.

Two date dimensions, one calendar (weekdays, ``0 0 * * 1-5``, New York):

* ``portfolio_days``: the dates the engines compute, from ``$SIGMASIGHT_PARTITION_START`` (default
  2025-01-02, the demo window's first session) to ``$SIGMASIGHT_PARTITION_END`` (default: open, today).
* ``trading_days`` (the market assets): the same calendar, starting ``HISTORY_SESSIONS`` XNYS sessions
  earlier, so the windows behind the first computed date (the 250-session risk window of the historical VaR,
  the 150-session regression window) are made of market partitions too. The UI's partition grid of an engine asset then starts where its data starts instead of
  showing the market history as "missing" for every portfolio.

``end_offset=1`` makes the window in progress a partition: a weekday window runs from its midnight to the
next weekday's midnight, so without it Friday's partition would only exist on Monday 00:00 and the
after-close automation on Friday evening would see Thursday as the latest date ("the Friday problem").
Whether a date is an XNYS session is decided by the calendar (``marketdata.calendar``): exchange holidays
stay in the partition set, and a holiday materializes as an explicit no-op whose metadata gives the
reason, so a backfill shows every weekday accounted for.

Portfolios are a dynamic dimension: onboarding a portfolio adds its key (a slug of ``[a-z0-9_-]``, since
Dagster reserves ``|``, ``,``, ``[`` and ``]`` in keys).
"""

from __future__ import annotations

import os

import dagster as dg
import pandas as pd

from sigmasight_pipeline.engines.risk_measures import RISK_WINDOW
from sigmasight_pipeline.marketdata import calendar as xcal

PARTITION_START_ENV = "SIGMASIGHT_PARTITION_START"
PARTITION_END_ENV = "SIGMASIGHT_PARTITION_END"
DEFAULT_PARTITION_START = "2025-01-02"

#: Market sessions before the first computed date: the 250-session risk window of the historical VaR (the
#: longest window; the regression's is 150), the previous close its first return needs, and a margin.
HISTORY_SESSIONS = RISK_WINDOW + 10

WEEKDAYS_CRON = "0 0 * * 1-5"
TIMEZONE = "America/New_York"
DATE_FORMAT = "%Y-%m-%d"


def first_computed_date() -> pd.Timestamp:
    """``$SIGMASIGHT_PARTITION_START`` (default 2025-01-02): the first date of the date x portfolio assets."""
    return pd.Timestamp(os.environ.get(PARTITION_START_ENV) or DEFAULT_PARTITION_START)


def last_computed_date() -> pd.Timestamp | None:
    """``$SIGMASIGHT_PARTITION_END`` (inclusive), or None: the partitions run up to today."""
    end = os.environ.get(PARTITION_END_ENV)
    return pd.Timestamp(end) if end else None


def history_start(first_date) -> pd.Timestamp:
    """The first session of the market history that computing ``first_date`` needs."""
    return xcal.sessions_window(xcal.previous_session(first_date), HISTORY_SESSIONS)[0]


def _weekdays(start: pd.Timestamp) -> dg.TimeWindowPartitionsDefinition:
    end = last_computed_date()
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=WEEKDAYS_CRON,
        start=start.strftime(DATE_FORMAT),
        # `end` is exclusive: the window of the last date ends on the next weekday's midnight.
        end=(end + pd.offsets.BDay(1)).strftime(DATE_FORMAT) if end is not None else None,
        end_offset=1,
        fmt=DATE_FORMAT,
        timezone=TIMEZONE,
    )


portfolio_days = _weekdays(first_computed_date())
trading_days = _weekdays(history_start(first_computed_date()))

PORTFOLIO_DIMENSION = "portfolio"
portfolios = dg.DynamicPartitionsDefinition(name=PORTFOLIO_DIMENSION)

date_portfolio = dg.MultiPartitionsDefinition({"date": portfolio_days, PORTFOLIO_DIMENSION: portfolios})

# Ranged runs (backfills, the demo, automation) compute the whole range in one vectorised pass.
single_run = dg.BackfillPolicy.single_run()


def partition_dates(context: dg.AssetExecutionContext) -> pd.DatetimeIndex:
    """The dates of the run's partition(s), for a date-only or a date x portfolio asset."""
    keys = context.partition_keys
    if isinstance(context.assets_def.partitions_def, dg.MultiPartitionsDefinition):
        dates = {key_dimensions(k)["date"] for k in keys}
    else:
        dates = set(keys)
    return pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in dates))


def partition_portfolios(context: dg.AssetExecutionContext) -> list[str]:
    """The portfolio ids of the run's partition(s), in key order."""
    keys = context.partition_keys
    if isinstance(context.assets_def.partitions_def, dg.MultiPartitionsDefinition):
        return list(dict.fromkeys(key_dimensions(k)[PORTFOLIO_DIMENSION] for k in keys))
    return list(dict.fromkeys(keys))


def key_dimensions(key) -> dict[str, str]:
    """``{"date": ..., "portfolio": ...}`` of a date x portfolio key (a ``MultiPartitionKey`` or its string)."""
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension
    date, portfolio = str(key).split("|", 1)
    return {"date": date, PORTFOLIO_DIMENSION: portfolio}


def multi_key(date: str | pd.Timestamp, portfolio_id: str) -> dg.MultiPartitionKey:
    """The date x portfolio key for one partition."""
    return dg.MultiPartitionKey({"date": pd.Timestamp(date).strftime(DATE_FORMAT), PORTFOLIO_DIMENSION: portfolio_id})
