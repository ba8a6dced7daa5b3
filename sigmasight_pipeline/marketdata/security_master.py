"""Security master: name, asset type, sector and industry per symbol.

Offline it is ``data/security_master.csv`` (the demo universe: every ticker and option underlying
of the three demo books, the 7 factor ETFs, ^TNX, ^IRX, ^VIX). Online, ``lookup`` can take a
fetcher for symbols the file lacks, e.g. ``YFinanceSource().fetch_security_info``.

Asset types: stock, etf, mutual_fund, index, option (and "unknown" for a symbol nobody knows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources

import pandas as pd

from .base import option_underlying, price_symbol_for

DATA_FILE = "security_master.csv"
COLUMNS: tuple[str, ...] = ("symbol", "name", "asset_type", "sector", "industry")
ASSET_TYPES: tuple[str, ...] = ("stock", "etf", "mutual_fund", "index", "option")
UNKNOWN_SECTOR = "Unclassified"


@lru_cache(maxsize=1)
def _master() -> pd.DataFrame:
    path = resources.files("sigmasight_pipeline") / "data" / DATA_FILE
    with path.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    table["symbol"] = table["symbol"].str.strip().str.upper()
    bad = sorted(set(table["asset_type"]) - set(ASSET_TYPES))
    if bad:
        raise ValueError(f"{DATA_FILE}: unknown asset_type values {bad}")
    return table[list(COLUMNS)]


def load_security_master() -> pd.DataFrame:
    """The data file as a frame with columns symbol, name, asset_type, sector, industry (a copy)."""
    return _master().copy()


def lookup(
    symbols: Iterable[str],
    fetch_info: Callable[[str], dict | None] | None = None,
) -> pd.DataFrame:
    """One row per requested symbol, in request order (duplicates kept), columns as the file.

    Resolution: the file (an underlying such as "VIX" also via its price symbol "^VIX"); else
    ``fetch_info(symbol)`` if given; else an OCC option symbol becomes asset_type "option" with its
    underlying's sector and industry; else asset_type "unknown", sector and industry "Unclassified".
    """
    known = _master().set_index("symbol")
    rows = []
    for raw in symbols:
        sym = str(raw).strip().upper()
        rows.append(_resolve(sym, known, fetch_info))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _resolve(sym: str, known: pd.DataFrame, fetch_info) -> dict:
    for key in (sym, price_symbol_for(sym)):
        if key in known.index:
            return {"symbol": sym, **known.loc[key].to_dict()}
    if fetch_info is not None:
        info = fetch_info(sym)
        if info:
            return {c: (sym if c == "symbol" else info.get(c) or UNKNOWN_SECTOR) for c in COLUMNS}
    root = option_underlying(sym)
    if root:
        under = _resolve(root, known, None)
        return {"symbol": sym, "name": f"{root} option", "asset_type": "option",
                "sector": under["sector"], "industry": under["industry"]}
    return {"symbol": sym, "name": sym, "asset_type": "unknown",
            "sector": UNKNOWN_SECTOR, "industry": UNKNOWN_SECTOR}
