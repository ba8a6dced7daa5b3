"""Security master: name, asset type, sector, industry, fund category and dividend yield per symbol.

Offline it is ``data/security_master.csv`` (the demo universe: every ticker and option underlying of the
three demo books, the 7 factor ETFs, ^TNX, ^IRX, ^VIX). Online, ``lookup`` takes the source's own
classification (``fetch_info``, e.g. ``YFinanceSource().fetch_security_info``) first and fills each field it
lacks from the file.

Fields (``COLUMNS``):

* ``asset_type``: stock, etf, mutual_fund, index, option (and "unknown" for a symbol nobody knows);
* ``sector`` / ``industry``: Yahoo's taxonomy for a stock (Technology / Semiconductors); for a fund the
  broad asset class of its category (Equity, Fixed Income, International Equity, Real Estate, Commodities,
  ...: ``fund_sector``) and the category itself; "Unclassified" when nobody knows (``UNKNOWN_SECTOR``,
  named by the ``unclassified_symbols`` check, never silently another group);
* ``category``: a fund's Morningstar category (e.g. "Large Blend"); empty for anything else;
* ``dividend_yield``: annual dividend yield as a DECIMAL (0.0045 = 0.45 %), used as the continuous yield q
  of Black-Scholes-Merton; 0 for a stock that pays none; empty (unknown) for an index or yield.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources

import pandas as pd

from .base import option_underlying, price_symbol_for

DATA_FILE = "security_master.csv"
COLUMNS: tuple[str, ...] = ("symbol", "name", "asset_type", "sector", "industry", "category", "dividend_yield")
ASSET_TYPES: tuple[str, ...] = ("stock", "etf", "mutual_fund", "index", "option")
FUND_TYPES: tuple[str, ...] = ("etf", "mutual_fund")
UNKNOWN_SECTOR = "Unclassified"
UNKNOWN_ASSET_TYPE = "unknown"

#: A fund's broad asset class from words of its Morningstar category, first match wins (so "Foreign Large
#: Blend" is International Equity, not Equity, and "Emerging Markets Bond" is Fixed Income).
_FUND_SECTOR_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Fixed Income", ("bond", "muni", "treasury", "government", "corporate", "high yield", "inflation",
                      "bank loan", "ultrashort", "money market", "credit", "securitized", "preferred")),
    ("Real Estate", ("real estate", "reit")),
    ("Commodities", ("commodit", "precious metals", "gold")),
    ("Allocation", ("allocation", "target", "balanced", "tactical")),
    ("Alternative", ("trading", "volatility", "long-short", "market neutral", "multistrategy", "event driven",
                     "macro", "managed futures", "options")),
    ("International Equity", ("foreign", "world", "global", "emerging", "international", "europe", "pacific",
                              "japan", "china", "india", "latin america", "miscellaneous region")),
    ("Equity", ("large", "mid-cap", "mid cap", "small", "equity", "technology", "health", "financial", "energy",
                "utilities", "industrials", "consumer", "communications", "natural resources", "infrastructure",
                "derivative income")),
)


def fund_sector(category: str | None) -> str | None:
    """The broad asset class of a fund from its Morningstar category ("Intermediate Core Bond" -> "Fixed
    Income", "Large Blend" -> "Equity", "Foreign Large Blend" -> "International Equity"); None when the
    category is empty or matches no rule (the symbol then stays unclassified, and is named)."""
    text = str(category or "").strip().lower()
    if not text:
        return None
    for sector, words in _FUND_SECTOR_RULES:
        if any(w in text for w in words):
            return sector
    return None


def is_unclassified(sector) -> bool:
    """True for a sector nobody knows: missing, blank or "Unclassified"."""
    if sector is None or (isinstance(sector, float) and math.isnan(sector)):
        return True
    text = str(sector).strip()
    return not text or text == UNKNOWN_SECTOR


@lru_cache(maxsize=1)
def _master() -> pd.DataFrame:
    path = resources.files("sigmasight_pipeline") / "data" / DATA_FILE
    with path.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{DATA_FILE}: missing columns {missing}")
    table = table[list(COLUMNS)].copy()
    table["symbol"] = table["symbol"].str.strip().str.upper()
    bad = sorted(set(table["asset_type"]) - set(ASSET_TYPES))
    if bad:
        raise ValueError(f"{DATA_FILE}: unknown asset_type values {bad}")
    text = table["dividend_yield"].str.strip()
    q = pd.to_numeric(text.where(text != "", None), errors="coerce")
    wrong = (text != "") & ~q.between(0.0, 1.0, inclusive="left")
    if wrong.any():
        i = int(wrong.to_numpy().nonzero()[0][0])
        raise ValueError(f"{DATA_FILE}: row {i + 2} ({table['symbol'].iloc[i]}), column 'dividend_yield': "
                         f"{text.iloc[i]!r} is not a decimal yield in [0, 1) (0.0045 = 0.45 %)")
    table["dividend_yield"] = q.astype("float64")
    table["category"] = table["category"].where(table["category"].str.strip() != "", None)
    return table


def load_security_master() -> pd.DataFrame:
    """The data file as a frame with the columns ``COLUMNS`` (a copy); ``dividend_yield`` float (NaN:
    unknown), ``category`` None where empty."""
    return _master().copy()


def _known() -> dict[str, dict]:
    return {r["symbol"]: r for r in _master().to_dict("records")}


def _present(value) -> bool:
    """A field value someone knows: not None / NaN / blank / "unknown" / "Unclassified"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return not (isinstance(value, str) and value.strip() in ("", UNKNOWN_ASSET_TYPE, UNKNOWN_SECTOR))


def lookup(
    symbols: Iterable[str],
    fetch_info: Callable[[str], dict | None] | None = None,
) -> pd.DataFrame:
    """One row per requested symbol, in request order (duplicates kept), columns ``COLUMNS``.

    Resolution of a symbol: an OCC option symbol is asset_type "option" with its underlying's sector, industry
    and dividend yield (the underlying resolved as follows); otherwise ``fetch_info(symbol)`` when given and it
    answers (online), each field it lacks taken from the file; else the file (an underlying such as "VIX" also
    via its price symbol "^VIX"); else asset_type "unknown". A sector or industry still unknown is
    "Unclassified"; ``dividend_yield`` NaN and ``category`` None where unknown.
    """
    known = _known()
    rows = [_resolve(str(raw).strip().upper(), known, fetch_info) for raw in symbols]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["dividend_yield"] = pd.to_numeric(frame["dividend_yield"], errors="coerce").astype("float64")
    return frame


def _resolve(sym: str, known: dict[str, dict], fetch_info) -> dict:
    root = option_underlying(sym)
    if root:
        under = _resolve(root, known, fetch_info)
        row = {"name": f"{root} option", "asset_type": "option", "sector": under["sector"],
               "industry": under["industry"], "category": None, "dividend_yield": under["dividend_yield"]}
    else:
        file_row = next((known[k] for k in (sym, price_symbol_for(sym)) if k in known), None) or {}
        online = (fetch_info(sym) if fetch_info is not None else None) or {}
        row = {c: online.get(c) if _present(online.get(c)) else file_row.get(c) for c in COLUMNS}
    row["symbol"] = sym
    row["name"] = row.get("name") if _present(row.get("name")) else sym
    row["asset_type"] = row.get("asset_type") if _present(row.get("asset_type")) else UNKNOWN_ASSET_TYPE
    for c in ("sector", "industry"):
        row[c] = row.get(c) if _present(row.get(c)) else UNKNOWN_SECTOR
    row["category"] = row.get("category") if _present(row.get("category")) else None
    row["dividend_yield"] = row.get("dividend_yield") if _present(row.get("dividend_yield")) else float("nan")
    return {c: row[c] for c in COLUMNS}


def unclassified(symbols: Iterable[str], master: pd.DataFrame) -> list[str]:
    """The ``symbols`` (sorted, unique) whose sector in ``master`` (a frame with ``symbol`` and ``sector``) is
    unknown: no row, or a sector that ``is_unclassified``. Pass market-data symbols: an option is
    classified by its underlying."""
    sectors = dict(zip(master["symbol"], master["sector"])) if len(master) else {}
    return sorted({s for s in symbols if is_unclassified(sectors.get(s))})
