"""Daily returns from closing prices."""

from __future__ import annotations

import numpy as np
import pandas as pd


def daily_returns(closes: pd.DataFrame, dates: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """Simple and log returns of each symbol between consecutive sessions of ``closes``.

    ``closes`` is a (session x symbol) frame of adjusted closes; the first row serves only as the
    previous close. A return needs both closes: a missing close gives no return (never a return over a
    gap of several sessions, which would mix horizons in a regression). Non-positive prices give none.

    Returns a long frame ``date, symbol, simple_return, log_return`` restricted to ``dates`` if given.
    """
    closes = closes.sort_index()
    valid = closes.where(closes > 0)
    prev = valid.shift(1)
    simple = valid / prev - 1.0
    log = np.log(valid) - np.log(prev)
    if dates is not None:
        keep = simple.index.isin(pd.DatetimeIndex(dates))
        simple, log = simple.loc[keep], log.loc[keep]
    out = pd.DataFrame(
        {
            "simple_return": simple.stack(future_stack=True),
            "log_return": log.stack(future_stack=True),
        }
    ).dropna()
    out.index.names = ["date", "symbol"]
    return out.reset_index()
