"""The checks of ``risk_measures``: ES at least VaR and Euler contributions that add up (blocking); the VaR
backtest and limited history (warnings), evaluated by ``quality.risk_measures`` on the rows the asset just
stored (the frames it wrote: double precision, integers, dates and text, which the tables store as given)."""

import dagster as dg

from sigmasight_pipeline.defs.metadata import problems_result

ES_AT_LEAST_VAR = dg.AssetCheckSpec(
    "es_at_least_var",
    asset="risk_measures",
    blocking=True,
    description=(
        "At every date, method (historical, parametric), level and horizon with both figures, the expected "
        "shortfall is at least the VaR (relative tolerance 1e-9)."
    ),
)

CONTRIBUTIONS_ADD_UP = dg.AssetCheckSpec(
    "contributions_add_up",
    asset="risk_measures",
    blocking=True,
    description=(
        "Euler contributions add up to their totals (relative 1e-9): positions to the historical ES at each "
        "level, positions to the parametric 1-day sigma, factors plus specific risk to the parametric sigma."
    ),
)

BACKTEST_ZONE = dg.AssetCheckSpec(
    "var_backtest",
    asset="risk_measures",
    blocking=False,
    description=(
        "WARNING (never blocks): names every date whose 99% VaR backtest over the last 250 sessions is in the "
        "Basel red zone (10 or more exceptions) or whose Kupiec proportion-of-failures p-value is below 0.05."
    ),
)

LIMITED_HISTORY = dg.AssetCheckSpec(
    "risk_window_history",
    asset="risk_measures",
    blocking=False,
    description=(
        "WARNING (never blocks): names every date whose historical VaR rests on fewer than the 250 scenarios of "
        "the risk window (limited_history, 100-249) or was not computed (insufficient_history, under 100)."
    ),
)


def es_at_least_var(problems: list[str], rows_checked: int) -> dg.AssetCheckResult:
    """``es_at_least_var`` from ``quality.risk_measures.es_at_least_var_problems`` per batch."""
    return problems_result(ES_AT_LEAST_VAR, problems, rows_checked=rows_checked)


def contributions_add_up(problems: list[str]) -> dg.AssetCheckResult:
    """``contributions_add_up`` from ``quality.risk_measures.contribution_sum_problems`` per batch."""
    return problems_result(CONTRIBUTIONS_ADD_UP, problems)


def backtest_zone(problems: list[str], sessions_backtested: int) -> dg.AssetCheckResult:
    """``var_backtest`` (WARN) from ``quality.risk_measures.backtest_problems`` per batch, with their count."""
    return problems_result(BACKTEST_ZONE, problems, key="dates", severity=dg.AssetCheckSeverity.WARN,
                           count=len(problems), sessions_backtested=sessions_backtested)


def limited_history(problems: list[str]) -> dg.AssetCheckResult:
    """``risk_window_history`` (WARN) from ``quality.risk_measures.limited_history_problems`` per batch."""
    return problems_result(LIMITED_HISTORY, problems, key="dates", severity=dg.AssetCheckSeverity.WARN,
                           count=len(problems))
