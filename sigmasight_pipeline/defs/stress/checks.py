"""The checks of ``stress_results``: the loss cap, losses against equity, one result per scenario and date, zero
shock gives zero P&L (``quality.stress``), on the rows the asset just stored."""

import dagster as dg

from sigmasight_pipeline.defs.metadata import problems_result

LOSS_CAP = dg.AssetCheckSpec(
    "loss_cap",
    asset="stress_results",
    blocking=True,
    description="An unlevered long-only book never loses more than its gross exposure in any scenario; capped rows are flagged, never silent.",
)

LOSSES_WITHIN_EQUITY = dg.AssetCheckSpec(
    "stress_losses_within_equity",
    asset="stress_results",
    blocking=False,
    description=(
        "WARNING (never blocks): names every (date, scenario) in which the book would lose more than its equity "
        "(net liquidation value = net exposure; no cash modelled). A levered or long/short book can; the row "
        "carries exceeds_equity and the report flags it \"beyond equity\"."
    ),
)

SCENARIO_COUNT = dg.AssetCheckSpec(
    "scenario_count",
    asset="stress_results",
    blocking=True,
    description="Every date has exactly one result per scenario of the scenario file.",
)

ZERO_SHOCK_ZERO_PNL = dg.AssetCheckSpec(
    "zero_shock_zero_pnl",
    asset="stress_results",
    description="A scenario with every shock at zero gives exactly zero P&L on the stored inputs.",
)


def loss_cap(violations: list[str]) -> dg.AssetCheckResult:
    """``loss_cap`` from the violations ``quality.stress.loss_cap_problems`` found per batch."""
    return problems_result(LOSS_CAP, violations, key="violations")


def losses_within_equity(problems: list[str]) -> dg.AssetCheckResult:
    """``stress_losses_within_equity`` (WARN) from the rows ``quality.stress.equity_loss_problems`` found per
    batch: every one named, with their count."""
    return problems_result(LOSSES_WITHIN_EQUITY, problems, key="rows", limit=None,
                           severity=dg.AssetCheckSeverity.WARN, count=len(problems))


def scenario_count(problems: list[str], expected: int) -> dg.AssetCheckResult:
    """``scenario_count`` from the problems ``quality.stress.scenario_count_problems`` found per batch."""
    return dg.AssetCheckResult(
        check_name=SCENARIO_COUNT.name, passed=not problems,
        metadata={"expected": expected, "problems": "\n".join(problems[:20]) or "none"},
    )


def zero_shock_zero_pnl(problems: list[str]) -> dg.AssetCheckResult:
    """``zero_shock_zero_pnl`` (WARN) from the problems ``quality.stress.zero_shock_problems`` found per batch."""
    return problems_result(ZERO_SHOCK_ZERO_PNL, problems, limit=None, severity=dg.AssetCheckSeverity.WARN)
