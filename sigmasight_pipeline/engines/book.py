"""A book that changes (books.md, "Trades"): the ledger of a portfolio and the positions it holds each day.

The upload is the book's opening holdings; imported trades change it from their trade date on. Both are
*events* of one ledger: an upload row opens a lot at its entry price on its entry date, a trade buys or sells
at its price on its trade date. This module is the one place that decides a book:

* ``build_ledger`` matches lots FIFO per instrument and returns, for every session with events, each
  instrument's state after them (quantity, open cost, oldest open lot, realised P&L to date, exit date), the
  day's trade cash and realised P&L, and every lot;
* ``book_periods`` cuts a run's dates into periods over which the book does not change and gives each period
  its positions frame, in the engines' convention (one row per instrument held). The engines are vectorised
  over the positions and dates of a period; a run has one period per trading day with trades or tag
  changes, plus one.

Tags (books.md, "Tags and strategies"): a position starts with the tags of its upload rows and trades (all
of them, from its first day, as before tag edits existed). A tag change (``sigmasight tags add|remove``) is an
event of the book with its effective date: it applies from its session on, so ``positions_on`` gives every
date the tags in force that day and a change starts a new book period, as a trade does. Changes apply in
(session, ``change_seq``) order; adding a tag already there or removing one that is not there changes nothing
(the command refuses such a change when it is made; a later backdated change can make a stored one moot).

Conventions:

* A position is an instrument (a stock symbol, an OCC option symbol): its id is its order of first
  appearance (upload rows first, in file order, then trades in import order), stable as trades are added.
* Split-adjusted scale: every quantity, price, strike and multiplier is put on the scale of the (split-
  adjusted) market prices with ``engines.splits.split_factors``: a stock's quantity x f and prices / f, an
  option's strike / F and multiplier x F (contracts unchanged), where f is the factor of the event's date and
  F that of the option's first event. Cost basis is unchanged by a split.
* FIFO: a reducing trade closes the oldest open lots first and realises ``(trade price - lot price) x
  quantity closed x multiplier`` (signed quantity: the opposite sign for shorts). Fees are realised on the
  day they are paid (opening trades included), so that cumulative P&L = unrealised + realised.
* A trade that would take a position through zero is refused unless flagged close-and-reverse: it then
  closes every lot and opens the opposite side with the rest. A position brought to zero gets its exit
  date (the trade date) and leaves the book; bought again later, it is the same position id, re-opened.
* Events are applied on their session: the first XNYS session on or after the booked date (``session``
  column, given by the caller: this layer knows no calendar). Same-session events apply in order: upload
  rows, then trades in import order.

Matching lots is a loop over a book's events (a few per instrument); it runs once per run and portfolio,
not per date or position-date.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .splits import split_factors

__all__ = [
    "EVENT_COLUMNS",
    "TAG_CHANGE_COLUMNS",
    "LedgerError",
    "Ledger",
    "book_periods",
    "build_ledger",
    "positions_on",
    "tags_on",
]

#: The ledger's input: one row per upload row or trade.
EVENT_COLUMNS = [
    "symbol", "underlying_symbol", "option_type", "strike", "expiration", "multiplier", "implied_vol", "tags",
    "date", "session", "quantity", "price", "fees", "close_and_reverse", "source", "source_row", "trade_seq",
    "trade_id",
]
#: The tag changes given to ``build_ledger``: one row per change (``action`` "add" or "remove"; ``session`` the
#: effective date's XNYS session on or after it, given by the caller). A change names its instrument by symbol.
TAG_CHANGE_COLUMNS = ["change_seq", "symbol", "tag", "action", "effective_date", "session"]
_SOURCE_ORDER = {"upload": 0, "trade": 1}
_ZERO = 1e-9  # |quantity| below this is flat (quantities are stored to 8 decimals)


class LedgerError(ValueError):
    """Trades that cannot be applied to the book; ``problems`` holds one (trade_seq, message) per trade
    (trade_seq -1 for an upload row)."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


@dataclass(frozen=True)
class Ledger:
    """A book's ledger on the split-adjusted scale.

    * ``instruments``: one row per position: ``position_id, symbol, underlying_symbol, option_type, strike,
      expiration, multiplier, implied_vol, tags, source_row, is_option``;
    * ``events``: the input events, ordered, adjusted, with ``position_id``, ``cash`` (quantity x price x
      multiplier + fees: paid, negative for a sale) and ``realized`` (realised by the event, fees deducted);
    * ``states``: per (session, position_id) with events, the state after them: ``quantity, cost_basis,
      entry_price, entry_date, realized_to_date, exit_date``;
    * ``lots``: every lot: ``position_id, lot, open_date, session, price, quantity_opened, quantity_open,
      closed_date`` (``quantity_open`` 0 and ``closed_date`` set once fully closed);
    * ``tag_changes``: the tag changes applied, in the order applied: ``TAG_CHANGE_COLUMNS`` plus
      ``position_id`` and ``changed`` (False: the tag was already there / not there, nothing changed);
    * ``tag_states``: per (session, position_id) with tag changes, the position's tags (a tuple) after them;
      before its first, a position has its ``instruments`` tags.
    """

    instruments: pd.DataFrame
    events: pd.DataFrame
    states: pd.DataFrame
    lots: pd.DataFrame
    tag_changes: pd.DataFrame
    tag_states: pd.DataFrame

    @property
    def sessions(self) -> pd.DatetimeIndex:
        """The sessions on which the book changes: a trade, an upload row or a tag change."""
        changes = set(self.states["session"]) | set(self.tag_states["session"])
        return pd.DatetimeIndex(sorted(changes))

    def day_trades(self, sessions) -> pd.DataFrame:
        """``session, position_id, cash, realized, fees`` summed per position over the events of ``sessions``."""
        ev = self.events[self.events["session"].isin(pd.DatetimeIndex(sessions))]
        return ev.groupby(["session", "position_id"], as_index=False)[["cash", "realized", "fees"]].sum()

    def realized_to(self, sessions) -> pd.Series:
        """The book's realised P&L up to and including each of ``sessions`` (closed positions included)."""
        sessions = pd.DatetimeIndex(sessions)
        by_session = self.events.groupby("session")["realized"].sum().cumsum()
        at = np.searchsorted(by_session.index.to_numpy(), sessions.to_numpy(), side="right") - 1
        values = np.where(at >= 0, by_session.to_numpy()[np.maximum(at, 0)] if len(by_session) else 0.0, 0.0)
        return pd.Series(values, index=sessions, dtype=float)


def _position_ids(events: pd.DataFrame) -> pd.Series:
    """Instrument ids by first appearance (``events`` already in upload-then-trade order)."""
    first = events.drop_duplicates("symbol")["symbol"]
    return events["symbol"].map(pd.Series(np.arange(1, len(first) + 1), index=first.to_numpy()))


def _adjust(events: pd.DataFrame, splits: pd.DataFrame | None) -> pd.DataFrame:
    """Put quantities, prices, strikes and multipliers on the split-adjusted scale (module docstring)."""
    ev = events.copy()
    is_option = ev["option_type"].notna().to_numpy()
    f = split_factors(splits, ev["underlying_symbol"], ev["date"])
    first_date = ev.groupby("position_id")["date"].transform("min")
    F = split_factors(splits, ev["underlying_symbol"], first_date)
    ev["quantity"] = np.where(is_option, ev["quantity"], ev["quantity"] * f)
    ev["price"] = ev["price"] / f
    ev["strike"] = np.where(is_option, ev["strike"].astype(float) / F, np.nan)
    ev["multiplier"] = np.where(is_option, ev["multiplier"] * F, ev["multiplier"])
    return ev


def build_ledger(events: pd.DataFrame, splits: pd.DataFrame | None = None,
                 tag_changes: pd.DataFrame | None = None) -> Ledger:
    """Match a book's events FIFO (module docstring) and return its :class:`Ledger`, with its tag changes.

    ``events`` has ``EVENT_COLUMNS`` (``tags`` a tuple, ``source`` "upload" or "trade", ``session`` the
    date's XNYS session on or after it); ``tag_changes`` (optional) has ``TAG_CHANGE_COLUMNS``; a change of a
    symbol the book has never held is left out (its instrument is gone: a replaced upload). Raises
    :class:`LedgerError` naming every trade that takes a position through zero without ``close_and_reverse``.
    """
    ev = events.assign(
        _order=events["source"].map(_SOURCE_ORDER),
        _seq=np.where(events["source"] == "upload", events["source_row"], events["trade_seq"]),
        date=pd.to_datetime(events["date"]).dt.normalize(),
        session=pd.to_datetime(events["session"]).dt.normalize(),
    )
    ev = ev.sort_values(["_order", "_seq"], kind="stable")
    ev["position_id"] = _position_ids(ev)
    ev = _adjust(ev, splits)
    ev = ev.sort_values(["session", "_order", "_seq"], kind="stable").reset_index(drop=True)

    instruments = (
        ev.sort_values(["_order", "_seq"], kind="stable")
        .groupby("position_id", as_index=False)
        .agg(
            symbol=("symbol", "first"), underlying_symbol=("underlying_symbol", "first"),
            option_type=("option_type", "first"), strike=("strike", "first"), expiration=("expiration", "first"),
            multiplier=("multiplier", "first"), implied_vol=("implied_vol", "last"),
            tags=("tags", lambda t: tuple(dict.fromkeys(x for tags in t for x in tags))),
            source_row=("source_row", lambda r: int(r.iloc[0])),
            first_source=("source", "first"),
        )
    )
    instruments["source_row"] = np.where(instruments.pop("first_source") == "upload", instruments["source_row"], 0)
    instruments["is_option"] = instruments["option_type"].notna()
    mult = instruments.set_index("position_id")["multiplier"].astype(float)

    books: dict[int, deque] = {}
    realized_total: dict[int, float] = {}
    last_price: dict[int, float] = {}  # of the position's latest lot: its entry price once closed
    lots: list[dict] = []
    realized = np.zeros(len(ev))
    problems: list[tuple[int, str]] = []
    qty_a, price_a, fees_a = ev["quantity"].to_numpy(float), ev["price"].to_numpy(float), ev["fees"].to_numpy(float)
    pid_a, date_a, sess_a = ev["position_id"].to_numpy(), ev["date"].to_numpy(), ev["session"].to_numpy()
    rev_a = ev["close_and_reverse"].fillna(False).astype(bool).to_numpy()
    state_rows = []
    for i in range(len(ev)):
        pid, q, price = int(pid_a[i]), qty_a[i], price_a[i]
        m = float(mult[pid])
        open_lots = books.setdefault(pid, deque())
        held = sum(lot["quantity_open"] for lot in open_lots)
        gain = -fees_a[i] + 0.0  # + 0.0: no -0.0
        if abs(held) > _ZERO and np.sign(q) != np.sign(held):
            if abs(q) > abs(held) + _ZERO and not rev_a[i]:
                seq = ev["trade_seq"].iat[i]
                problems.append((-1 if pd.isna(seq) else int(seq), (
                    f"{ev['source'].iat[i]} row {ev['source_row'].iat[i]} ({ev['symbol'].iat[i]} on "
                    f"{pd.Timestamp(date_a[i]):%Y-%m-%d}): {q:+,.8g} would take the position of {held:+,.8g} through "
                    "zero; set close_and_reverse to close it and open the opposite side"
                )))
                continue
            to_close = q  # signed against the lots
            while open_lots and abs(to_close) > _ZERO:
                lot = open_lots[0]
                closed = -to_close if abs(to_close) < abs(lot["quantity_open"]) else lot["quantity_open"]
                gain += (price - lot["price"]) * closed * m
                lot["quantity_open"] -= closed
                to_close += closed
                if abs(lot["quantity_open"]) <= _ZERO:
                    lot["quantity_open"] = 0.0
                    lot["closed_date"] = pd.Timestamp(date_a[i])
                    open_lots.popleft()
            q = to_close  # what is left opens the opposite side (close-and-reverse)
        if abs(q) > _ZERO:
            lot = {"position_id": pid, "lot": len(lots) + 1, "open_date": pd.Timestamp(date_a[i]),
                   "session": pd.Timestamp(sess_a[i]), "price": price, "quantity_opened": q, "quantity_open": q,
                   "closed_date": pd.NaT}
            open_lots.append(lot)
            lots.append(lot)
            last_price[pid] = price
        realized[i] = gain
        realized_total[pid] = realized_total.get(pid, 0.0) + gain
        remaining = [lot for lot in open_lots if abs(lot["quantity_open"]) > _ZERO]
        quantity = sum(lot["quantity_open"] for lot in remaining)
        cost = sum(lot["quantity_open"] * lot["price"] for lot in remaining) * m
        state_rows.append({
            "session": pd.Timestamp(sess_a[i]), "position_id": pid, "quantity": quantity if remaining else 0.0,
            "cost_basis": cost,
            "entry_price": cost / (quantity * m) if remaining else last_price.get(pid, price),
            "entry_date": remaining[0]["open_date"] if remaining else pd.Timestamp(date_a[i]),
            "realized_to_date": realized_total[pid],
            "exit_date": pd.NaT if remaining else pd.Timestamp(date_a[i]),
        })
    if problems:
        raise LedgerError(problems)

    ev = ev.drop(columns=["_order", "_seq"])
    ev["realized"] = realized
    ev["cash"] = ev["quantity"] * ev["price"] * ev["position_id"].map(mult).to_numpy() + ev["fees"]
    states = pd.DataFrame(state_rows, columns=["session", "position_id", "quantity", "cost_basis", "entry_price",
                                               "entry_date", "realized_to_date", "exit_date"])
    states = states.drop_duplicates(["session", "position_id"], keep="last").reset_index(drop=True)  # after the day's last event
    lot_frame = pd.DataFrame(lots, columns=["position_id", "lot", "open_date", "session", "price", "quantity_opened",
                                            "quantity_open", "closed_date"])
    changes, tag_states = _tag_states(instruments, tag_changes)
    return Ledger(instruments=instruments, events=ev, states=states, lots=lot_frame, tag_changes=changes,
                  tag_states=tag_states)


def _tag_states(instruments: pd.DataFrame, tag_changes: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the changes applied, with ``position_id`` and ``changed``; the tags per (session, position_id) after
    them): changes in (session, change_seq) order from each position's ``instruments`` tags (a loop over the
    changes: a few per book, once per ledger)."""
    columns = [*TAG_CHANGE_COLUMNS, "position_id", "changed"]
    if tag_changes is None or len(tag_changes) == 0:
        return (pd.DataFrame(columns=columns),
                pd.DataFrame({"session": pd.Series(dtype="datetime64[ns]"), "position_id": pd.Series(dtype=int),
                              "tags": pd.Series(dtype=object)}))
    ids = pd.Series(instruments["position_id"].to_numpy(), index=instruments["symbol"].to_numpy())
    ch = tag_changes.assign(
        session=pd.to_datetime(tag_changes["session"]).dt.normalize(),
        effective_date=pd.to_datetime(tag_changes["effective_date"]).dt.normalize(),
        position_id=tag_changes["symbol"].map(ids),
    )
    ch = ch[ch["position_id"].notna()].astype({"position_id": int})
    ch = ch.sort_values(["session", "change_seq"], kind="stable").reset_index(drop=True)
    current = dict(zip(instruments["position_id"], instruments["tags"]))
    changed, rows = [], []
    for pid, tag, action, session in zip(ch["position_id"], ch["tag"], ch["action"], ch["session"]):
        tags = current[pid]
        after = (*tags, tag) if action == "add" and tag not in tags else (
            tuple(t for t in tags if t != tag) if action == "remove" else tags)
        changed.append(after != tags)
        current[pid] = after
        rows.append({"session": session, "position_id": pid, "tags": after})
    ch["changed"] = changed
    states = pd.DataFrame(rows, columns=["session", "position_id", "tags"])
    states = states.drop_duplicates(["session", "position_id"], keep="last").reset_index(drop=True)
    return ch[columns], states


def tags_on(ledger: Ledger, session) -> pd.Series:
    """Every position's tags (a tuple) in force on ``session``, indexed by ``position_id``: its latest tag state
    on or before ``session``, else its opening tags (upload rows and trades)."""
    tags = ledger.instruments.set_index("position_id")["tags"]
    states = ledger.tag_states[ledger.tag_states["session"] <= pd.Timestamp(session)]
    if len(states):
        latest = states.drop_duplicates("position_id", keep="last").set_index("position_id")["tags"]
        tags = latest.combine_first(tags).reindex(tags.index)
    return tags


def positions_on(ledger: Ledger, session, *, include_closed: bool = False) -> pd.DataFrame:
    """The book after the events of ``session`` (and every earlier one): one row per position held (or, with
    ``include_closed``, ever opened by then), instrument columns plus ``quantity, cost_basis, entry_price,
    entry_date, realized_to_date, exit_date`` and ``position_type``; ``tags`` are those in force that day
    (``tags_on``)."""
    states = ledger.states[ledger.states["session"] <= pd.Timestamp(session)]
    latest = states.drop_duplicates("position_id", keep="last")  # states are in session order
    if not include_closed:
        latest = latest[latest["quantity"].abs() > _ZERO]
    book = ledger.instruments.merge(latest.drop(columns=["session"]), on="position_id", how="inner")
    book["tags"] = book["position_id"].map(tags_on(ledger, session))
    book["position_type"] = _position_types(book)
    return book.sort_values("position_id").reset_index(drop=True)


def _position_types(book: pd.DataFrame) -> np.ndarray:
    long = book["quantity"].to_numpy(float) >= 0
    opt = book["option_type"].to_numpy(object)
    return np.where(book["option_type"].isna(), np.where(long, "LONG", "SHORT"),
                    np.where(long, "L", "S") + np.where(pd.isna(opt), "", opt.astype(str)))


def book_periods(ledger: Ledger, dates) -> list[tuple[pd.DatetimeIndex, pd.DataFrame]]:
    """Cut ``dates`` (a run's partition dates, ascending; holidays included) into periods over which the book
    does not change; each with the positions held (``positions_on`` its first date's latest change).

    A period starts at the first date and at every change session (trade, upload row, tag change) among the
    dates. Dates before the book's first change get the book of its first change: its positions' entry dates
    lie after those dates, so the engines hold nothing there (as for an upload whose entries are later than the dates computed).
    """
    dates = pd.DatetimeIndex(dates)
    if len(dates) == 0:
        return []
    changes = ledger.sessions
    starts = sorted({dates[0], *[d for d in changes if dates[0] < d <= dates[-1]]})
    periods = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else None
        in_period = dates[(dates >= start) & ((dates < end) if end is not None else True)]
        as_of = changes[changes <= start]
        book = positions_on(ledger, as_of[-1] if len(as_of) else (changes[0] if len(changes) else start))
        periods.append((in_period, book))
    return periods
