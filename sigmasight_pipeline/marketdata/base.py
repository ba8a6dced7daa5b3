"""The market-data interface shared by every source, the symbol constants and the universe.

Contract of a source (``MarketDataSource``)
-------------------------------------------
``fetch(symbols, start, end, *, skip=None) -> (closes, report)`` is the one call. ``closes`` is a
wide frame:

* index: tz-naive, normalized ``DatetimeIndex`` named ``date``, the XNYS sessions in [start, end]
  (inclusive) for which the source has at least one value, ascending;
* columns: the requested symbols the source has any value for, in request order (a symbol with no
  value at all is absent from the columns and listed in ``report.symbols_missing``);
* values: float64 adjusted closes; ^TNX / ^IRX are yields in percent (4.2 means 4.2 %); NaN where a
  value is missing on a session.

Requested symbols are stripped, upper-cased and deduplicated (first occurrence kept) before use.
``skip`` maps symbol -> dates the caller already stores. A remote source (yfinance) downloads only
what is not covered; local sources ignore it and return everything. ``fetch_closes(...)`` is
``fetch(...)[0]``. Every source also keeps the report of its latest call in ``last_report``.

``fetch_splits(symbols) -> splits`` is the source's split history (books.md, "Corporate actions"): a frame of
exactly the columns ``SPLIT_COLUMNS`` (``symbol``: the requested symbol, stripped and upper-cased; ``ex_date``:
tz-naive, normalized Timestamp; ``ratio``: float N / M, so a 10-for-1 split is 10.0 and a 1-for-10 reverse
split 0.1), one row per (symbol, ex_date), sorted by symbol then ex_date; ``empty_splits()`` when there is
none. Option symbols and ^ indexes have no splits (``has_splits``). Failures met on the way (a remote source)
are listed in ``last_split_errors``; the symbols concerned are absent from the frame, never guessed.

``fetch_security_info(symbol) -> dict | None`` is the source's own classification of a symbol (security
master fields, see ``security_master.COLUMNS``), or None when it has none: the offline sources have none
(the shipped file answers), yfinance reads ``Ticker.info``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from sigmasight_pipeline.data import factor_proxies

from . import calendar as xcal


class SYMBOLS:
    """Market-data symbols with a fixed meaning."""

    TREASURY_10Y = "^TNX"  # 10-year Treasury yield, percent
    TREASURY_13W = "^IRX"  # 13-week Treasury bill yield, percent (short rate for discounting)
    VIX = "^VIX"  # CBOE volatility index


#: The seven factors and their ETF proxies, in this order. Size is SIZE everywhere (never SLY).
FACTOR_PROXIES: dict[str, str] = factor_proxies()

RATE_SYMBOLS: tuple[str, str] = (SYMBOLS.TREASURY_10Y, SYMBOLS.TREASURY_13W)

#: Index option roots (OCC) -> the index's market-data symbol. An index option's underlying is the index
#: itself, not a stock: VIX options are priced off ^VIX spot, SPX off ^GSPC (the S&P 500), NDX off ^NDX, RUT
#: off ^RUT. The PM-settled weekly roots (VIXW, SPXW, NDXP, RUTW) are the same indexes.
INDEX_OPTION_ROOTS: dict[str, str] = {
    "VIX": SYMBOLS.VIX, "VIXW": SYMBOLS.VIX,
    "SPX": "^GSPC", "SPXW": "^GSPC",
    "NDX": "^NDX", "NDXP": "^NDX",
    "RUT": "^RUT", "RUTW": "^RUT",
}

#: Underlyings whose price series has another symbol (an option on VIX is priced off ^VIX, on SPX off ^GSPC).
_PRICE_SYMBOL_ALIASES: dict[str, str] = dict(INDEX_OPTION_ROOTS)

#: OCC option symbol, compact or space-padded: root (1-6), YYMMDD, C/P, strike x 1000 (8 digits).
_OCC_RE = re.compile(r"^(?P<root>[A-Z][A-Z0-9.\-]{0,5})\s*(?P<ymd>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")

#: The columns of a splits frame. The same contract as ``sigmasight_pipeline.engines.splits.SPLIT_COLUMNS``
#: (which consumes it): ``marketdata`` may not import ``engines`` (DESIGN.md, "Layers"), so it is restated
#: here and a test holds the two equal.
SPLIT_COLUMNS: list[str] = ["symbol", "ex_date", "ratio"]


def empty_splits() -> pd.DataFrame:
    """A splits frame with no row (the columns and dtypes of ``SPLIT_COLUMNS``)."""
    return pd.DataFrame({"symbol": pd.Series(dtype=object), "ex_date": pd.Series(dtype="datetime64[ns]"),
                         "ratio": pd.Series(dtype=float)})


def splits_frame(symbols, ex_dates, ratios) -> pd.DataFrame:
    """A splits frame in the contract's shape from three equal-length sequences: symbols stripped and
    upper-cased, ex-dates normalized tz-naive (a tz-aware timestamp keeps its local date), ratios float,
    sorted by symbol and ex_date. Validation (ratio > 0, no duplicate) is the source's job."""
    symbols = pd.Series(list(symbols), dtype=object)
    if symbols.empty:
        return empty_splits()
    frame = pd.DataFrame({
        "symbol": pd.Series(symbols.astype(str).str.strip().str.upper().to_numpy(dtype=object), dtype=object),
        "ex_date": xcal.normalize_index(pd.DatetimeIndex(list(ex_dates))),
        "ratio": np.asarray(list(ratios), dtype=float),
    })
    return frame.sort_values(["symbol", "ex_date"], kind="stable").reset_index(drop=True)


def price_symbol_for(underlying: str) -> str:
    """The market-data symbol of an underlying: an index option root maps to its index ("VIX" -> "^VIX",
    "SPXW" -> "^GSPC", see ``INDEX_OPTION_ROOTS``); any other symbol unchanged."""
    sym = underlying.strip().upper()
    return _PRICE_SYMBOL_ALIASES.get(sym, sym)


def option_underlying(symbol: str) -> str | None:
    """The underlying of an OCC option symbol (e.g. "VIX250716C00025000" -> "VIX"), else None.

    Recognition only; parsing and validating OCC symbols belongs to ``onboarding``.
    """
    m = _OCC_RE.match(symbol.strip().upper())
    return m.group("root") if m else None


def is_option_symbol(symbol: str) -> bool:
    """True for an OCC option symbol (no market-data source prices those; they are marked to model)."""
    return option_underlying(symbol) is not None


def has_splits(symbol: str) -> bool:
    """False for what cannot split: an OCC option symbol (its contract is adjusted through its underlying)
    and an index or yield (``^VIX``, ``^TNX``); True for any other symbol (stocks, ETFs, funds)."""
    sym = str(symbol).strip().upper()
    return bool(sym) and not sym.startswith("^") and not is_option_symbol(sym)


def universe(held_symbols: Iterable[str]) -> list[str]:
    """Symbols to load: held symbols (an OCC option contributes its underlying; underlyings mapped
    with ``price_symbol_for``) + the 7 factor ETFs + ^TNX + ^IRX, deduplicated and sorted."""
    out: set[str] = set(FACTOR_PROXIES.values()) | set(RATE_SYMBOLS)
    for sym in held_symbols:
        if not sym or not sym.strip():
            continue
        out.add(price_symbol_for(option_underlying(sym) or sym))
    return sorted(out)


@dataclass
class FetchReport:
    """What one ``fetch`` asked for and what it got.

    ``symbols_missing``: requested symbols with no value at all. ``incomplete``: symbol -> number of
    sessions in [start, end] (less the skipped dates) still without a value, for symbols that have
    some values. ``attempts``: download calls made (1 per local read). ``errors``: failures met on the
    way (also those later recovered by a retry). ``notes``: informational remarks.
    """

    symbols_requested: list[str]
    symbols_missing: list[str] = field(default_factory=list)
    rows: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    source: str = ""
    start: dt.date | None = None
    end: dt.date | None = None
    incomplete: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every requested symbol has a value on every expected session."""
        return not self.symbols_missing and not self.incomplete

    def summary(self) -> str:
        """One line for logs and run metadata."""
        text = (
            f"{self.source}: {len(self.symbols_requested)} symbols {self.start}..{self.end}, "
            f"{self.rows} rows, {self.attempts} attempts"
        )
        if self.symbols_missing:
            text += f", missing: {', '.join(self.symbols_missing)}"
        if self.incomplete:
            text += f", incomplete: {', '.join(f'{k} ({v})' for k, v in self.incomplete.items())}"
        if self.errors:
            text += f", {len(self.errors)} errors"
        return text


@runtime_checkable
class MarketDataSource(Protocol):
    """A price source; see the module docstring for the frame contract."""

    name: str
    last_report: FetchReport | None

    def fetch(
        self,
        symbols: Sequence[str],
        start: dt.date,
        end: dt.date,
        *,
        skip: Mapping[str, Iterable[dt.date]] | None = None,
    ) -> tuple[pd.DataFrame, FetchReport]: ...

    def fetch_closes(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pd.DataFrame: ...

    def fetch_splits(self, symbols: Sequence[str]) -> pd.DataFrame: ...

    def fetch_security_info(self, symbol: str) -> dict | None: ...


def dedupe_symbols(symbols: Iterable[str]) -> list[str]:
    """Stripped, upper-cased symbols in first-seen order without duplicates or blanks."""
    if isinstance(symbols, str):
        symbols = [symbols]
    seen: dict[str, None] = {}
    for s in symbols:
        s = str(s).strip().upper()
        if s:
            seen.setdefault(s, None)
    return list(seen)


def skipped_dates(skip: Mapping[str, Iterable[dt.date]] | None, symbol: str) -> set[pd.Timestamp]:
    """The dates of ``skip[symbol]`` as normalized Timestamps (empty set if none)."""
    if not skip or symbol not in skip:
        return set()
    return {xcal.to_timestamp(d) for d in skip[symbol]}


class SourceBase:
    """Shared plumbing: ``fetch_closes``, ``last_report``, ``last_split_errors``, shaping the result
    (``finish``) and the offline answer to ``fetch_security_info`` (None: the shipped file answers)."""

    name: str = "base"

    def __init__(self) -> None:
        self.last_report: FetchReport | None = None
        self.last_split_errors: list[str] = []

    def fetch(self, symbols, start, end, *, skip=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def fetch_splits(self, symbols: Sequence[str]) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def fetch_security_info(self, symbol: str) -> dict | None:
        """None: an offline source has no classification of its own (the shipped security master answers)."""
        return None

    def fetch_closes(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pd.DataFrame:
        """The closes frame of ``fetch`` (its report is kept in ``last_report``)."""
        return self.fetch(symbols, start, end)[0]

    def finish(
        self,
        frame: pd.DataFrame,
        symbols: Sequence[str],
        start: dt.date,
        end: dt.date,
        *,
        attempts: int,
        errors: list[str] | None = None,
        notes: list[str] | None = None,
        skip: Mapping[str, Iterable[dt.date]] | None = None,
    ) -> tuple[pd.DataFrame, FetchReport]:
        """Shape ``frame`` (any date index, symbol columns) to the contract and build the report."""
        sessions = xcal.sessions_in_range(start, end)
        if frame is None or frame.empty:
            frame = pd.DataFrame(index=pd.DatetimeIndex([], name="date"))
        else:
            frame = frame.copy()
            frame.index = xcal.normalize_index(frame.index)
            frame = frame[~frame.index.duplicated(keep="last")]
        present = [s for s in symbols if s in frame.columns and frame[s].notna().any()]
        frame = frame.reindex(columns=present).astype("float64")
        frame = frame[frame.index.isin(sessions)].sort_index()
        frame = frame.loc[frame.notna().any(axis=1)]
        frame.index.name = "date"
        frame.columns.name = None
        present = [s for s in present if frame[s].notna().any()]
        frame = frame[present]
        incomplete: dict[str, int] = {}
        for s in present:
            expected = sessions.difference(pd.DatetimeIndex(sorted(skipped_dates(skip, s))))
            have = frame.index[frame[s].notna().to_numpy()]
            gap = int(len(expected.difference(have)))
            if gap:
                incomplete[s] = gap
        report = FetchReport(
            symbols_requested=list(symbols),
            symbols_missing=[s for s in symbols if s not in present],
            rows=int(len(frame)),
            attempts=attempts,
            errors=list(errors or []),
            source=self.name,
            start=xcal.to_timestamp(start).date(),
            end=xcal.to_timestamp(end).date(),
            incomplete=incomplete,
            notes=list(notes or []),
        )
        self.last_report = report
        return frame, report


def empty_closes() -> pd.DataFrame:
    """An empty closes frame with the contract's index."""
    return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), dtype=np.float64)
