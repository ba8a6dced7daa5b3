"""Portfolio snapshots: value and daily P&L equal the sums of their position rows."""

from __future__ import annotations

import pandas as pd

#: Allowed difference per position: a cent.
CENT = 0.01


def snapshot_problems(snaps: pd.DataFrame, vals: pd.DataFrame, pnl: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Snapshots whose value or P&L differ from the sums of their stored position rows (by more than a cent per position).

    ``snaps``: ``date``, ``total_value``, ``daily_pnl``; ``vals``: position ``date``, ``position_id``,
    ``market_value``; ``pnl``: position ``date``, ``daily_pnl``.
    """
    if snaps.empty:
        return []
    s = snaps.set_index("date")
    value = vals.groupby("date").market_value.sum().reindex(s.index).fillna(0)
    daily = pnl.groupby("date").daily_pnl.sum().reindex(s.index).fillna(0)
    n = vals.groupby("date").position_id.count().reindex(s.index).fillna(1).clip(lower=1)
    out = [f"{portfolio_id} {d:%Y-%m-%d}: total_value {s.total_value[d]:,.2f} != sum of positions {value[d]:,.2f}"
           for d in s.index[((s.total_value - value).abs() > CENT * n).to_numpy()]]
    out += [f"{portfolio_id} {d:%Y-%m-%d}: daily_pnl {s.daily_pnl[d]:,.2f} != sum of position P&L {daily[d]:,.2f}"
            for d in s.index[((s.daily_pnl - daily).abs() > CENT * n).to_numpy()]]
    return out
