"""The checks of ``portfolio_performance`` and ``pnl_attribution`` (``quality.performance``), on the rows the
assets just stored (the frames they wrote; the attribution's P&L is already in cents, as the table stores it):
the attribution lines add up to the snapshot P&L (blocking); windows and attribution lines resting on less
history than they should (warnings, never blocking)."""

import dagster as dg

from sigmasight_pipeline.defs.metadata import problems_result
from sigmasight_pipeline.quality.performance import CENT

ATTRIBUTION_SUMS_TO_PNL = dg.AssetCheckSpec(
    "attribution_sums_to_pnl",
    asset="pnl_attribution",
    blocking=True,
    description=(
        "On every session with a one-day P&L, the factor, specific and residual lines add up to the snapshot's "
        "daily P&L within a cent; a first snapshot (P&L since entry) has no lines."
    ),
)

ATTRIBUTION_COVERAGE = dg.AssetCheckSpec(
    "attribution_coverage",
    asset="pnl_attribution",
    blocking=False,
    description=(
        "WARNING (never blocks): names the dates on which part of the P&L went to the residual for want of "
        "inputs: no factor exposures on the previous session, a factor without a return, positions without "
        "betas (too short a history) or without a return."
    ),
)

PERFORMANCE_HISTORY = dg.AssetCheckSpec(
    "performance_history",
    asset="portfolio_performance",
    blocking=False,
    description=(
        "WARNING (never blocks): names the windows of the latest date computed on fewer daily returns than "
        "they have sessions (limited_history: the book's history starts inside them) or without a figure "
        "(fewer than 2 returns)."
    ),
)


def attribution_sums_to_pnl(problems: list[str], dates_checked: int) -> dg.AssetCheckResult:
    """``attribution_sums_to_pnl`` from the problems ``quality.performance.attribution_sum_problems`` found per
    portfolio."""
    return problems_result(ATTRIBUTION_SUMS_TO_PNL, problems, dates_checked=dates_checked, tolerance=CENT)


def attribution_coverage(problems: list[str]) -> dg.AssetCheckResult:
    """``attribution_coverage`` (WARN) from ``quality.performance.attribution_coverage_problems``."""
    return problems_result(ATTRIBUTION_COVERAGE, problems, key="dates", severity=dg.AssetCheckSeverity.WARN,
                           count=len(problems))


def performance_history(problems: list[str], limited_rows: int) -> dg.AssetCheckResult:
    """``performance_history`` (WARN) from ``quality.performance.limited_history_problems`` (the latest date of
    each portfolio), with the run's count of (date, window) rows flagged."""
    return problems_result(PERFORMANCE_HISTORY, problems, key="windows", limit=None,
                           severity=dg.AssetCheckSeverity.WARN, flagged_rows_in_run=limited_rows)
