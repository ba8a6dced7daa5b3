"""A portfolio's ledger in the warehouse: the opening holdings (its stored upload), its imported trades and its
tag changes, read as the events of ``engines.book``; the import of a trades file; a tag change; the book the
engines compute on.

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

from sigmasight_pipeline.engines.book import (
    EVENT_COLUMNS, TAG_CHANGE_COLUMNS, Ledger, LedgerError, build_ledger, positions_on, tags_on,
)
from sigmasight_pipeline.engines.valuation import UNTAGGED
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.base import price_symbol_for
from sigmasight_pipeline.onboarding import parse_portfolio_csv
from sigmasight_pipeline.onboarding.portfolio_csv import MAX_TAG_LENGTH, RowError
from sigmasight_pipeline.onboarding.trades_csv import ParsedTrade, TradesValidationError
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.entry_warnings import replace_entry_warnings
from sigmasight_pipeline.warehouse.io import read_frame
from sigmasight_pipeline.warehouse.portfolios import get_portfolio
from sigmasight_pipeline.warehouse.splits import read_splits

__all__ = ["ImportedTrades", "TagChange", "TagChangeError", "book_events", "books_as_of", "change_tag", "check_tag",
           "ledger_tables", "engine_positions", "import_trades", "ledger_with_trades", "read_ledger",
           "read_tag_changes", "read_trades", "sessions_on_or_after", "tag_tables", "trade_rows"]


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


def read_tag_changes(engine: Engine, portfolio_id: str) -> pd.DataFrame:
    """The stored tag changes of a portfolio, in the order they were made (``change_seq``)."""
    t = schema.tag_changes
    return read_frame(engine, sa.select(t).where(t.c.portfolio_id == portfolio_id).order_by(t.c.change_seq))


def _tag_change_events(changes: pd.DataFrame) -> pd.DataFrame:
    """Stored tag changes as ``engines.book.TAG_CHANGE_COLUMNS`` (with the session of each effective date)."""
    return changes.assign(session=sessions_on_or_after(changes["effective_date"]))[TAG_CHANGE_COLUMNS]


def read_ledger(engine: Engine, portfolio_id: str, extra_trades: pd.DataFrame | None = None) -> Ledger:
    """The portfolio's :class:`~sigmasight_pipeline.engines.book.Ledger` from its stored events, its tag changes
    and the stored splits of its underlyings."""
    events = book_events(engine, portfolio_id, extra_trades)
    changes = read_tag_changes(engine, portfolio_id)
    return build_ledger(events, read_splits(engine, sorted(set(events["underlying_symbol"]))),
                        _tag_change_events(changes) if len(changes) else None)


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


# ---------------------------------------------------------------------------------------------------
# Tags and strategies (books.md): ``sigmasight tags add|remove|list``
# ---------------------------------------------------------------------------------------------------
class TagChangeError(ValueError):
    """A tag change refused (the message names the tag, position or date); nothing was stored."""


@dataclass(frozen=True)
class TagChange:
    """A stored tag change: the positions it applies to ((position_id, symbol) each) and their tags after it."""

    portfolio_id: str
    action: str
    tag: str
    effective_date: dt.date
    session: dt.date  # the first XNYS session on or after the effective date: the change applies from it
    positions: tuple[tuple[int, str], ...]
    tags_after: tuple[tuple[str, ...], ...]
    change_seqs: tuple[int, ...]


def check_tag(tag: str) -> str:
    """A tag as stored (surrounding spaces removed), or :class:`TagChangeError`: empty, longer than
    ``MAX_TAG_LENGTH`` characters, containing a comma (tags are comma-separated in the upload and trades
    files) or the name of the untagged group."""
    text = (tag or "").strip()
    if not text:
        raise TagChangeError("tag is empty")
    if len(text) > MAX_TAG_LENGTH:
        raise TagChangeError(f"tag {text!r} is longer than {MAX_TAG_LENGTH} characters ({len(text)})")
    if "," in text:
        raise TagChangeError(f"tag {text!r} contains a comma (tags are comma-separated in files): give one tag")
    if text == UNTAGGED:
        raise TagChangeError(f"tag {text!r} is reserved: it is the group of positions without tags")
    return text


def _normal_symbol(ticker: str) -> str:
    from sigmasight_pipeline.onboarding import looks_like_occ, parse_occ_symbol

    text = ticker.strip().upper()
    if looks_like_occ(text):
        try:
            return parse_occ_symbol(text).occ
        except ValueError:
            return text
    return text


def _targets(ledger: Ledger, position_id: int | None, ticker: str | None) -> pd.DataFrame:
    """The instruments a change names: one by id, or the one of that exact symbol (a stock's ticker, an option's
    OCC symbol)."""
    inst = ledger.instruments
    if (position_id is None) == (ticker is None):
        raise TagChangeError("give exactly one of a position id or a ticker")
    if position_id is not None:
        hit = inst[inst["position_id"] == position_id]
        if hit.empty:
            raise TagChangeError(f"unknown position {position_id}: the book's positions are 1..{len(inst)} "
                                 "(sigmasight tags list shows them)")
        return hit
    symbol = _normal_symbol(ticker)
    hit = inst[inst["symbol"] == symbol]
    if hit.empty:
        on_it = inst.loc[inst["underlying_symbol"] == symbol, "symbol"].tolist()
        hint = (f"; options on it are positions of their own: {', '.join(on_it)}" if on_it else
                f"; the book's symbols: {', '.join(inst['symbol'])}")
        raise TagChangeError(f"unknown ticker {ticker.strip()!r}: the book holds no position of that symbol{hint}")
    return hit


def change_tag(engine: Engine, portfolio_id: str, *, tag: str, action: str, position_id: int | None = None,
               ticker: str | None = None, effective_date=None, today: dt.date | None = None) -> TagChange:
    """Add a tag to, or remove it from, one position (``position_id``) or the position of a symbol
    (``ticker``: exactly that symbol; an option on it is another position, with its OCC symbol), from
    ``effective_date`` on (default ``today``), and store the change.

    Refused with :class:`TagChangeError`, nothing stored: a bad tag (:func:`check_tag`), an unknown position
    or ticker, an effective date before the portfolio's first entry date or after ``today``, a position
    not held on or after the effective date (closed before it and not re-opened), adding a tag the position
    already has on that date or removing one it does not have.
    """
    if action not in ("add", "remove"):
        raise ValueError(f"action must be 'add' or 'remove', not {action!r}")
    tag = check_tag(tag)
    today = today or dt.date.today()
    when = pd.Timestamp(effective_date if effective_date is not None else today).normalize()
    pid = get_portfolio(engine, portfolio_id)["portfolio_id"]
    ledger = read_ledger(engine, pid)
    first_entry = ledger.events["date"].min()
    if when < first_entry:
        raise TagChangeError(f"effective date {when:%Y-%m-%d} is before the portfolio's first entry date "
                             f"{first_entry:%Y-%m-%d}")
    if when.date() > today:
        raise TagChangeError(f"effective date {when:%Y-%m-%d} is in the future (today is {today:%Y-%m-%d})")
    session = sessions_on_or_after([when])[0]
    targets = _targets(ledger, position_id, ticker)
    held_after = set(ledger.states.loc[(ledger.states["session"] >= session) & (ledger.states["quantity"].abs() > 0),
                                       "position_id"]) | set(positions_on(ledger, session)["position_id"])
    tags_then = tags_on(ledger, session)
    rows, after = [], []
    stored = read_tag_changes(engine, pid)
    seq0 = int(stored["change_seq"].max()) + 1 if len(stored) else 1
    now = dt.datetime.now(dt.timezone.utc)
    for i, (p, symbol) in enumerate(zip(targets["position_id"], targets["symbol"])):
        name = f"position {p} ({symbol})"
        if p not in held_after:
            exit_date = positions_on(ledger, session, include_closed=True).set_index("position_id")["exit_date"].get(p)
            closed = f"closed on {exit_date:%Y-%m-%d}" if exit_date is not None and not pd.isna(exit_date) else "not held"
            raise TagChangeError(f"{name} is not held on or after {when:%Y-%m-%d} ({closed}): a tag change there "
                                 "would change nothing")
        current = tuple(tags_then[p])
        if action == "add" and tag in current:
            raise TagChangeError(f"{name} already has tag {tag!r} on {session:%Y-%m-%d}")
        if action == "remove" and tag not in current:
            shown = ", ".join(current) or "none"
            raise TagChangeError(f"{name} has no tag {tag!r} on {session:%Y-%m-%d} (its tags then: {shown})")
        after.append((*current, tag) if action == "add" else tuple(t for t in current if t != tag))
        rows.append({"portfolio_id": pid, "change_seq": seq0 + i, "position_id": int(p), "symbol": symbol,
                     "tag": tag, "action": action, "effective_date": when.date(), "created_at": now})
    with engine.begin() as conn:
        conn.execute(schema.tag_changes.insert(), rows)
    return TagChange(pid, action, tag, when.date(), session.date(),
                     tuple((int(r["position_id"]), r["symbol"]) for r in rows), tuple(after),
                     tuple(r["change_seq"] for r in rows))


def tag_tables(engine: Engine, portfolio_id: str, as_of=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every position's tags in force on ``as_of`` (default: the book's latest change) with its state then;
    the tag change history in the order applied) as ``sigmasight tags list`` prints them."""
    ledger = read_ledger(engine, portfolio_id)
    latest = pd.Timestamp(as_of) if as_of is not None else ledger.sessions[-1]
    book = positions_on(ledger, latest, include_closed=True)
    status = np.where(book["exit_date"].isna(), "open",
                      "closed " + pd.to_datetime(book["exit_date"]).dt.strftime("%Y-%m-%d").fillna(""))
    current = pd.DataFrame({
        "position": book["position_id"], "symbol": book["symbol"], "underlying": book["underlying_symbol"],
        "status": status, "tags": book["tags"].map(lambda t: ", ".join(t) or "-"),
    })
    ch = ledger.tag_changes
    columns = ["change", "effective", "from_session", "position", "symbol", "action", "tag", "changed", "made_at"]
    if ch.empty:
        return current, pd.DataFrame(columns=columns)
    stored = read_tag_changes(engine, portfolio_id).set_index("change_seq")["created_at"]
    history = pd.DataFrame({
        "change": ch["change_seq"].astype(int), "effective": ch["effective_date"].dt.strftime("%Y-%m-%d"),
        "from_session": ch["session"].dt.strftime("%Y-%m-%d"), "position": ch["position_id"].astype(int),
        "symbol": ch["symbol"], "action": ch["action"], "tag": ch["tag"],
        "changed": np.where(ch["changed"].astype(bool), "yes", "no (moot)"),
        "made_at": pd.to_datetime(ch["change_seq"].map(stored), utc=True).dt.strftime("%Y-%m-%d %H:%M UTC"),
    })
    return current, history
