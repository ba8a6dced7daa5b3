"""``YFinanceSource``: adjusted daily closes from Yahoo Finance through ``yfinance`` (1.x).

Downloads
    Symbols are grouped by the span of sessions they still need, and each group is fetched in
    chunks of ``batch_size`` with one ``yfinance.download(tickers=[...], start, end + 1 day,
    auto_adjust=True, progress=False, group_by="column", threads=True)`` call per chunk. A call that
    raises or returns no value is retried up to ``max_attempts`` times, waiting
    ``base_delay * 2 ** (attempt - 1)`` seconds between attempts (``sleep`` is injectable). Then the
    symbols of a chunk still without any value are downloaded again on their own
    (``missing_retries`` rounds). The downloader and the ``Ticker.info`` reader are injectable, so
    tests never reach the network.

Only missing dates
    ``fetch(..., skip={symbol: dates already stored})`` and/or the constructor's
    ``have(symbol) -> set[date]`` name what is already stored. A symbol's needed sessions are the
    sessions in [start, end] not covered; a symbol that needs none is not downloaded; otherwise its
    download span is min..max of its needed sessions (dates inside that span that are already stored
    come back too, which is harmless for idempotent writes).

Frame handling
    yfinance 1.x returns columns as a MultiIndex (level "Price": Close, High, ...; level "Ticker"),
    also for one ticker; the index ("Date") may be tz-aware. The "Close" level is taken ("Adj Close"
    if present), the index becomes tz-naive local dates, non-session rows are dropped, all-NaN
    columns count as missing.

Splits
    ``fetch_splits`` reads each symbol's split history, ``yfinance.Ticker(symbol).splits`` (injectable
    as ``splits``): in yfinance 1.x a Series named "Stock Splits" indexed by tz-aware exchange-time
    timestamps named "Date", values N / M (NVDA's 2024-06-10 split: 10.0), empty when the symbol never
    split, and None when its history could not be downloaded (yfinance logs the error and leaves the
    history unset). None or an exception is retried like a download (``max_attempts``, backoff); a
    symbol still failing is listed in ``last_split_errors`` and absent from the frame, so the splits
    already stored for it stay as they are. Option symbols and ^ indexes are not asked.

Security info
    ``fetch_security_info`` reads ``Ticker.info`` (injectable as ``info``); ``security_info_from_yfinance``
    maps it to the security master's fields, see its docstring for the dividend yield's units.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from . import calendar as xcal
from .base import SourceBase, dedupe_symbols, empty_splits, has_splits, skipped_dates, splits_frame
from .security_master import fund_sector

#: yfinance ``quoteType`` -> security-master asset type.
QUOTE_TYPES: dict[str, str] = {
    "EQUITY": "stock",
    "ETF": "etf",
    "MUTUALFUND": "mutual_fund",
    "INDEX": "index",
    "OPTION": "option",
}


def _default_download(**kwargs):
    import yfinance

    with warnings.catch_warnings():  # yfinance 1.x uses pandas APIs deprecated in pandas 3.1
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return yfinance.download(**kwargs)


def _default_info(symbol: str) -> Mapping[str, Any]:
    import yfinance

    return yfinance.Ticker(symbol).info


def _default_splits(symbol: str) -> pd.Series | None:
    import yfinance

    with warnings.catch_warnings():  # as in _default_download
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return yfinance.Ticker(symbol).splits


def splits_from_yfinance(series: pd.Series, symbol: str) -> tuple[pd.DataFrame, list[str]]:
    """``Ticker(symbol).splits`` (yfinance 1.x) as a splits frame of ``symbol``, and the problems met.

    The index's tz-aware timestamps become their local dates (a split's ex-date is an exchange date);
    zero or NaN values (no split that day, as ``history()`` fills its "Stock Splits" column) are dropped;
    a negative or infinite ratio, or two values on one date, is a problem: named and left out.
    """
    if series is None or len(series) == 0:
        return empty_splits(), []
    ratios = pd.to_numeric(pd.Series(series.to_numpy(), index=range(len(series))), errors="coerce")
    dates = xcal.normalize_index(series.index)
    keep = (ratios.notna() & (ratios != 0)).to_numpy()
    dates, ratios = dates[keep], ratios.to_numpy(dtype=float)[keep]
    problems = [f"{symbol}: split on {d.date()} has ratio {float(r)} (must be > 0)"
                for d, r in zip(dates, ratios) if not (np.isfinite(r) and r > 0)]
    good = np.isfinite(ratios) & (ratios > 0)
    dup = pd.Index(dates).duplicated(keep=False) & good
    problems += [f"{symbol}: two splits on {d.date()} ({', '.join(str(float(x)) for x in ratios[dates == d])})"
                 for d in pd.Index(dates[dup]).unique()]
    good &= ~dup
    frame = splits_frame([symbol] * int(good.sum()), dates[good], ratios[good])
    return frame, problems


def closes_from_download(raw: pd.DataFrame | None, tickers: Iterable[str]) -> pd.DataFrame:
    """The close prices in a ``yfinance.download`` result as a frame of ``tickers`` columns.

    Accepts the 1.x MultiIndex layout (either level order), a flat single-ticker frame (columns
    Open/High/Low/Close/...) or a flat frame of tickers. Index: tz-naive dates, sorted, unique.
    Tickers absent from ``raw`` are absent from the result.
    """
    tickers = list(tickers)
    if raw is None or not isinstance(raw, pd.DataFrame) or raw.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="date"))
    cols = raw.columns
    if isinstance(cols, pd.MultiIndex):
        field_level = next(
            (i for i in range(cols.nlevels) if {"Close", "Adj Close"} & set(cols.get_level_values(i))),
            None,
        )
        if field_level is None:
            return pd.DataFrame(index=pd.DatetimeIndex([], name="date"))
        fields = set(cols.get_level_values(field_level))
        # yfinance gives a failed ticker an empty frame that has an "Adj Close" column even with
        # auto_adjust=True, so "Adj Close" is only preferred where it holds a value.
        closes = _field(raw, "Close", field_level) if "Close" in fields else None
        if "Adj Close" in fields:
            adj = _field(raw, "Adj Close", field_level)
            closes = adj if closes is None else adj.combine_first(closes)
    elif {"Close", "Adj Close"} & set(cols) and len(tickers) == 1:
        pick = "Adj Close" if "Adj Close" in cols and raw["Adj Close"].notna().any() else "Close"
        closes = raw[[pick]].set_axis(tickers, axis=1)
    else:
        closes = raw
    by_upper = {t.upper(): t for t in tickers}
    closes = closes.loc[:, [c for c in closes.columns if str(c).upper() in by_upper]]
    closes.columns = [by_upper[str(c).upper()] for c in closes.columns]
    closes = closes.loc[:, ~closes.columns.duplicated()]
    closes = closes.apply(pd.to_numeric, errors="coerce").astype("float64")
    closes.index = xcal.normalize_index(closes.index)
    closes = closes[~closes.index.duplicated(keep="last")].sort_index()
    closes.index.name = "date"
    return closes


def _field(raw: pd.DataFrame, name: str, level: int) -> pd.DataFrame:
    """The ``name`` columns of a MultiIndex frame, keyed by ticker (the last other level)."""
    part = raw.xs(name, axis=1, level=level)
    if isinstance(part.columns, pd.MultiIndex):
        part.columns = part.columns.get_level_values(-1)
    return part.loc[:, ~part.columns.duplicated()]


class YFinanceSource(SourceBase):
    """Yahoo Finance closes (see the module docstring for batching, retries and skipping)."""

    name = "yfinance"

    def __init__(
        self,
        *,
        download: Callable[..., pd.DataFrame | None] | None = None,
        info: Callable[[str], Mapping[str, Any]] | None = None,
        splits: Callable[[str], pd.Series | None] | None = None,
        have: Callable[[str], Iterable[dt.date]] | None = None,
        batch_size: int = 50,
        max_attempts: int = 3,
        base_delay: float = 1.0,
        missing_retries: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        threads: bool = True,
    ) -> None:
        super().__init__()
        if batch_size < 1 or max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be >= 1")
        self._download = download or _default_download
        self._info = info or _default_info
        self._splits = splits or _default_splits
        self._have = have
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.missing_retries = missing_retries
        self._sleep = sleep
        self.threads = threads

    # -- downloading ---------------------------------------------------------------------------
    def _download_chunk(self, tickers: list[str], lo: pd.Timestamp, hi: pd.Timestamp, log: dict):
        """One chunk with retries and exponential backoff; returns its closes (maybe empty)."""
        closes = pd.DataFrame()
        for attempt in range(1, self.max_attempts + 1):
            log["attempts"] += 1
            label = f"{','.join(tickers[:3])}{'...' if len(tickers) > 3 else ''} {lo.date()}..{hi.date()}"
            try:
                raw = self._download(
                    tickers=list(tickers),
                    start=lo.strftime("%Y-%m-%d"),
                    end=(hi + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                    auto_adjust=True,
                    progress=False,
                    group_by="column",
                    threads=self.threads,
                )
                closes = closes_from_download(raw, tickers)
                if closes.notna().to_numpy().any():
                    return closes
                log["errors"].append(f"attempt {attempt} [{label}]: empty result")
            except Exception as exc:  # network, parsing, rate limiting: all retried
                log["errors"].append(f"attempt {attempt} [{label}]: {type(exc).__name__}: {exc}")
            if attempt < self.max_attempts:
                self._sleep(self.base_delay * 2 ** (attempt - 1))
        return closes

    def _download_group(self, tickers: list[str], lo, hi, log) -> list[pd.DataFrame]:
        """Chunks of one span; then each chunk's still-missing symbols again, on their own."""
        parts = []
        for i in range(0, len(tickers), self.batch_size):
            target = tickers[i : i + self.batch_size]
            got = self._download_chunk(target, lo, hi, log)
            parts.append(got)
            for _ in range(self.missing_retries):
                have = {c for c in got.columns if got[c].notna().any()}
                still = [t for t in target if t not in have]
                if not still or len(still) == len(target):
                    break  # all there, or the whole call failed (already retried with backoff)
                target = still
                got = self._download_chunk(target, lo, hi, log)
                parts.append(got)
        return parts

    def fetch(self, symbols, start: dt.date, end: dt.date, *, skip=None):
        """Closes of ``symbols`` in [start, end], downloading only sessions not in ``skip``/``have``."""
        syms = dedupe_symbols(symbols)
        sessions = xcal.sessions_in_range(start, end)
        merged_skip: dict[str, set[pd.Timestamp]] = {}
        spans: dict[tuple[pd.Timestamp, pd.Timestamp], list[str]] = {}
        for sym in syms:
            known = skipped_dates(skip, sym)
            if self._have is not None:
                known |= {xcal.to_timestamp(d) for d in self._have(sym)}
            merged_skip[sym] = known
            needed = sessions.difference(pd.DatetimeIndex(sorted(known)))
            if len(needed):
                spans.setdefault((needed[0], needed[-1]), []).append(sym)
        log: dict = {"attempts": 0, "errors": []}
        parts: list[pd.DataFrame] = []
        for (lo, hi), tickers in sorted(spans.items()):
            parts.extend(self._download_group(tickers, lo, hi, log))
        parts = [p for p in parts if not p.empty]
        frame = pd.DataFrame()
        for part in parts:  # a symbol fetched twice (retry round): the first value wins
            frame = part if frame.empty else frame.combine_first(part)
        nothing_needed = [s for s in syms if not any(s in t for t in spans.values())]
        notes = [f"{s}: all sessions already stored, not downloaded" for s in nothing_needed]
        frame, report = self.finish(
            frame, syms, start, end, attempts=log["attempts"], errors=log["errors"],
            notes=notes, skip={s: merged_skip[s] for s in syms},
        )
        report.symbols_missing = [s for s in report.symbols_missing if s not in nothing_needed]
        return frame, report

    # -- splits -------------------------------------------------------------------------------------
    def _split_history(self, symbol: str) -> tuple[pd.DataFrame, list[str]]:
        """One symbol's splits, with retries and backoff; (frame, errors). A symbol that fails every
        attempt has an empty frame and its errors, the last one saying it was given up."""
        errors: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            try:
                series = self._splits(symbol)
                if series is not None:
                    frame, problems = splits_from_yfinance(series, symbol)
                    return frame, errors + problems
                errors.append(f"{symbol} splits, attempt {attempt}: no split history returned (download failed)")
            except Exception as exc:  # network, parsing, rate limiting: all retried
                errors.append(f"{symbol} splits, attempt {attempt}: {type(exc).__name__}: {exc}")
            if attempt < self.max_attempts:
                self._sleep(self.base_delay * 2 ** (attempt - 1))
        errors.append(f"{symbol}: split history not loaded after {self.max_attempts} attempts")
        return empty_splits(), errors

    def fetch_splits(self, symbols) -> pd.DataFrame:
        """Split history of ``symbols`` (``base`` module docstring); options and ^ indexes are not asked.

        Symbols are read in parallel (up to 8 threads) when ``threads`` is set. Failures are listed in
        ``last_split_errors``."""
        wanted = [s for s in dedupe_symbols(symbols) if has_splits(s)]
        if self.threads and len(wanted) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
                results = list(pool.map(self._split_history, wanted))
        else:
            results = [self._split_history(s) for s in wanted]
        self.last_split_errors = [e for _, errs in results for e in errs]
        frames = [f for f, _ in results if len(f)]
        if not frames:
            return empty_splits()
        return pd.concat(frames, ignore_index=True).sort_values(["symbol", "ex_date"], kind="stable").reset_index(drop=True)

    # -- security master ---------------------------------------------------------------------------
    def fetch_security_info(self, symbol: str) -> dict | None:
        """``security_info_from_yfinance(symbol, Ticker(symbol).info)`` (symbol stripped and upper-cased); None
        when the call fails."""
        sym = symbol.strip().upper()
        try:
            info = dict(self._info(sym) or {})
        except Exception:
            return None
        return security_info_from_yfinance(sym, info)


def _number(value) -> float | None:
    """A finite float, or None (missing, text, NaN, inf)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def dividend_yield_from_info(info: Mapping[str, Any]) -> float | None:
    """The annual dividend yield in ``Ticker.info`` (yfinance 1.x) as a DECIMAL (0.0044 = 0.44 %), or None.

    yfinance 1.x mixes units, so the keys are read in this order and the first usable value wins:

    1. ``dividendYield``: the forward (indicated) yield, annual dividend rate / price, in PERCENT
       (0.44 means 0.44 %): divided by 100;
    2. ``yield``: a fund's distribution yield, a decimal;
    3. ``trailingAnnualDividendYield``: dividends of the last 12 months / price, a decimal (0.0 for a
       stock that pays none).

    A value outside [0, 1) after conversion is not usable. The yield is used as the continuous dividend
    yield q of Black-Scholes-Merton as it is: for yields of a few percent the difference between a simple
    and a continuously compounded annual rate (3 % -> 2.96 %) is below the precision of a forward
    dividend estimate.
    """
    for key, scale in (("dividendYield", 100.0), ("yield", 1.0), ("trailingAnnualDividendYield", 1.0)):
        x = _number(info.get(key))
        if x is not None and 0.0 <= x / scale < 1.0:
            return x / scale
    return None


def security_info_from_yfinance(symbol: str, info: Mapping[str, Any]) -> dict | None:
    """The security master fields of ``symbol`` from a ``Ticker.info`` dict (yfinance 1.x), or None when
    the dict is not a quote (no ``quoteType`` and no name: an unknown or delisted symbol).

    ``asset_type`` from ``quoteType`` (``QUOTE_TYPES``, else "unknown"); a stock's ``sector`` and
    ``industry`` as Yahoo gives them; a fund's (ETF, mutual fund) ``category`` is its Morningstar category
    (``info["category"]``, e.g. "Large Blend"), its ``industry`` the category and its ``sector`` the broad
    asset class of the category (``security_master.fund_sector``: "Equity", "Fixed Income", ...);
    ``dividend_yield`` per ``dividend_yield_from_info``. A field Yahoo does not give is None (the shipped
    file, then "Unclassified", fills it in ``security_master.lookup``).
    """
    quote_type = str(info.get("quoteType") or "").upper()
    name = info.get("longName") or info.get("shortName")
    if not quote_type and not name:
        return None
    asset_type = QUOTE_TYPES.get(quote_type, "unknown")
    category = info.get("category") or None
    if asset_type in ("etf", "mutual_fund"):
        sector, industry = fund_sector(category), category
    else:
        sector, industry, category = info.get("sector") or None, info.get("industry") or None, None
    return {
        "symbol": symbol.strip().upper(),
        "name": name or None,
        "asset_type": asset_type,
        "sector": sector,
        "industry": industry,
        "category": category,
        "dividend_yield": dividend_yield_from_info(info),
    }
