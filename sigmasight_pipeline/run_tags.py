"""The Dagster run tags SigmaSight reads and writes, and which portfolios a run covers according to them.

Plain strings, no Dagster import: the webserver client, the API and the CLI read them alike.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Dagster's partition tags: one partition, its portfolio dimension, and a ranged run's first and last key.
PARTITION_TAG = "dagster/partition"
PORTFOLIO_PARTITION_TAG = "dagster/partition/portfolio"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
#: The Dagster backfill a run belongs to (runs the daemon launches for a backfill).
DAGSTER_BACKFILL_TAG = "dagster/backfill"
#: Carried by every run of one CLI backfill or one API work request, so the UI's Runs page filters them together.
BACKFILL_TAG = "sigmasight/backfill"
#: What a run covers, readable in the Runs list ("market 2024-05-14..2025-06-30", "demo-hnw 2025-01-02..").
COVERS_TAG = "sigmasight/covers"
#: The API key id that asked for the work (API work requests).
REQUESTED_BY_TAG = "sigmasight/requested_by"


def portfolios_of_run(tags: Mapping[str, str]) -> set[str]:
    """The portfolios a run's partition tags name (a date x portfolio key is ``date|portfolio``); empty for a run
    of date-only or unpartitioned assets (market data, SQL models), which serve every portfolio."""
    out = {tags[PORTFOLIO_PARTITION_TAG]} if PORTFOLIO_PARTITION_TAG in tags else set()
    for name in (PARTITION_TAG, RANGE_START_TAG, RANGE_END_TAG):
        value = tags.get(name) or ""
        if "|" in value:
            out.add(value.split("|", 1)[1])
    return out
