"""Daily P&L per position and one portfolio snapshot per date (pure, vectorised over positions x dates).

Daily P&L is measured on prices, never on changes of exposure: a short that rallies loses money.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["POSITION_PNL_COLUMNS", "SNAPSHOT_COLUMNS", "daily_position_pnl", "greek_totals", "portfolio_snapshots"]

POSITION_PNL_COLUMNS = ["date", "position_id", "daily_pnl", "pnl_basis", "quantity", "trade_cash", "realized_pnl"]

SNAPSHOT_COLUMNS = [
    "date",
    "total_value",
    "long_exposure",
    "short_exposure",
    "gross_exposure",
    "net_exposure",
    "delta_adjusted_exposure",
    "notional",
    "position_count",
    "long_count",
    "short_count",
    "option_count",
    "stock_count",
    "missing_price_count",
    "portfolio_delta",
    "portfolio_gamma",
    "portfolio_theta",
    "portfolio_vega",
    "portfolio_rho",
    "dollar_delta",
    "dollar_gamma",
    "daily_pnl",
    "daily_return",
    "cumulative_pnl",
    "is_first_snapshot",
    "pnl_basis",
    "realized_pnl",
    "cumulative_realized_pnl",
]

_GREEK_SUMS = {
    "position_delta": "portfolio_delta",
    "position_gamma": "portfolio_gamma",
    "position_theta": "portfolio_theta",
    "position_vega": "portfolio_vega",
    "position_rho": "portfolio_rho",
    "dollar_delta": "dollar_delta",
    "dollar_gamma": "dollar_gamma",
}


def daily_position_pnl(
    positions: pd.DataFrame,
    prices_by_date: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    trades: pd.DataFrame | None = None,
    dates=None,
) -> pd.DataFrame:
    """Daily P&L per position, trades included (books.md, "Daily P&L with trades")::

        daily_pnl = q_t x price_t x m  -  q_prev x price_ref x m  -  trade_cash_t

    over a period whose book (``positions``: ``position_id, quantity, multiplier, entry_price``) holds from
    its first date on; ``prices_by_date`` is the valuations frame (``date, position_id, price``; one row per
    position held on a date).

    - ``previous``: the book before the first date (``position_id, quantity, multiplier, entry_price, price``:
      the previous session's book and its stored prices); a Series of prices by position_id (the same book,
      unchanged); or None on a first run (no stored previous day).
    - A position of ``positions`` whose ``entry_date`` falls after the previous date (or on the first date
      without a previous book) was opened that day: it counts from its entry price, as a purchase of its
      quantity at that price unless ``trades`` gives the day's trade cash for it.
    - ``trades``: the day's trades per position (``session, position_id, cash, realized``; ``cash`` = quantity
      x price x multiplier + fees, negative for a sale; used with a previous book). On a trade day q_prev is
      the previous book's quantity (0 for a position opened that day, which thus counts from its trade
      price), and a position closed that day has a row with q_t = 0: its P&L is the sale against the
      previous close.
    - ``price_ref``: the last known price before t (the previous session's, or an earlier one when a day's
      price was missing, so that day's move is recognised once, on the next priced day); the entry price
      when none is known.
    - ``pnl_basis``: "previous_close"; "entry_price" (opened that day, or no earlier price); "trade" (a
      position held before traded that day); "missing_price" (no price on t: ``daily_pnl`` NaN, never 0).

    ``dates``: the sessions computed (default: those of ``prices_by_date``); a flat book (nothing held) has
    rows only for the positions it closed, on their closing day.

    Returns ``POSITION_PNL_COLUMNS`` (``quantity`` held at the day's end, ``trade_cash`` paid and
    ``realized_pnl`` realised that day) sorted by date and position.
    """
    columns = POSITION_PNL_COLUMNS
    no_trades = trades is None or len(trades) == 0
    if len(prices_by_date) == 0 and (no_trades or dates is None):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    frame = (prices_by_date[["date", "position_id", "price"]] if len(prices_by_date)
             else pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "position_id": pd.Series(dtype=int),
                                "price": pd.Series(dtype=float)}))
    frame["date"] = pd.DatetimeIndex(frame["date"])
    dates = pd.DatetimeIndex(sorted(frame["date"].unique()) if dates is None else dates)
    book_before = previous if isinstance(previous, pd.DataFrame) and "quantity" in previous else None
    if previous is not None and book_before is None:  # prices only: the same book the day before
        previous = pd.DataFrame({"position_id": pd.Series(previous).index, "price": pd.Series(previous).to_numpy()})
    day_trades = trades if trades is not None and len(trades) and book_before is not None else None
    if day_trades is not None:
        day_trades = day_trades[pd.DatetimeIndex(day_trades["session"]).isin(dates)]
    book = positions[positions["position_id"].isin(set(frame["position_id"]))][
        ["position_id", "quantity", "multiplier", "entry_price"]]
    if day_trades is not None and len(day_trades):  # closed on a trade day: held before, not after
        closed = book_before[book_before["position_id"].isin(set(day_trades["position_id"]) - set(book["position_id"]))]
        book = pd.concat([book, closed[["position_id", "multiplier", "entry_price"]].assign(quantity=0.0)])
    pos_ids = book["position_id"].to_numpy()

    wide = frame.pivot(index="date", columns="position_id", values="price").reindex(index=dates, columns=pos_ids)
    held = (
        frame.assign(h=1.0).pivot(index="date", columns="position_id", values="h")
        .reindex(index=dates, columns=pos_ids).notna().to_numpy()
    )
    price = wide.to_numpy(dtype=float)
    qty = np.broadcast_to(book["quantity"].to_numpy(dtype=float), price.shape)
    mult = book["multiplier"].to_numpy(dtype=float)[None, :]
    entry_price = book["entry_price"].to_numpy(dtype=float)[None, :]
    prev = previous.set_index("position_id") if previous is not None else None
    seed = prev["price"].reindex(pos_ids).to_numpy(dtype=float) if prev is not None else np.full(len(pos_ids), np.nan)
    stacked = pd.DataFrame(np.vstack([seed[None, :], price])).ffill().to_numpy()
    ref = stacked[:-1]  # last known price strictly before each date

    q_prev = np.vstack([qty[:1], qty[:-1]]).copy()
    if book_before is not None:
        q_prev[0] = book_before.set_index("position_id")["quantity"].reindex(pos_ids).fillna(0.0).to_numpy(dtype=float)
    # Opened on t by its entry date (no previous book knows it): bought at its entry price.
    entry = pd.to_datetime(positions.set_index("position_id")["entry_date"].reindex(pos_ids)).dt.normalize()
    entry = entry.to_numpy(dtype="datetime64[ns]")
    d64 = dates.to_numpy(dtype="datetime64[ns]")
    opened = entry[None, :] > np.concatenate([d64[:1] - np.timedelta64(1, "D"), d64[:-1]])[:, None]
    if book_before is not None:
        opened[0] = False  # the previous book says what was held
    q_prev = np.where(opened, 0.0, q_prev)
    cash = np.zeros(price.shape)
    realized = np.zeros(price.shape)
    given = np.zeros(price.shape, dtype=bool)
    if day_trades is not None and len(day_trades):
        t = dates.get_indexer(pd.DatetimeIndex(day_trades["session"]))
        j = pd.Index(pos_ids).get_indexer(day_trades["position_id"])
        np.add.at(cash, (t, j), day_trades["cash"].to_numpy(dtype=float))
        np.add.at(realized, (t, j), day_trades["realized"].to_numpy(dtype=float))
        given[t, j] = True
        held = held | given
    cash = np.where(opened & ~given, qty * entry_price * mult, cash)

    from_entry = (q_prev == 0) | np.isnan(ref)
    ref = np.where(np.isnan(ref), entry_price, ref)
    value_now = np.where(qty == 0, 0.0, qty * price * mult)
    pnl = value_now - np.where(q_prev == 0, 0.0, q_prev * ref * mult) - cash
    traded = given & (q_prev != 0)
    basis = np.where(
        np.isnan(price) & (qty != 0), "missing_price",
        np.where(from_entry, "entry_price", np.where(traded, "trade", "previous_close")),
    )

    di, pj = np.nonzero(held)
    return pd.DataFrame(
        {
            "date": dates[di],
            "position_id": pos_ids[pj],
            "daily_pnl": pnl[di, pj],
            "pnl_basis": basis[di, pj],
            "quantity": qty[di, pj],
            "trade_cash": cash[di, pj],
            "realized_pnl": realized[di, pj],
        },
        columns=columns,
    )


def _basis_label(bases: pd.Series) -> str:
    kinds = set(bases) - {"missing_price"}
    if not kinds:
        return "previous_close"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def greek_totals(greeks: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The book's Greeks on each of ``dates`` (index): the sums of the positions' ``position_delta, _gamma,
    _theta, _vega, _rho, dollar_delta, dollar_gamma`` as ``portfolio_delta, ..., dollar_delta, dollar_gamma``
    (0 on a date without rows)."""
    f = greeks.assign(date=pd.DatetimeIndex(greeks["date"]))
    return f.groupby("date")[list(_GREEK_SUMS)].sum().reindex(dates).fillna(0.0).rename(columns=_GREEK_SUMS)


def portfolio_snapshots(
    valuations: pd.DataFrame,
    exposures: pd.DataFrame,
    greeks: pd.DataFrame,
    position_pnl: pd.DataFrame,
    previous_snapshot: dict | None = None,
    realized_to_date: pd.Series | None = None,
) -> pd.DataFrame:
    """One snapshot row per date (``SNAPSHOT_COLUMNS``).

    - ``total_value``: sum of position market values (priced positions; no cash is modelled).
    - Exposures and counts: from ``portfolio_exposures``; Greeks: sums of ``position_greeks``'
      position_* and dollar_* columns (``portfolio_delta`` mixes share-equivalents of different
      underlyings; ``dollar_delta`` is the comparable figure).
    - ``daily_pnl``: sum of the positions' daily P&L (``daily_position_pnl``); ``pnl_basis`` is that
      date's basis ("previous_close", "entry_price" or "mixed" when some positions were opened that day).
    - ``realized_pnl``: realised that day (sum of the positions' ``realized_pnl``; part of ``daily_pnl``);
      ``cumulative_realized_pnl``: the book's realised P&L up to each date (``realized_to_date``, a Series by
      date from the ledger, closed positions included; 0 when not given).
    - FIRST snapshot (``previous_snapshot`` None): the first date's P&L is the P&L since entry, the sum of
      ``unrealized_pnl`` plus the realised P&L to date; it is flagged (``is_first_snapshot`` True, ``pnl_basis`` "entry_price") and has
      NO daily return (NaN, stored NULL): P&L earned over an unknown number of days is not a one-day
      return, so it never enters volatility, Sharpe or VaR backtests (books.md, "Numbers that must not
      mislead").
    - ``daily_return = daily_pnl / previous day's gross exposure`` (the equity base is gross exposure;
      for the first date, ``previous_snapshot["gross_exposure"]``).
    - ``cumulative_pnl`` continues from ``previous_snapshot["cumulative_pnl"]`` (0 on a first snapshot).
    """
    if len(exposures) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in SNAPSHOT_COLUMNS})
    ex = exposures.copy()
    ex["date"] = pd.DatetimeIndex(ex["date"])
    ex = ex.sort_values("date").reset_index(drop=True)
    dates = pd.DatetimeIndex(ex["date"])

    def by_date(frame: pd.DataFrame, columns) -> pd.DataFrame:
        f = frame.assign(date=pd.DatetimeIndex(frame["date"]))
        return f.groupby("date")[list(columns)].sum().reindex(dates).fillna(0.0)

    vals = by_date(valuations, ["market_value", "unrealized_pnl"])
    greek_sums = greek_totals(greeks, dates)
    pnl = np.array(by_date(position_pnl, ["daily_pnl"])["daily_pnl"], dtype=float)  # a writable copy
    pp = position_pnl.assign(date=pd.DatetimeIndex(position_pnl["date"]))
    basis = np.array(pp.groupby("date")["pnl_basis"].agg(_basis_label).reindex(dates).fillna("previous_close"), dtype=object)

    gross = ex["gross_exposure"].to_numpy(dtype=float)
    first = previous_snapshot is None
    realized_day = (by_date(position_pnl, ["realized_pnl"])["realized_pnl"].to_numpy(dtype=float)
                    if "realized_pnl" in position_pnl else np.zeros(len(dates)))
    realized_cum = (pd.Series(realized_to_date, dtype=float).reindex(dates).ffill().fillna(0.0).to_numpy()
                    if realized_to_date is not None else np.zeros(len(dates)))
    if first:
        pnl[0] = vals["unrealized_pnl"].iloc[0] + realized_cum[0]
        basis[0] = "entry_price"
        base0 = np.nan  # no previous snapshot: no daily return on the first date (P&L since entry)
        prev_cum = 0.0
    else:
        base0 = previous_snapshot.get("gross_exposure", np.nan)
        prev_cum = float(previous_snapshot.get("cumulative_pnl", 0.0) or 0.0)
    base = np.concatenate([[base0], gross[:-1]]).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        daily_return = np.where(base > 0, pnl / base, np.nan)

    out = pd.DataFrame({"date": dates, "total_value": vals["market_value"].to_numpy()})
    for col in [
        "long_exposure",
        "short_exposure",
        "gross_exposure",
        "net_exposure",
        "delta_adjusted_exposure",
        "notional",
        "position_count",
        "long_count",
        "short_count",
        "option_count",
        "stock_count",
        "missing_price_count",
    ]:
        out[col] = ex[col].to_numpy()
    for col in _GREEK_SUMS.values():
        out[col] = greek_sums[col].to_numpy()
    out["daily_pnl"] = pnl
    out["daily_return"] = daily_return
    out["cumulative_pnl"] = prev_cum + np.cumsum(pnl)
    out["is_first_snapshot"] = np.arange(len(dates)) == 0 if first else np.zeros(len(dates), dtype=bool)
    out["pnl_basis"] = basis
    out["realized_pnl"] = realized_day
    out["cumulative_realized_pnl"] = realized_cum
    return out[SNAPSHOT_COLUMNS]
