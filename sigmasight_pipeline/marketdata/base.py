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

#: Underlyings whose price series has another symbol (an option on VIX is priced off ^VIX).
_PRICE_SYMBOL_ALIASES: dict[str, str] = {"VIX": SYMBOLS.VIX}

#: OCC option symbol, compact or space-padded: root (1-6), YYMMDD, C/P, strike x 1000 (8 digits).
_OCC_RE = re.compile(r"^(?P<root>[A-Z][A-Z0-9.\-]{0,5})\s*(?P<ymd>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")

def price_symbol_for(underlying: str) -> str:
    """The market-data symbol of an underlying: "VIX" -> "^VIX"; any other symbol unchanged."""
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
    """Shared plumbing: ``fetch_closes``, ``last_report`` and shaping the result (``finish``)."""

    name: str = "base"

    def __init__(self) -> None:
        self.last_report: FetchReport | None = None

    def fetch(self, symbols, start, end, *, skip=None):  # pragma: no cover - abstract
        raise NotImplementedError

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
