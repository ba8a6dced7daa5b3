"""The check of ``portfolio_snapshots``: snapshot value and P&L equal the sums of their position rows
(``quality.snapshots``), on the rows the asset just stored."""

import dagster as dg

from sigmasight_pipeline.defs.metadata import problems_result

SNAPSHOT_SUMS = dg.AssetCheckSpec(
    "snapshot_sums",
    asset="portfolio_snapshots",
    blocking=True,
    description="Snapshot value equals the sum of position values, and daily P&L the sum of position P&L.",
)


def snapshot_sums(problems: list[str], snapshots_checked: int) -> dg.AssetCheckResult:
    """``snapshot_sums`` from the problems ``quality.snapshots.snapshot_problems`` found per batch."""
    return problems_result(SNAPSHOT_SUMS, problems, snapshots_checked=snapshots_checked)
