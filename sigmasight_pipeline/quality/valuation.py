"""Valuations and exposures: the portfolio figures add up and equal the sums of their position rows."""

from __future__ import annotations

import pandas as pd

#: Money tolerance: a cent, plus rounding.
MONEY_TOLERANCE = 0.011


def exposure_problems(
    vals: pd.DataFrame, expo: pd.DataFrame, positions: pd.DataFrame, portfolio_id: str, tol: float = MONEY_TOLERANCE
) -> list[str]:
    """Inconsistencies between stored position valuations and portfolio exposures (empty when consistent).

    Per date of ``expo``: gross = long + |short|; net = long + short; long + short counts and options + stocks
    counts equal the position count; the position count equals the positions valued that date; net equals the
    sum of the position market values (to ``tol`` per position); delta-adjusted long + short = delta-adjusted
    exposure; and delta-adjusted (equity) + volatility delta exposure (VIX options, kept apart) = the sum of the
    position delta-adjusted exposures (to ``tol`` per position; not checked where volatility_delta_exposure is
    NULL, a row written before the split).
    """
    if expo.empty:
        return []
    out = []
    e = expo.set_index("date")
    gross = (e.long_exposure + e.short_exposure.abs() - e.gross_exposure).abs() > tol
    net = (e.long_exposure + e.short_exposure - e.net_exposure).abs() > tol
    counts = (e.long_count + e.short_count != e.position_count) | (e.option_count + e.stock_count != e.position_count)
    held = vals.groupby("date").position_id.count().reindex(e.index).fillna(0)
    count_held = held != e.position_count
    mv = vals.groupby("date").market_value.sum(min_count=1).reindex(e.index)
    sums = (mv.fillna(0) - e.net_exposure).abs() > tol * held.clip(lower=1)
    split = (e.delta_adjusted_long + e.delta_adjusted_short - e.delta_adjusted_exposure).abs() > tol
    dae = vals.groupby("date").delta_adjusted_exposure.sum().reindex(e.index).fillna(0)
    vol = e.volatility_delta_exposure
    dae_sums = vol.notna() & ((e.delta_adjusted_exposure + vol.fillna(0) - dae).abs() > tol * held.clip(lower=1))
    for name, mask in (("gross != long + |short|", gross), ("net != long + short", net), ("counts do not add up", counts),
                       ("position_count != positions valued", count_held), ("net != sum of position values", sums),
                       ("delta-adjusted long + short != delta-adjusted exposure", split),
                       ("delta-adjusted + volatility delta != sum of position delta-adjusted exposures", dae_sums)):
        out += [f"{portfolio_id} {d:%Y-%m-%d}: {name}" for d in e.index[mask.to_numpy()]]
    return out
