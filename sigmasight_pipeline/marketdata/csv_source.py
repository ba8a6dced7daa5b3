"""``CsvSource``: a user's own closes from CSV files in one directory.

Layouts (a symbol's own file wins over the long file):

* one file per symbol, ``<SYMBOL>.csv`` (file names matched case-insensitively; an index such as
  ^TNX may also be ``TNX.csv``), columns ``date`` and ``close``;
* one long file ``prices.csv`` with columns ``date``, ``symbol``, ``close``.

Column names are case-insensitive (``Date``, ``Close``); an adjusted close column (``Adj Close``,
``adj_close``, ``adjclose``) is preferred over ``close``. Dates are ISO ``YYYY-MM-DD`` (a time or
offset after the date is ignored). An empty value, ``NaN``, ``NA`` or ``null`` is a missing value.
Anything else unparsable, a negative value, a zero price (zero is allowed for ^ yields) or a
repeated date raises ``CsvFormatError`` naming the file, the row (the file's line number, header =
row 1) and the column. Non-session dates are dropped with a note in the report.

Splits: an optional ``splits.csv`` in the same directory, columns ``symbol, ex_date, ratio`` (names
case-insensitive), one row per split: ``ratio`` is N / M as a number (a 10-for-1 split is ``10``, a
1-for-10 reverse split ``0.1``), ``ex_date`` ISO ``YYYY-MM-DD``. Every bad row is reported at once in
one ``CsvFormatError`` (file, row and column of each): an empty symbol, an unreadable date, a ratio that
is not a number > 0, a (symbol, ex_date) given twice. No file: no splits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import calendar as xcal
from .base import SourceBase, dedupe_symbols, empty_splits, has_splits, splits_frame

LONG_FILE = "prices.csv"
SPLITS_FILE = "splits.csv"
#: Files of the directory that are not a symbol's closes.
RESERVED_FILES = (LONG_FILE, SPLITS_FILE)
_ADJ_NAMES = ("adj_close", "adjclose", "adjusted_close")
_MISSING = {"", "nan", "na", "n/a", "null", "none"}
_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


class CsvFormatError(ValueError):
    """A CSV value that cannot be read; the message names file, row and column.

    ``row``, ``column`` and ``reason`` are the first error's; ``errors`` lists every error found as
    ``(row, column, reason)`` (the first included), and the message names them all.
    """

    def __init__(
        self, file: str | Path, row: int, column: str, reason: str,
        more: Sequence[tuple[int, str, str]] = (),
    ) -> None:
        self.file, self.row, self.column, self.reason = str(file), row, column, reason
        self.errors: list[tuple[int, str, str]] = [(row, column, reason), *more]
        name = Path(file).name
        text = "; ".join(f"row {r}, column {c!r}: {why}" for r, c, why in self.errors)
        super().__init__(f"{name}: {text}")


def _raise_all(path: Path, errors: list[tuple[int, str, str]]) -> None:
    """Raise one ``CsvFormatError`` naming every error (sorted by row), if there is any."""
    if errors:
        errors = sorted(errors, key=lambda e: e[0])
        raise CsvFormatError(path, *errors[0], more=errors[1:])


def _norm(col: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(col).strip().lower())


def _pick(columns: dict[str, str], path: Path, *names: str) -> str:
    for n in names:
        if n in columns:
            return columns[n]
    raise CsvFormatError(path, 1, names[-1], f"missing column (need one of {', '.join(names)})")


def _texts(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _parse_dates(values: pd.Series, path: Path, column: str) -> pd.DatetimeIndex:
    """ISO dates (anything after YYYY-MM-DD ignored); the first bad row raises."""
    text = _texts(values)
    head = text.str.extract(_DATE_RE, expand=False)
    dates = pd.to_datetime(head, format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise CsvFormatError(path, i + 2, column, f"cannot read {text.iloc[i]!r} as a date (YYYY-MM-DD)")
    return pd.DatetimeIndex(dates).as_unit("ns")


def _parse_numbers(values: pd.Series, path: Path, column: str, allow_zero: np.ndarray) -> np.ndarray:
    """Floats, NaN for missing tokens; the first unreadable, negative or zero price raises."""
    text = _texts(values)
    missing = text.str.lower().isin(_MISSING).to_numpy()
    numbers = pd.to_numeric(text.where(~missing, None), errors="coerce").to_numpy(dtype=float)
    unreadable = np.flatnonzero(~missing & np.isnan(numbers))
    if len(unreadable):
        i = int(unreadable[0])
        raise CsvFormatError(path, i + 2, column, f"cannot read {text.iloc[i]!r} as a number")
    bad_value = ~np.isfinite(numbers) | (numbers < 0) | ((numbers == 0) & ~allow_zero)
    invalid = np.flatnonzero(~missing & bad_value)
    if len(invalid):
        i = int(invalid[0])
        raise CsvFormatError(path, i + 2, column, f"{text.iloc[i]!r} is not a valid close (must be > 0)")
    return numbers


def read_close_file(path: str | Path, symbol: str | None = None) -> dict[str, pd.Series]:
    """Parse one CSV: ``{symbol: close series}`` (per-symbol layout if ``symbol`` is given, else
    the long layout with a ``symbol`` column). Raises ``CsvFormatError``."""
    path = Path(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    columns = {_norm(c): c for c in table.columns}
    date_col = _pick(columns, path, "date")
    close_col = _pick(columns, path, *_ADJ_NAMES, "close")
    dates = _parse_dates(table[date_col], path, date_col)
    if symbol is None:
        sym_col = _pick(columns, path, "symbol")
        syms = table[sym_col].str.strip().str.upper().to_numpy()
        for i, s in enumerate(syms):
            if not s:
                raise CsvFormatError(path, i + 2, sym_col, "empty symbol")
    else:
        syms = np.array([symbol.upper()] * len(table), dtype=object)
    allow_zero = np.array([str(s).startswith("^") for s in syms])
    closes = _parse_numbers(table[close_col], path, close_col, allow_zero)
    out: dict[str, pd.Series] = {}
    rows = np.arange(2, len(table) + 2)
    frame = pd.DataFrame({"symbol": syms, "date": dates, "close": closes, "row": rows})
    for sym, part in frame.groupby("symbol", sort=False):
        dup = part[part["date"].duplicated(keep=False)]
        if len(dup):
            rows = ", ".join(str(r) for r in dup["row"].head(5))
            raise CsvFormatError(path, int(dup["row"].iloc[-1]), date_col,
                                 f"date {dup['date'].iloc[0].date()} repeated for {sym} (rows {rows})")
        out[str(sym)] = pd.Series(part["close"].to_numpy(), index=pd.DatetimeIndex(part["date"]),
                                  name=str(sym)).sort_index()
    return out


def read_splits_file(path: str | Path) -> pd.DataFrame:
    """Parse ``splits.csv`` (module docstring) into a splits frame (``base.SPLIT_COLUMNS``).

    Raises one ``CsvFormatError`` naming every bad row: its file, row (header = row 1) and column.
    """
    path = Path(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    columns = {_norm(c): c for c in table.columns}
    missing = [n for n in ("symbol", "ex_date", "ratio") if n not in columns]
    if missing:
        _raise_all(path, [(1, n, "missing column (need symbol, ex_date, ratio)") for n in missing])
    sym_col, date_col, ratio_col = columns["symbol"], columns["ex_date"], columns["ratio"]
    errors: list[tuple[int, str, str]] = []
    rows = np.arange(2, len(table) + 2)

    symbols = _texts(table[sym_col]).str.upper()
    errors += [(int(r), sym_col, "empty symbol") for r in rows[(symbols == "").to_numpy()]]

    date_text = _texts(table[date_col])
    dates = pd.to_datetime(date_text.str.extract(_DATE_RE, expand=False), format="%Y-%m-%d", errors="coerce")
    bad_date = dates.isna().to_numpy()
    errors += [(int(r), date_col, f"cannot read {t!r} as a date (YYYY-MM-DD)")
               for r, t in zip(rows[bad_date], date_text[bad_date])]

    ratio_text = _texts(table[ratio_col])
    ratios = pd.to_numeric(ratio_text, errors="coerce").to_numpy(dtype=float)
    bad_ratio = ~(np.isfinite(ratios) & (ratios > 0))
    errors += [(int(r), ratio_col, f"{t!r} is not a split ratio: a number N / M > 0 (10-for-1: 10)")
               for r, t in zip(rows[bad_ratio], ratio_text[bad_ratio])]

    ok = (symbols != "").to_numpy() & ~bad_date
    key = pd.DataFrame({"symbol": symbols[ok].to_numpy(), "ex_date": dates[ok].to_numpy(), "row": rows[ok]})
    repeated = key[key.duplicated(["symbol", "ex_date"], keep=False)]
    for (sym, ex), group in repeated.groupby(["symbol", "ex_date"], sort=False):
        first, *later = group["row"].tolist()
        errors += [(int(r), date_col, f"{sym} {pd.Timestamp(ex).date()} already given in row {first}") for r in later]
    _raise_all(path, errors)
    return splits_frame(symbols, pd.DatetimeIndex(dates), ratios) if len(table) else empty_splits()


class CsvSource(SourceBase):
    """Closes read from ``directory`` (see the module docstring for layouts). ``skip`` is ignored."""

    name = "csv"

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ValueError(f"market data CSV directory not found: {self.directory}")
        self._cache: dict[Path, tuple[float, object]] = {}

    def _read(self, path: Path, symbol: str | None) -> dict[str, pd.Series]:
        return self._cached(path, lambda: read_close_file(path, symbol))

    def _cached(self, path: Path, parse):
        """``parse()``'s result for ``path``, parsed again only when the file's mtime changes."""
        mtime = path.stat().st_mtime
        hit = self._cache.get(path)
        if hit is None or hit[0] != mtime:
            hit = (mtime, parse())
            self._cache[path] = hit
        return hit[1]

    def files(self) -> dict[str, Path]:
        """Lower-cased file name -> path of the CSV files in the directory."""
        return {p.name.lower(): p for p in self.directory.iterdir() if p.suffix.lower() == ".csv"}

    def symbol_file(self, symbol: str) -> Path | None:
        """The per-symbol file of ``symbol`` (``^TNX.csv`` or ``TNX.csv``), if any."""
        files = self.files()
        for name in dict.fromkeys([symbol, symbol.lstrip("^")]):
            if name and f"{name.lower()}.csv" in files and f"{name.lower()}.csv" not in RESERVED_FILES:
                return files[f"{name.lower()}.csv"]
        return None

    def fetch(self, symbols, start: dt.date, end: dt.date, *, skip=None):
        """Closes of ``symbols`` in [start, end] from the directory, and a ``FetchReport``."""
        syms = dedupe_symbols(symbols)
        long_path = self.files().get(LONG_FILE)
        long_data = self._read(long_path, None) if long_path else {}
        sessions = xcal.sessions_in_range(start, end)
        columns, notes = {}, []
        for sym in syms:
            path = self.symbol_file(sym)
            series = self._read(path, sym)[sym] if path else long_data.get(sym)
            if series is None:
                continue
            span = series.loc[xcal.to_timestamp(start) : xcal.to_timestamp(end)]
            dropped = span.index.difference(sessions)
            if len(dropped):
                notes.append(f"{sym}: {len(dropped)} non-session dates dropped (first {dropped[0].date()})")
            columns[sym] = span
        frame = pd.DataFrame(columns)
        return self.finish(frame, syms, start, end, attempts=1, notes=notes)

    def fetch_splits(self, symbols) -> pd.DataFrame:
        """The splits of ``splits.csv`` for the requested symbols (none without the file)."""
        self.last_split_errors = []
        path = self.files().get(SPLITS_FILE)
        if path is None:
            return empty_splits()
        table = self._cached(path, lambda: read_splits_file(path))
        wanted = [s for s in dedupe_symbols(symbols) if has_splits(s)]
        return table[table["symbol"].isin(wanted)].reset_index(drop=True)
