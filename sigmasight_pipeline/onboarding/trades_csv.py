"""Trades CSV: parsing and the file's own validation (books.md, "Trades").

Columns (header required, names case-insensitive and trimmed, extra columns ignored)::

    trade_date, ticker, quantity, price[, fees, trade_id, tags, close_and_reverse]

Quantity is signed (+ buys, - sells; options in contracts); price per share (per contract-share for
options); fees >= 0 (default 0); ``close_and_reverse`` (true/yes/1, default false) marks a sale that takes a
position through zero on purpose: it closes the position and opens the opposite side with the rest.

The same rules as the upload (``portfolio_csv.md``): every problem at once with its row and column, nothing
imported on error, dates not in the future. What needs the stored book (a date before the portfolio's first
entry, a ``trade_id`` already imported, a sale through zero) is checked by ``warehouse.trades.import_trades``
against the ledger, with the same row numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .occ import OptionSymbol
from .portfolio_csv import (
    OPTION_MULTIPLIER,
    PortfolioValidationError,
    RowError,
    _VALUE_SHOWN,
    _parse_date,
    _parse_decimal,
    _parse_tags,
    _parse_ticker,
    _read_records,
    _read_text,
    _quantity_and_price,
    _row_cells,
)

__all__ = ["ParsedTrade", "TRADE_COLUMNS", "TradesValidationError", "parse_trades_csv", "read_trades_csv"]

REQUIRED = ("trade_date", "ticker", "quantity", "price")
OPTIONAL = ("fees", "trade_id", "tags", "close_and_reverse")
TRADE_COLUMNS = REQUIRED + OPTIONAL
MAX_TRADE_ID_LENGTH = 64
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0", ""}


class TradesValidationError(PortfolioValidationError):
    """The trades file has at least one problem; ``errors`` holds all of them, in row order."""

    def __init__(self, errors: list[RowError]):
        super().__init__(errors)
        n = len(self.errors)
        self.args = ("\n".join([f"{n} error{'s' if n != 1 else ''} in trades CSV; nothing was imported",
                                *map(str, self.errors)]),)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class ParsedTrade:
    """A trade that passed the file's own validation; ``symbol`` canonical (OCC symbols unpadded)."""

    row: int
    trade_date: date
    symbol: str
    quantity: Decimal
    price: Decimal
    fees: Decimal
    trade_id: str | None
    tags: tuple[str, ...]
    close_and_reverse: bool
    underlying_symbol: str
    option_type: str | None = None
    strike: Decimal | None = None
    expiration: date | None = None
    multiplier: int = 1


def parse_trades_csv(
    source: str | bytes | os.PathLike[str], *, today: date | None = None, max_rows: int = 10_000,
    max_bytes: int = 10 * 1024 * 1024,
) -> list[ParsedTrade]:
    """Parse and validate a trades file; return every trade or raise :class:`TradesValidationError` with every
    error. ``source`` as for ``parse_portfolio_csv`` (text, bytes or a path)."""
    trades, errors = read_trades_csv(source, today=today, max_rows=max_rows, max_bytes=max_bytes)
    if errors:
        raise TradesValidationError(errors)
    return trades


def read_trades_csv(
    source: str | bytes | os.PathLike[str], *, today: date | None = None, max_rows: int = 10_000,
    max_bytes: int = 10 * 1024 * 1024,
) -> tuple[list[ParsedTrade], list[RowError]]:
    """The trades of the rows without a problem, and every problem (in row order): so that the checks against
    the stored book can report theirs with the file's own, at once. A file-wide problem (encoding, header,
    size) raises :class:`TradesValidationError` at once."""
    today = date.today() if today is None else today
    text = _read_text(source, max_bytes)
    records = _read_records(text)
    if not records:
        raise TradesValidationError([RowError(1, "", "", "empty file: expected a header row and trades")])
    header_line, header = records[0]
    errors: list[RowError] = []
    columns: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = raw.strip().lower()
        if name not in TRADE_COLUMNS:
            continue
        if name in columns:
            errors.append(RowError(header_line, name, raw, f"duplicate column (also column {columns[name] + 1})"))
        columns[name] = i
    errors += [RowError(header_line, name, "", "missing required column") for name in REQUIRED if name not in columns]
    if errors:
        raise TradesValidationError(errors)
    rows = records[1:]
    if not rows:
        raise TradesValidationError([RowError(2, "", "", "no trades: the file has a header but no data rows")])
    if len(rows) > max_rows:
        errors.append(RowError(rows[max_rows][0], "", "", f"too many rows: {len(rows):,} data rows, the limit is {max_rows:,}"))
        rows = rows[:max_rows]

    trades: list[ParsedTrade] = []
    ids_seen: dict[str, int] = {}
    for line, cells in rows:
        row_errors: list[RowError] = []

        def fail(column: str, value: str, reason: str) -> None:
            row_errors.append(RowError(line, column, value[:_VALUE_SHOWN], reason.replace("entry date", "trade date")))

        def fail_date(column: str, value: str, reason: str) -> None:
            fail("trade_date", value, reason)

        cell = _row_cells(cells, header, columns, fail)
        trade_date = _parse_date(cell["trade_date"], today, fail_date)
        symbol, option = _parse_ticker(cell["ticker"], fail)
        quantity, price = _quantity_and_price(cell, "price", "price", fail)
        fees = Decimal(0)
        if cell.get("fees"):
            fees = _parse_decimal("fees", cell["fees"], fail)
            if fees is not None and fees < 0:
                fail("fees", cell["fees"], "fees must be 0 or more")
        trade_id = cell.get("trade_id") or None
        if trade_id is not None:
            if len(trade_id) > MAX_TRADE_ID_LENGTH:
                fail("trade_id", trade_id, f"longer than {MAX_TRADE_ID_LENGTH} characters")
            earlier = ids_seen.setdefault(trade_id, line)
            if earlier != line:
                fail("trade_id", trade_id, f"duplicate trade_id (also row {earlier})")
        flag = cell.get("close_and_reverse", "").lower()
        if flag not in _TRUE | _FALSE:
            fail("close_and_reverse", cell["close_and_reverse"], "expected true or false")
        if option is not None and trade_date is not None and trade_date > option.expiration:
            fail("trade_date", cell["trade_date"], f"trade date is after the option's expiration {option.expiration}")
        tags = _parse_tags(cell.get("tags", ""), fail)
        if row_errors:
            errors.extend(row_errors)
            continue
        trades.append(_trade(line, trade_date, symbol, option, quantity, price, fees, trade_id, tags, flag in _TRUE))
    return trades, sorted(errors, key=lambda e: e.row)


def _trade(line, trade_date, symbol, option: OptionSymbol | None, quantity, price, fees, trade_id, tags, reverse) -> ParsedTrade:
    if option is None:
        return ParsedTrade(line, trade_date, symbol, quantity, price, fees, trade_id, tags, reverse, symbol)
    return ParsedTrade(line, trade_date, symbol, quantity, price, fees, trade_id, tags, reverse, option.underlying,
                       option_type=option.option_type, strike=option.strike, expiration=option.expiration,
                       multiplier=OPTION_MULTIPLIER)
