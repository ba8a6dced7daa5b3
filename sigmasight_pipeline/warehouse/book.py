"""A portfolio's ledger in the warehouse: the opening holdings (its stored upload) and its imported trades,
read as the events of ``engines.book``; the import of a trades file; the book the engines compute on.

``read_ledger`` is what every engine asset and the report read: the same stored events and splits give the
same book, so a rerun of a past date computes the same positions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.engines.book import EVENT_COLUMNS, Ledger, LedgerError, build_ledger, positions_on
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.base import price_symbol_for
from sigmasight_pipeline.onboarding import parse_portfolio_csv
from sigmasight_pipeline.onboarding.portfolio_csv import RowError
from sigmasight_pipeline.onboarding.trades_csv import ParsedTrade, TradesValidationError
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.entry_warnings import replace_entry_warnings
from sigmasight_pipeline.warehouse.io import read_frame
from sigmasight_pipeline.warehouse.portfolios import get_portfolio
from sigmasight_pipeline.warehouse.splits import read_splits

__all__ = ["ImportedTrades", "book_events", "books_as_of", "ledger_tables", "engine_positions", "import_trades",
           "ledger_with_trades", "read_ledger", "read_trades", "sessions_on_or_after", "trade_rows"]


def sessions_on_or_after(dates) -> pd.DatetimeIndex:
    """The first XNYS session on or after each date (a trade booked on a Saturday counts from Monday)."""
    when = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates))).normalize()
    if len(when) == 0:
        return when
    sessions = xcal.sessions_in_range(when.min(), when.max() + pd.Timedelta(days=10))
    return sessions[np.searchsorted(sessions.to_numpy(), when.to_numpy())]


def _upload_events(source_csv: str) -> pd.DataFrame:
    rows = [
        {
            "symbol": p.symbol, "underlying_symbol": price_symbol_for(p.underlying_symbol), "option_type": p.option_type,
            "strike": float(p.strike) if p.strike is not None else np.nan, "expiration": p.expiration,
            "multiplier": float(p.multiplier), "implied_vol": getattr(p, "implied_vol", None), "tags": p.tags,
            "date": p.entry_date, "quantity": float(p.quantity), "price": float(p.entry_price), "fees": 0.0,
            "close_and_reverse": False, "source": "upload", "source_row": p.row, "trade_seq": np.nan, "trade_id": None,
        }
        for p in parse_portfolio_csv(source_csv)
    ]
    return pd.DataFrame(rows)


def _trade_events(trades: pd.DataFrame) -> pd.DataFrame:
    """Stored trades (``read_trades``) as ledger events: option fields from the OCC symbol."""
    from sigmasight_pipeline.onboarding import parse_occ_symbol, looks_like_occ

    def option_fields(symbol: str) -> dict:
        if not looks_like_occ(symbol):
            return {"underlying_symbol": price_symbol_for(symbol), "option_type": None, "strike": np.nan,
                    "expiration": None, "multiplier": 1.0}
        o = parse_occ_symbol(symbol)
        return {"underlying_symbol": price_symbol_for(o.underlying), "option_type": o.option_type,
                "strike": float(o.strike), "expiration": o.expiration, "multiplier": 100.0}

    fields = pd.DataFrame([option_fields(s) for s in trades["symbol"]], index=trades.index)
    return pd.concat([trades[["symbol"]], fields], axis=1).assign(
        implied_vol=None, tags=trades["tags"].fillna("").map(lambda t: tuple(x.strip() for x in t.split(",") if x.strip())),
        date=trades["trade_date"], quantity=trades["quantity"].astype(float), price=trades["price"].astype(float),
        fees=trades["fees"].astype(float), close_and_reverse=trades["close_and_reverse"].astype(bool), source="trade",
        source_row=trades["source_row"], trade_seq=trades["trade_seq"], trade_id=trades["trade_id"],
    )


def read_trades(engine: Engine, portfolio_id: str) -> pd.DataFrame:
    """The stored trades of a portfolio, in import order (``trade_seq``)."""
    t = schema.trades
    return read_frame(engine, sa.select(t).where(t.c.portfolio_id == portfolio_id).order_by(t.c.trade_seq))


def book_events(engine: Engine, portfolio_id: str, extra_trades: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ledger events of a portfolio: its upload rows, its stored trades, then ``extra_trades`` (rows shaped
    like ``read_trades``, not stored: an import being checked, a what-if)."""
    book = get_portfolio(engine, portfolio_id)
    trades = read_trades(engine, portfolio_id)
    if extra_trades is not None and len(extra_trades):
        trades = pd.concat([trades, extra_trades], ignore_index=True)
    frames = [_upload_events(book["source_csv"])]
    if len(trades):
        frames.append(_trade_events(trades))
    events = pd.concat(frames, ignore_index=True)
    events["session"] = sessions_on_or_after(events["date"])
    return events[EVENT_COLUMNS]


def read_ledger(engine: Engine, portfolio_id: str, extra_trades: pd.DataFrame | None = None) -> Ledger:
    """The portfolio's :class:`~sigmasight_pipeline.engines.book.Ledger` from its stored events and the stored
    splits of its underlyings."""
    events = book_events(engine, portfolio_id, extra_trades)
    return build_ledger(events, read_splits(engine, sorted(set(events["underlying_symbol"]))))


def _master(engine: Engine) -> pd.DataFrame:
    m = schema.security_master
    return read_frame(engine, sa.select(m.c.symbol, m.c.sector, m.c.industry, m.c.asset_type, m.c.dividend_yield))


def engine_positions(engine: Engine, book: pd.DataFrame) -> pd.DataFrame:
    """A period's book (``engines.book.positions_on``) in the engines' convention: plus ``sector, industry,
    asset_type`` (of the underlying; "option" for options) and ``dividend_yield`` from the security master."""
    return _with_master(book, _master(engine))


def _with_master(book: pd.DataFrame, master: pd.DataFrame) -> pd.DataFrame:
    frame = book.merge(master.rename(columns={"symbol": "underlying_symbol"}), how="left", on="underlying_symbol")
    frame["asset_type"] = frame["asset_type"].where(~frame["is_option"].astype(bool), "option")
    frame["implied_vol"] = pd.to_numeric(frame["implied_vol"], errors="coerce")
    frame["multiplier"] = frame["multiplier"].astype(float)
    frame["strike"] = pd.to_numeric(frame["strike"], errors="coerce")
    return frame


@dataclass(frozen=True)
class ImportedTrades:
    portfolio_id: str
    count: int
    first_trade_date: dt.date
    last_trade_date: dt.date
    trade_seqs: tuple[int, int]


def import_trades(
    engine: Engine, portfolio_id: str, trades: list[ParsedTrade], *, filename: str | None = None,
    warnings: pd.DataFrame | None = None, file_errors: list[RowError] = (),
) -> ImportedTrades:
    """Check parsed trades against the stored book and store them all in one transaction, or none, with their
    entry sanity ``warnings`` (``quality.entries.WARNING_COLUMNS``; source: the file and its trade numbers).

    Book rules (books.md): a trade date not before the portfolio's first entry date, a ``trade_id`` not already
    imported, no sale through zero unless flagged close-and-reverse. Raises :class:`TradesValidationError`
    with every problem (row and column of the file), ``file_errors`` (the file's own, from
    ``read_trades_csv``) included; the sale-through-zero check needs the whole file, so it runs only on a file
    without other problems.
    """
    if not trades and not file_errors:
        raise TradesValidationError([RowError(0, "", "", "no trades to import")])
    stored = read_trades(engine, portfolio_id)
    first_entry = pd.to_datetime(book_events(engine, portfolio_id)["date"]).min().date()
    errors: list[RowError] = list(file_errors)
    known_ids = dict(zip(stored["trade_id"].dropna(), stored["source_file"].fillna("an earlier import")))
    for t in trades:
        if t.trade_date < first_entry:
            errors.append(RowError(t.row, "trade_date", t.trade_date.isoformat(),
                                   f"before the portfolio's first entry date {first_entry}"))
        if t.trade_id is not None and t.trade_id in known_ids:
            errors.append(RowError(t.row, "trade_id", t.trade_id, f"already imported (from {known_ids[t.trade_id]})"))
    if errors:
        raise TradesValidationError(sorted(errors, key=lambda e: e.row))
    seq0 = int(stored["trade_seq"].max()) + 1 if len(stored) else 1
    rows = trade_rows(portfolio_id, trades, first_seq=seq0, filename=filename)
    errors += ledger_with_trades(engine, portfolio_id, rows)[1]
    if errors:
        raise TradesValidationError(sorted(errors, key=lambda e: e.row))
    seqs = (seq0, seq0 + len(trades) - 1)
    with engine.begin() as conn:
        conn.execute(schema.trades.insert(), rows.to_dict("records"))
        if warnings is not None:
            replace_entry_warnings(conn, portfolio_id, trades_source(filename, seqs), warnings)
    dates = [t.trade_date for t in trades]
    return ImportedTrades(portfolio_id, len(trades), min(dates), max(dates), seqs)


def trade_rows(portfolio_id: str, trades: list[ParsedTrade], *, first_seq: int | None = None,
               filename: str | None = None) -> pd.DataFrame:
    """Parsed trades as rows of the ``trades`` table, numbered from ``first_seq`` (default: after any stored
    trade number, for trades that are never stored: a what-if)."""
    seq0 = 10**9 if first_seq is None else first_seq
    now = dt.datetime.now(dt.timezone.utc)
    return pd.DataFrame([
        {"portfolio_id": portfolio_id, "trade_seq": seq0 + i, "trade_id": t.trade_id, "trade_date": t.trade_date,
         "symbol": t.symbol, "quantity": float(t.quantity), "price": float(t.price), "fees": float(t.fees),
         "close_and_reverse": t.close_and_reverse, "tags": ",".join(t.tags) or None, "source_file": filename,
         "source_row": t.row, "imported_at": now}
        for i, t in enumerate(trades)
    ])


def ledger_with_trades(engine: Engine, portfolio_id: str, rows: pd.DataFrame | None) -> tuple[Ledger | None, list[RowError]]:
    """``(ledger, [])``: the stored book with the trade ``rows`` (``trade_rows``) appended; or ``(None, errors)``
    when the book rules refuse them (a sale through zero without close-and-reverse), each error on the row of
    the file that breaks the rule."""
    try:
        return read_ledger(engine, portfolio_id, extra_trades=rows), []
    except LedgerError as exc:
        by_seq = dict(zip(rows["trade_seq"], rows["source_row"])) if rows is not None and len(rows) else {}
        errors = []
        for seq, message in exc.problems:
            if seq in by_seq:
                errors.append(RowError(int(by_seq[seq]), "quantity", "", message.split("): ", 1)[-1]))
            else:  # an earlier trade or upload row, made impossible by a new trade dated before it
                errors.append(RowError(0, "", "", f"the new trades make an earlier one impossible: {message}"))
        return None, errors


def trades_source(filename: str | None, seqs: tuple[int, int]) -> str:
    """``entry_warnings.source`` of an imported trades file: its name and its trade numbers (unique per import)."""
    return f"{(filename or 'trades')[:80]} (trades {seqs[0]}-{seqs[1]})"


def ledger_tables(engine: Engine, portfolio_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger and the lots of a portfolio as ``sigmasight trades list`` prints them (split-adjusted)."""
    ledger = read_ledger(engine, portfolio_id)
    symbols = ledger.instruments.set_index("position_id")["symbol"]
    ev = ledger.events
    entries = pd.DataFrame({
        "date": ev["date"].dt.strftime("%Y-%m-%d"),
        "source": np.where(ev["source"] == "upload", "upload row " + ev["source_row"].astype(str),
                           "trade " + ev["trade_id"].fillna("#" + ev["trade_seq"].astype("Int64").astype(str))),
        "position": ev["position_id"], "symbol": ev["symbol"], "quantity": ev["quantity"], "price": ev["price"],
        "fees": ev["fees"], "cash": ev["cash"], "realized_pnl": ev["realized"],
    })
    lots = ledger.lots.assign(symbol=ledger.lots["position_id"].map(symbols))
    lots = pd.DataFrame({
        "lot": lots["lot"], "position": lots["position_id"], "symbol": lots["symbol"],
        "opened": lots["open_date"].dt.strftime("%Y-%m-%d"), "price": lots["price"],
        "quantity_opened": lots["quantity_opened"], "quantity_open": lots["quantity_open"],
        "closed": lots["closed_date"].dt.strftime("%Y-%m-%d").fillna("open"),
    })
    return entries, lots


def books_as_of(engine: Engine, portfolio_id: str, anchors) -> dict:
    """{anchor: the book on that date} for a report: every position opened by then, with ``quantity,
    entry_price, cost_basis`` of that date (0 and the last lots' price once closed), ``realized_pnl`` to that
    date and ``exit_date`` (NaT while open), in the engines' columns. Anchors with the same book share one
    frame (one per change of the book)."""
    ledger = read_ledger(engine, portfolio_id)
    master = _master(engine)
    changes = ledger.sessions.to_numpy()
    frames: dict = {}
    out = {}
    for anchor in anchors:
        at = np.searchsorted(changes, np.datetime64(pd.Timestamp(anchor)), side="right") - 1
        key = changes[max(at, 0)] if len(changes) else None
        if key not in frames:
            book = positions_on(ledger, key, include_closed=True) if key is not None else ledger.instruments.iloc[0:0]
            frames[key] = _with_master(book, master).rename(columns={"realized_to_date": "realized_pnl"})
        out[anchor] = frames[key]
    return out
