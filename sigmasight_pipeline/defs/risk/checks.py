"""The checks of the risk assets: Greeks sanity, consistent exposures, the factor regression's history
window, no duplicate factors. Each asset declares the spec and yields the result, evaluated on the rows it
just stored, through an invariant of ``quality``."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.metadata import problems_result
from sigmasight_pipeline.defs.risk.inputs import FACTOR_WINDOW, MIN_OBS
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.quality import factors as qf
from sigmasight_pipeline.quality import greeks as qg

GREEKS_SANE = dg.AssetCheckSpec(
    "greeks_sane",
    asset="position_greeks",
    blocking=True,
    description=(
        "Per-share |delta| <= 1; gamma and vega >= 0 (so long options have non-negative position gamma "
        "and vega); put-call parity C - P = S e^{-qT} - K e^{-rT} on matched call/put pairs."
    ),
)

EXPOSURES_CONSISTENT = dg.AssetCheckSpec(
    "exposures_consistent",
    asset="position_valuations",
    blocking=True,
    description=(
        "gross = long + |short|, net = long + short, long + short counts = options + stocks = positions "
        "held, delta-adjusted long + short = delta-adjusted exposure, and the portfolio figures equal the sums "
        "of the stored position rows (delta-adjusted: equity + VIX volatility delta exposure)."
    ),
)

HISTORY_WINDOW = dg.AssetCheckSpec(
    "history_window",
    asset="factor_exposures",
    blocking=True,
    description=(
        "Every regression used the 150 sessions ending on the partition date (fewer only when flagged "
        "limited_history, never a beta from fewer than 60) and no observation after it."
    ),
)

NO_DUPLICATE_FACTORS = dg.AssetCheckSpec(
    "no_duplicate_factors",
    asset="factor_exposures",
    blocking=True,
    description=(
        "Unique (position, factor, date) and (portfolio, factor, date); the factor set equals the seven "
        "definitions and no two factors share a proxy."
    ),
)


def greeks_sane(greeks: pd.DataFrame, positions: pd.DataFrame) -> dg.AssetCheckResult:
    """``greeks_sane`` on the run's stored Greeks (with ``portfolio_id`` and ``short_rate``) and positions."""
    return problems_result(GREEKS_SANE, qg.greeks_problems(greeks, positions), rows_checked=len(greeks))


def exposures_consistent(problems: list[str], dates_checked: int) -> dg.AssetCheckResult:
    """``exposures_consistent`` from the problems ``quality.valuation.exposure_problems`` found per batch."""
    return problems_result(EXPOSURES_CONSISTENT, problems, dates_checked=dates_checked)


def history_window_problems(pos: pd.DataFrame, windows: pd.DataFrame, portfolio_id: str) -> list[str]:
    """``quality.factors.history_window_problems`` with the expected windows from the XNYS calendar (the
    calendar once per date, not once per row)."""
    dates = {pd.Timestamp(d) for frame in (pos, windows) if len(frame) for d in frame.date.unique()}
    return qf.history_window_problems(
        pos, windows, portfolio_id,
        expected_start={d: xcal.sessions_window(d, FACTOR_WINDOW)[0] for d in dates},
        expected_end={d: xcal.session_on_or_before(d) for d in dates},
        window=FACTOR_WINDOW, min_obs=MIN_OBS,
    )


def history_window(problems: list[str]) -> dg.AssetCheckResult:
    """``history_window`` from the problems ``history_window_problems`` found per batch."""
    return problems_result(HISTORY_WINDOW, problems, window=FACTOR_WINDOW, min_obs=MIN_OBS)


def no_duplicate_factors(problems: list[str], definitions: pd.DataFrame) -> dg.AssetCheckResult:
    """``no_duplicate_factors`` from the problems ``quality.factors.duplicate_factor_problems`` found per batch."""
    return problems_result(NO_DUPLICATE_FACTORS, problems, factors=", ".join(definitions.factor_name))
