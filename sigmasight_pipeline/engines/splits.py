"""Stock splits (books.md, "Corporate actions"): the factor that puts a quantity or price of a given date on
the split-adjusted scale of market prices.

A split N-for-M has ratio r = N / M (10-for-1: r = 10; a 1-for-10 reverse split: r = 0.1) and takes effect on
its ex-date. Market prices are split-adjusted (every close is on today's share scale), while entry and trade
prices in files are as of their own dates. A quantity dated d is therefore multiplied, and a price dated d
divided, by the product of the ratios of the splits with ex-date after d: the engines always pair an adjusted
price with an adjusted quantity, and cost basis (quantity x price) is unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SPLIT_COLUMNS", "empty_splits", "split_factors"]

#: A splits frame: one row per (symbol, ex_date); ``ratio`` > 0.
SPLIT_COLUMNS = ["symbol", "ex_date", "ratio"]


def empty_splits() -> pd.DataFrame:
    """A splits frame with no row (the right columns and dtypes)."""
    return pd.DataFrame({"symbol": pd.Series(dtype=object), "ex_date": pd.Series(dtype="datetime64[ns]"),
                         "ratio": pd.Series(dtype=float)})


def split_factors(splits: pd.DataFrame | None, symbols, dates) -> np.ndarray:
    """Per (symbol_i, date_i) pair: the product of the ratios of ``symbol_i``'s splits with ex-date > ``date_i``.

    ``symbols`` and ``dates`` are equal-length sequences (one pair per row of a book or trade file); a symbol
    without splits, or a date on or after its last ex-date, has factor 1.0. Vectorised per split (a book has
    few), not per row.
    """
    symbols = np.asarray(pd.Series(symbols, dtype=object).astype(str).str.upper(), dtype=object)
    when = pd.to_datetime(pd.Series(dates)).dt.normalize().to_numpy(dtype="datetime64[ns]")
    factor = np.ones(len(symbols))
    if splits is None or len(splits) == 0 or len(symbols) == 0:
        return factor
    ex = pd.to_datetime(splits["ex_date"]).dt.normalize().to_numpy(dtype="datetime64[ns]")
    sym = splits["symbol"].astype(str).str.upper().to_numpy(dtype=object)
    ratio = splits["ratio"].to_numpy(dtype=float)
    for s, e, r in zip(sym, ex, ratio):
        factor = np.where((symbols == s) & (when < e), factor * r, factor)
    return factor
