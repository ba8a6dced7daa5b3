"""Partitions shared by every domain: trading dates, portfolios, and their product.

Dates are weekdays (``0 0 * * 1-5``). Exchange holidays stay in the partition set on purpose: the XNYS
calendar (``marketdata.calendar``) decides at run time, and a holiday materializes as an explicit
no-op whose metadata gives the reason, so the UI shows every weekday accounted for.
Portfolios are a dynamic dimension: onboarding a portfolio adds its key (a slug of ``[a-z0-9_-]``,
since Dagster reserves ``|``, ``,``, ``[`` and ``]`` in keys).
"""

from __future__ import annotations

import os

import dagster as dg
import pandas as pd

PARTITION_START_ENV = "SIGMASIGHT_PARTITION_START"
DEFAULT_PARTITION_START = "2024-01-01"

trading_days = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5",
    start=os.environ.get(PARTITION_START_ENV, DEFAULT_PARTITION_START),
    fmt="%Y-%m-%d",
    timezone="America/New_York",
)

PORTFOLIO_DIMENSION = "portfolio"
portfolios = dg.DynamicPartitionsDefinition(name=PORTFOLIO_DIMENSION)

date_portfolio = dg.MultiPartitionsDefinition({"date": trading_days, PORTFOLIO_DIMENSION: portfolios})

# Ranged runs (backfills, the demo, the schedule) compute the whole range in one vectorised pass.
single_run = dg.BackfillPolicy.single_run()


def partition_dates(context: dg.AssetExecutionContext) -> pd.DatetimeIndex:
    """The dates of the run's partition(s), for a date-only or a date x portfolio asset."""
    keys = context.partition_keys
    if isinstance(context.assets_def.partitions_def, dg.MultiPartitionsDefinition):
        dates = {_dims(k)["date"] for k in keys}
    else:
        dates = set(keys)
    return pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in dates))


def partition_portfolios(context: dg.AssetExecutionContext) -> list[str]:
    """The portfolio ids of the run's partition(s), in key order."""
    keys = context.partition_keys
    if isinstance(context.assets_def.partitions_def, dg.MultiPartitionsDefinition):
        ids = []
        for k in keys:
            pid = _dims(k)[PORTFOLIO_DIMENSION]
            if pid not in ids:
                ids.append(pid)
        return ids
    return list(dict.fromkeys(keys))


def _dims(key) -> dict[str, str]:
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension
    date, portfolio = str(key).split("|", 1)
    return {"date": date, PORTFOLIO_DIMENSION: portfolio}


def multi_key(date: str | pd.Timestamp, portfolio_id: str) -> dg.MultiPartitionKey:
    """The date x portfolio key for one partition."""
    return dg.MultiPartitionKey({"date": pd.Timestamp(date).strftime("%Y-%m-%d"), PORTFOLIO_DIMENSION: portfolio_id})
