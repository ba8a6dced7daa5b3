"""Market data: every symbol priced on every session, plausible returns, fresh prices of held symbols."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

#: A daily return beyond this (in absolute value) is a bad tick or an unadjusted split.
MAX_DAILY_RETURN = 0.5


def incomplete_symbols(closes: pd.DataFrame, symbols: Iterable[str], n_sessions: int) -> dict[str, int]:
    """``{symbol: sessions without a close}`` for the symbols of ``symbols`` that lack a close on some session.

    ``closes`` is the long frame stored (one row per date and symbol with a close); ``n_sessions`` the number
    of sessions it should cover. A symbol absent from ``closes`` misses all ``n_sessions``.
    """
    have = closes.groupby("symbol").size() if len(closes) else pd.Series(dtype=int)
    return {s: int(n_sessions - have.get(s, 0)) for s in symbols if have.get(s, 0) < n_sessions}


def extreme_returns(returns: pd.DataFrame, limit: float = MAX_DAILY_RETURN) -> pd.DataFrame:
    """The rows of ``returns`` whose ``simple_return`` is beyond +-``limit`` (0.5: +-50%)."""
    return returns.loc[returns.simple_return.abs() > limit]


def stale_symbols(staleness: Mapping[str, tuple[str, int | None]], max_sessions_behind: int) -> dict[str, str]:
    """``{symbol: last close date or "none"}`` of the symbols whose last close is more than
    ``max_sessions_behind`` sessions behind the latest session, or that were never priced.

    ``staleness`` maps symbol -> (last close date as text or "none", sessions behind or None when never priced).
    """
    return {s: d for s, (d, behind) in staleness.items() if behind is None or behind > max_sessions_behind}
