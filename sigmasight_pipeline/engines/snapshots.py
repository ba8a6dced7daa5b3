"""Daily P&L per position and one portfolio snapshot per date (pure, vectorised over positions x dates).

Daily P&L is measured on prices, never on changes of exposure: a short that rallies loses money.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["POSITION_PNL_COLUMNS", "SNAPSHOT_COLUMNS", "daily_position_pnl", "portfolio_snapshots"]

POSITION_PNL_COLUMNS = ["date", "position_id", "daily_pnl", "pnl_basis"]

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
    previous_prices: pd.Series | None = None,
) -> pd.DataFrame:
    """Daily P&L per held position: ``quantity x (price_t - price_ref) x multiplier``.

    ``prices_by_date`` is the valuations frame (``date, position_id, price``; one row per position held on
    a date). ``previous_prices`` maps position_id -> price on the session before the first date (NaN or
    absent when unknown).

    - ``pnl_basis`` "previous_close": price_ref is the position's last known price before t (the previous
      session's, or an earlier one when a day's price was missing, so that day's move is recognised once,
      on the next priced day).
    - ``pnl_basis`` "entry_price": the position was opened on t (its entry date is after the previous
      date in the frame, or equals the first date), or it has no earlier price: price_ref = entry_price.
      On a first run this measures P&L since entry.
    - ``pnl_basis`` "missing_price": no price on t; ``daily_pnl`` NaN (never 0).

    Returns ``date, position_id, daily_pnl, pnl_basis`` sorted by date and position order.
    """
    if len(prices_by_date) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in POSITION_PNL_COLUMNS})
    frame = prices_by_date[["date", "position_id", "price"]].copy()
    frame["date"] = pd.DatetimeIndex(frame["date"])
    dates = pd.DatetimeIndex(sorted(frame["date"].unique()))
    present = set(frame["position_id"])
    info = positions[positions["position_id"].isin(present)]
    pos_ids = info["position_id"].to_numpy()

    wide = frame.pivot(index="date", columns="position_id", values="price").reindex(index=dates, columns=pos_ids)
    held = (
        frame.assign(h=1.0)
        .pivot(index="date", columns="position_id", values="h")
        .reindex(index=dates, columns=pos_ids)
        .notna()
        .to_numpy()
    )
    price = wide.to_numpy(dtype=float)
    seed = (
        pd.Series(previous_prices, dtype=float).reindex(pos_ids).to_numpy(dtype=float)
        if previous_prices is not None
        else np.full(len(pos_ids), np.nan)
    )
    stacked = pd.DataFrame(np.vstack([seed[None, :], price])).ffill().to_numpy()
    prev = stacked[:-1]  # last known price strictly before each date

    entry = pd.to_datetime(info["entry_date"]).dt.normalize().to_numpy(dtype="datetime64[ns]")
    d64 = dates.to_numpy(dtype="datetime64[ns]")
    prev_date = np.concatenate([d64[:1], d64[:-1]])  # first row: "opened" means entry_date == first date
    opened = np.where(np.arange(len(d64))[:, None] == 0, entry[None, :] >= d64[:1, None], entry[None, :] > prev_date[:, None])

    from_entry = opened | np.isnan(prev)
    entry_price = info["entry_price"].to_numpy(dtype=float)[None, :]
    ref = np.where(from_entry, entry_price, prev)
    scale = (info["quantity"].to_numpy(dtype=float) * info["multiplier"].to_numpy(dtype=float))[None, :]
    pnl = scale * (price - ref)
    basis = np.where(np.isnan(price), "missing_price", np.where(from_entry, "entry_price", "previous_close"))

    di, pj = np.nonzero(held)
    return pd.DataFrame(
        {
            "date": dates[di],
            "position_id": pos_ids[pj],
            "daily_pnl": pnl[di, pj],
            "pnl_basis": basis[di, pj],
        },
        columns=POSITION_PNL_COLUMNS,
    )


def _basis_label(bases: pd.Series) -> str:
    kinds = set(bases) - {"missing_price"}
    if not kinds:
        return "previous_close"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def portfolio_snapshots(
    valuations: pd.DataFrame,
    exposures: pd.DataFrame,
    greeks: pd.DataFrame,
    position_pnl: pd.DataFrame,
    previous_snapshot: dict | None = None,
) -> pd.DataFrame:
    """One snapshot row per date (``SNAPSHOT_COLUMNS``).

    - ``total_value``: sum of position market values (priced positions; no cash is modelled).
    - Exposures and counts: from ``portfolio_exposures``; Greeks: sums of ``position_greeks``'
      position_* and dollar_* columns (``portfolio_delta`` mixes share-equivalents of different
      underlyings; ``dollar_delta`` is the comparable figure).
    - ``daily_pnl``: sum of the positions' daily P&L (``daily_position_pnl``); ``pnl_basis`` is that
      date's basis ("previous_close", "entry_price" or "mixed" when some positions were opened that day).
    - FIRST snapshot (``previous_snapshot`` None): the first date's P&L is the P&L since entry, the sum of
      ``unrealized_pnl``; it is flagged (``is_first_snapshot`` True, ``pnl_basis`` "entry_price") and has
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
    greek_sums = by_date(greeks, list(_GREEK_SUMS)).rename(columns=_GREEK_SUMS)
    pnl = np.array(by_date(position_pnl, ["daily_pnl"])["daily_pnl"], dtype=float)  # a writable copy
    pp = position_pnl.assign(date=pd.DatetimeIndex(position_pnl["date"]))
    basis = np.array(pp.groupby("date")["pnl_basis"].agg(_basis_label).reindex(dates).fillna("previous_close"), dtype=object)

    gross = ex["gross_exposure"].to_numpy(dtype=float)
    first = previous_snapshot is None
    if first:
        pnl[0] = vals["unrealized_pnl"].iloc[0]
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
    return out[SNAPSHOT_COLUMNS]
