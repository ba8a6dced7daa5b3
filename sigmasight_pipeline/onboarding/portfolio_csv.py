"""Portfolio upload CSV: parsing and complete validation (see ``spec/portfolio_csv.md``).

Columns (header required, names case-insensitive and trimmed, extra columns ignored)::

    ticker, quantity, entry_price, entry_date[, tags][, implied_vol]

``implied_vol`` (optional, options only): the option's implied volatility as a decimal (0.32 = 32%),
greater than 0 and less than 5; the Greeks use it before the underlying's realised volatility. Blank means
none.

Comments: a line whose first non-blank character is ``#`` (outside a quoted field) is a comment and is
skipped, like a blank line, before the CSV is read; it keeps its line number, so rows are still numbered by
the file's lines. ``sigmasight template`` prints an upload commented so. (Trades files share this reader.)

Every row is validated and every problem is collected; a file with any problem raises
:class:`PortfolioValidationError` listing all of them, so that nothing is imported. Row numbers are
the file's line numbers with the header as row 1 (a record spanning several lines because of a quoted
newline is numbered by its first line); row 0 means the file as a whole.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .occ import OptionSymbol, looks_like_occ, parse_occ_symbol

__all__ = [
    "RowError",
    "PortfolioValidationError",
    "ParsedPosition",
    "POSITION_TYPES",
    "REQUIRED_COLUMNS",
    "parse_portfolio_csv",
    "slugify",
]

REQUIRED_COLUMNS = ("ticker", "quantity", "entry_price", "entry_date")
OPTIONAL_COLUMNS = ("tags", "implied_vol")
POSITION_TYPES = ("LONG", "SHORT", "LC", "SC", "LP", "SP")
OPTION_MULTIPLIER = 100
MAX_TAG_LENGTH = 40
MAX_DECIMAL_PLACES = 8
MAX_INTEGER_DIGITS = 12  # quantities and prices below one trillion
MAX_TICKER_LENGTH = 10
MAX_IMPLIED_VOL = 5  # implied_vol < 5 (500%): a larger number is a percent, e.g. 32 for 0.32
_VALUE_SHOWN = 80  # longest cell value kept in a RowError

_TICKER_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,%d}" % (MAX_TICKER_LENGTH - 1))
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class RowError:
    """One problem in an upload: line ``row`` (header = 1; 0 = whole file), ``column`` ('' if none)."""

    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        where = "file" if self.row == 0 else f"row {self.row}"
        if self.column:
            where += f", column {self.column!r}"
        shown = f" (value {self.value!r})" if self.value else ""
        return f"{where}: {self.reason}{shown}"


class PortfolioValidationError(ValueError):
    """The upload has at least one problem; ``errors`` holds all of them, in row order."""

    def __init__(self, errors: list[RowError]):
        self.errors = list(errors)
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''} in portfolio CSV; nothing was imported"
        super().__init__("\n".join([head, *map(str, self.errors)]))


@dataclass(frozen=True)
class ParsedPosition:
    """A validated position. ``symbol`` is the upper-case ticker or the canonical unpadded OCC symbol;
    ``quantity`` is signed (contracts for options); ``entry_price`` is per share (per contract-share
    for options); ``multiplier`` is 100 for options and 1 otherwise."""

    row: int
    symbol: str
    position_type: str  # one of POSITION_TYPES
    quantity: Decimal
    entry_price: Decimal
    entry_date: date
    tags: tuple[str, ...]
    underlying_symbol: str  # the ticker itself for stocks
    option_type: str | None = None  # 'C' or 'P'
    strike: Decimal | None = None
    expiration: date | None = None
    multiplier: int = 1
    implied_vol: float | None = None  # decimal (0.32 = 32%), options only; None: not given

    @property
    def is_option(self) -> bool:
        return self.option_type is not None

    @property
    def cost_basis(self) -> Decimal:
        """Signed ``quantity x entry_price x multiplier`` (negative for shorts)."""
        return self.quantity * self.entry_price * self.multiplier


def slugify(name: str) -> str:
    """Lower-case ``name`` and replace each run of characters other than ``[a-z0-9]`` with one ``-``,
    stripping leading/trailing ``-``. Non-ASCII letters are separators (no transliteration).

    The result only contains ``[a-z0-9-]``: safe as a Dagster partition key and as a folder name.
    Raises ``ValueError`` if nothing is left (e.g. ``"../"``).
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise ValueError(f"cannot make a slug from {name!r}: it has no letters or digits a-z, 0-9")
    return slug


def parse_portfolio_csv(
    source: str | bytes | os.PathLike[str],
    *,
    today: date | None = None,
    known_symbols: Callable[[str], bool] | None = None,
    max_rows: int = 10_000,
    max_bytes: int = 10 * 1024 * 1024,
) -> list[ParsedPosition]:
    """Parse and validate a portfolio upload; return every position or raise with every error.

    ``source`` is CSV text (``str``), raw ``bytes`` (UTF-8, BOM tolerated) or a path
    (``os.PathLike``; a plain ``str`` is always taken as CSV text). ``today`` bounds entry dates
    (default ``date.today()``). ``known_symbols(symbol)``, when given, is asked once per distinct
    stock ticker or option underlying; ``False`` makes it an "unknown symbol" error.

    Raises :class:`PortfolioValidationError` if the file is too large, not UTF-8, empty, lacks a
    required column, has more than ``max_rows`` data rows, or any row is invalid.
    """
    today = date.today() if today is None else today
    text = _read_text(source, max_bytes)
    errors: list[RowError] = []
    records = _read_records(text)  # [(line number, cells)], blank lines dropped
    if not records:
        raise PortfolioValidationError([RowError(1, "", "", "empty file: expected a header row and positions")])
    header_line, header = records[0]
    columns = _header_columns(header_line, header, errors)
    if errors:
        raise PortfolioValidationError(errors)

    rows = records[1:]
    if not rows:
        raise PortfolioValidationError([RowError(2, "", "", "no positions: the file has a header but no data rows")])
    if len(rows) > max_rows:
        errors.append(
            RowError(rows[max_rows][0], "", "", f"too many rows: {len(rows):,} data rows, the limit is {max_rows:,}")
        )
        rows = rows[:max_rows]

    positions: list[ParsedPosition] = []
    first_seen: dict[tuple[str, date], int] = {}
    known_cache: dict[str, bool] = {}
    for line, cells in rows:
        row_errors: list[RowError] = []

        def fail(column: str, value: str, reason: str) -> None:
            row_errors.append(RowError(line, column, value[:_VALUE_SHOWN], reason))

        cell = _row_cells(cells, header, columns, fail)
        symbol, option = _parse_ticker(cell["ticker"], fail)
        quantity, price = _quantity_and_price(cell, "entry_price", "entry price", fail)
        entry_date = _parse_date(cell["entry_date"], today, fail)
        if option is not None and entry_date is not None and entry_date > option.expiration:
            fail("entry_date", cell["entry_date"], f"entry date is after the option's expiration {option.expiration}")
        tags = _parse_tags(cell.get("tags", ""), fail)
        implied_vol = _parse_implied_vol(cell.get("implied_vol", ""), symbol, option, fail)

        if symbol is not None and entry_date is not None:
            earlier = first_seen.setdefault((symbol, entry_date), line)
            if earlier != line:
                fail("ticker", cell["ticker"], f"duplicate of row {earlier} (same ticker and entry_date)")
        if symbol is not None and known_symbols is not None:
            underlying = option.underlying if option else symbol
            if underlying not in known_cache:
                known_cache[underlying] = bool(known_symbols(underlying))
            if not known_cache[underlying]:
                what = "option underlying" if option else "symbol"
                fail("ticker", cell["ticker"], f"unknown {what} {underlying!r} (not found by the market data source)")

        if row_errors:
            errors.extend(row_errors)
            continue
        positions.append(_position(line, symbol, option, quantity, price, entry_date, tags, implied_vol))

    if errors:
        raise PortfolioValidationError(sorted(errors, key=lambda e: e.row))
    return positions


# --- helpers ------------------------------------------------------------------------------------

def _read_text(source: str | bytes | os.PathLike[str], max_bytes: int) -> str:
    """Return the decoded text, raising PortfolioValidationError if too large or not UTF-8."""
    if isinstance(source, str):
        raw = source.encode("utf-8", "surrogatepass")  # a lone surrogate fails decoding below
    elif isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
    elif isinstance(source, os.PathLike):
        with open(source, "rb") as fh:  # never read more than max_bytes + 1
            raw = fh.read(max_bytes + 1)
            size = max(len(raw), os.fstat(fh.fileno()).st_size)
    else:
        raise TypeError(f"source must be CSV text (str), bytes or a path, got {type(source).__name__}")
    if len(raw) > max_bytes:
        size = size if isinstance(source, os.PathLike) else len(raw)
        raise PortfolioValidationError([RowError(0, "", "", f"file too large: {size:,} bytes, the limit is {max_bytes:,}")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.end].hex(" ")
        raise PortfolioValidationError(
            [RowError(line, "", "", f"not UTF-8: invalid byte(s) {bad} at byte offset {exc.start}")]
        ) from None


def _without_comments(text: str) -> str:
    """``text`` with each comment line (first non-blank character ``#``, not inside a quoted field) emptied to
    its line break, so the line numbers of the other lines do not change. A quoted field is tracked by the
    parity of the ``"`` characters before the line (a doubled ``""`` inside a field counts twice)."""
    if "#" not in text:
        return text
    lines = io.StringIO(text, newline="").readlines()  # split at \n, \r, \r\n only, as the CSV reader counts
    quoted = False
    for i, line in enumerate(lines):
        if not quoted and line.lstrip().startswith("#"):
            lines[i] = line[len(line.rstrip("\r\n")):]
        else:
            quoted ^= line.count('"') % 2 == 1
    return "".join(lines)


def _read_records(text: str) -> list[tuple[int, list[str]]]:
    """CSV records with the line number each starts on; comment lines (:func:`_without_comments`) and fully
    blank records are dropped."""
    reader = csv.reader(io.StringIO(_without_comments(text), newline=""), strict=True)
    records = []
    next_line = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                records.append((next_line, cells))
            next_line = reader.line_num + 1
    except csv.Error as exc:
        raise PortfolioValidationError([RowError(next_line, "", "", f"unreadable CSV: {exc}")]) from None
    return records


def _header_columns(line: int, header: list[str], errors: list[RowError]) -> dict[str, int]:
    """Map each known column name to its index; record missing/duplicate columns in ``errors``."""
    columns: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = raw.strip().lower()
        if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            continue  # extra columns are ignored
        if name in columns:
            errors.append(RowError(line, name, raw, f"duplicate column (also column {columns[name] + 1})"))
        columns[name] = i
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            errors.append(RowError(line, name, "", "missing required column"))
    return columns


def _parse_ticker(text: str, fail) -> tuple[str | None, OptionSymbol | None]:
    """Return (canonical symbol, OptionSymbol or None); (None, None) after reporting an error."""
    ticker = text.upper()
    if not ticker:
        fail("ticker", text, "missing value")
    elif looks_like_occ(ticker):
        try:
            option = parse_occ_symbol(ticker)
        except ValueError as exc:
            fail("ticker", text, f"malformed OCC option symbol: {exc}")
        else:
            return option.occ, option
    elif _TICKER_RE.fullmatch(ticker):
        return ticker, None
    else:
        fail("ticker", text, f"not a valid symbol: expected a ticker of 1-{MAX_TICKER_LENGTH} characters "
                             "A-Z, 0-9, '.', '-', or an OCC option symbol")
    return None, None


def _row_cells(cells: list[str], header: list[str], columns: dict[str, int], fail) -> dict[str, str]:
    """A data row's known cells by column name (trimmed; "" when missing); extra non-empty fields are an error."""
    if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
        fail("", "", f"row has {len(cells)} fields but the header has {len(header)} "
                     "(a tags field containing commas must be quoted)")
    return {name: (cells[i].strip() if i < len(cells) else "") for name, i in columns.items()}


def _quantity_and_price(cell: dict[str, str], price_column: str, price_words: str, fail):
    """The row's signed, non-zero quantity and its price > 0 (None where invalid, after reporting it)."""
    quantity = _parse_decimal("quantity", cell["quantity"], fail)
    if quantity is not None and quantity == 0:
        fail("quantity", cell["quantity"], "zero quantity")
        quantity = None
    price = _parse_decimal(price_column, cell[price_column], fail)
    if price is not None and price <= 0:
        fail(price_column, cell[price_column], f"{price_words} must be greater than 0")
        price = None
    return quantity, price


def _parse_decimal(column: str, text: str, fail) -> Decimal | None:
    """Parse a plain decimal (no exponent, no separators); report and return None if invalid."""
    if not text:
        fail(column, text, "missing value")
        return None
    if not _DECIMAL_RE.fullmatch(text):
        finite = text.lower().lstrip("+-") not in ("nan", "snan", "inf", "infinity")
        fail(column, text, "not a decimal number" if finite else "not a finite number")
        return None
    value = Decimal(text)
    integer_part, _, fraction = text.lstrip("+-").partition(".")
    if len(fraction) > MAX_DECIMAL_PLACES:
        fail(column, text, f"more than {MAX_DECIMAL_PLACES} decimal places")
        return None
    if len(integer_part.lstrip("0")) > MAX_INTEGER_DIGITS:
        fail(column, text, f"number too large (more than {MAX_INTEGER_DIGITS} digits before the decimal point)")
        return None
    return value


def _parse_date(text: str, today: date, fail) -> date | None:
    """Parse YYYY-MM-DD not after ``today``; report and return None if invalid."""
    if not text:
        fail("entry_date", text, "missing value")
        return None
    if not _DATE_RE.fullmatch(text):
        fail("entry_date", text, "not a date in YYYY-MM-DD format")
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError as exc:
        fail("entry_date", text, f"invalid date: {exc}")
        return None
    if value > today:
        fail("entry_date", text, f"entry date is in the future (today is {today})")
        return None
    return value


def _parse_tags(text: str, fail) -> tuple[str, ...]:
    """Split a comma-separated tags field: trimmed, empty tags dropped, exact duplicates dropped."""
    tags: list[str] = []
    for tag in (t.strip() for t in text.split(",")):
        if len(tag) > MAX_TAG_LENGTH:
            fail("tags", tag, f"tag longer than {MAX_TAG_LENGTH} characters ({len(tag)})")
        elif tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _parse_implied_vol(text: str, symbol: str | None, option: OptionSymbol | None, fail) -> float | None:
    """The optional ``implied_vol`` cell: blank -> None; else a decimal in (0, MAX_IMPLIED_VOL) on an option row.

    Every problem is reported (through ``fail``) and gives None. A stock row with an implied vol is an error
    (the value would be ignored); a row whose ticker is itself invalid is judged on the number alone.
    """
    if not text:
        return None
    value = _parse_decimal("implied_vol", text, fail)
    if value is None:
        return None
    ok = True
    if not 0 < value < MAX_IMPLIED_VOL:
        hint = f"; {text} looks like a percent: write {value / 100}" if value >= MAX_IMPLIED_VOL else ""
        fail("implied_vol", text, f"implied volatility must be a decimal greater than 0 and less than "
                                  f"{MAX_IMPLIED_VOL}, e.g. 0.32 for 32%{hint}")
        ok = False
    if symbol is not None and option is None:
        fail("implied_vol", text, f"implied volatility is only meaningful for options; {symbol} is not an "
                                  "OCC option symbol (leave the cell blank)")
        ok = False
    return float(value) if ok else None


def _position(line, symbol, option, quantity, price, entry_date, tags, implied_vol=None) -> ParsedPosition:
    """Build a ParsedPosition from validated fields (position type from kind and sign)."""
    long = quantity > 0
    if option is None:
        return ParsedPosition(line, symbol, "LONG" if long else "SHORT", quantity, price, entry_date, tags, symbol)
    position_type = ("L" if long else "S") + option.option_type
    return ParsedPosition(
        line, symbol, position_type, quantity, price, entry_date, tags, option.underlying,
        option_type=option.option_type, strike=option.strike, expiration=option.expiration,
        multiplier=OPTION_MULTIPLIER, implied_vol=implied_vol,
    )
