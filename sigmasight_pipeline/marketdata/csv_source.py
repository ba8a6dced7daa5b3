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
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import calendar as xcal
from .base import SourceBase, dedupe_symbols

LONG_FILE = "prices.csv"
_ADJ_NAMES = ("adj_close", "adjclose", "adjusted_close")
_MISSING = {"", "nan", "na", "n/a", "null", "none"}
_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


class CsvFormatError(ValueError):
    """A CSV value that cannot be read; the message names file, row and column."""

    def __init__(self, file: str | Path, row: int, column: str, reason: str) -> None:
        self.file, self.row, self.column, self.reason = str(file), row, column, reason
        super().__init__(f"{Path(file).name}: row {row}, column {column!r}: {reason}")


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


class CsvSource(SourceBase):
    """Closes read from ``directory`` (see the module docstring for layouts). ``skip`` is ignored."""

    name = "csv"

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ValueError(f"market data CSV directory not found: {self.directory}")
        self._cache: dict[Path, tuple[float, dict[str, pd.Series]]] = {}

    def _read(self, path: Path, symbol: str | None) -> dict[str, pd.Series]:
        mtime = path.stat().st_mtime
        hit = self._cache.get(path)
        if hit is None or hit[0] != mtime:
            hit = (mtime, read_close_file(path, symbol))
            self._cache[path] = hit
        return hit[1]

    def files(self) -> dict[str, Path]:
        """Lower-cased file name -> path of the CSV files in the directory."""
        return {p.name.lower(): p for p in self.directory.iterdir() if p.suffix.lower() == ".csv"}

    def symbol_file(self, symbol: str) -> Path | None:
        """The per-symbol file of ``symbol`` (``^TNX.csv`` or ``TNX.csv``), if any."""
        files = self.files()
        for name in dict.fromkeys([symbol, symbol.lstrip("^")]):
            if name and f"{name.lower()}.csv" in files and f"{name.lower()}.csv" != LONG_FILE:
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
