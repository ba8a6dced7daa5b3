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
    sum of the position market values (to ``tol`` per position).
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
    for name, mask in (("gross != long + |short|", gross), ("net != long + short", net), ("counts do not add up", counts),
                       ("position_count != positions valued", count_held), ("net != sum of position values", sums)):
        out += [f"{portfolio_id} {d:%Y-%m-%d}: {name}" for d in e.index[mask.to_numpy()]]
    return out
