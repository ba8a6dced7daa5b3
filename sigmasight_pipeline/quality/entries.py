"""Entry sanity (books.md, "Market data that a real book needs", last bullet): a booked price that cannot be right.

Three rules, judged against the source's close of the row's underlying on its entry (or trade) date:

* an option bought or sold at a price below its intrinsic value that day, intrinsic = max(S - K, 0) for a call
  and max(K - S, 0) for a put (kind ``option_below_intrinsic``): nobody sells a call for less than it is
  worth exercised; it is most often a price per contract typed per share, or the wrong strike or date;
* a call at or above its intrinsic value but below its no-arbitrage lower bound
  S e^(-qT) - K e^(-rT) (kind ``option_below_lower_bound``; r from the source's 13-week bill yield ^IRX that
  day, q the underlying's dividend yield, T to expiry in years): with rates at 5% a long-dated call is worth
  far more than its intrinsic value, and a price under the bound is as impossible as one under intrinsic
  (a put's bound is its intrinsic value: an American put can be exercised at once). Judged only when the
  row has its expiration and the source has ^IRX that day;
* a stock (or ETF) entered more than 50% away from that day's close, |price / close - 1| > 0.5 (kind
  ``stock_far_from_close``): most often a pre-split price or a typo.

These are warnings: the row is imported as given, and the warning is named in the onboarding output and in
the report's data-quality section.

Scales. The source's closes are split-adjusted (every close on today's share scale) while a file's prices and
strikes are as of their own date. The file's figures are therefore put on the adjusted scale with the source's
splits (``engines.splits.split_factors``: price / factor, strike / factor, factor = product of the ratios of
the splits with ex-date after the row's date) before they are compared; NVDA booked at $700 on 2024-01-05,
before its 10-for-1 split of 2024-06-10, is $70 on the scale of an adjusted close near $70, not a warning. The
figures a warning shows (``entry_price``, ``reference_price`` and those in its message) are on the file's own
scale again (adjusted figure x factor), so they read like the file.

The reference close is the underlying's close on the entry date, or when that date is not a session (a
weekend, a holiday) the last close before it, at most :data:`MAX_CLOSE_AGE_DAYS` calendar days earlier. A row
without such a close (no history at the source) gets no verdict here: an unpriced symbol is reported by the
onboarding's own "no history" listing, not guessed at.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sigmasight_pipeline.engines.splits import split_factors

__all__ = [
    "OPTION_BELOW_INTRINSIC",
    "OPTION_BELOW_BOUND",
    "RATE_SYMBOL",
    "STOCK_FAR_FROM_CLOSE",
    "STOCK_DISTANCE_LIMIT",
    "MAX_CLOSE_AGE_DAYS",
    "ROW_COLUMNS",
    "WARNING_COLUMNS",
    "entry_sanity_warnings",
]

OPTION_BELOW_INTRINSIC = "option_below_intrinsic"
OPTION_BELOW_BOUND = "option_below_lower_bound"
#: The short-rate series of the bound (13-week T-bill yield, percent).
RATE_SYMBOL = "^IRX"
STOCK_FAR_FROM_CLOSE = "stock_far_from_close"
#: A stock entered more than this fraction away from the day's close is a warning.
STOCK_DISTANCE_LIMIT = 0.50
#: The oldest close (in calendar days before the entry date) that still counts as "that day's" close.
MAX_CLOSE_AGE_DAYS = 7
#: Below the intrinsic value by more than this many dollars per share (on the file's scale): cents are not noise.
_TOLERANCE = 1e-9

ROW_COLUMNS = ["source_row", "ticker", "underlying_symbol", "quantity", "price", "date", "option_type", "strike"]
WARNING_COLUMNS = ["source_row", "symbol", "entry_date", "kind", "entry_price", "reference_price", "message"]


def _long_closes(closes: pd.DataFrame) -> pd.DataFrame:
    """``date, symbol, close`` rows from a wide frame (index dates, one column per symbol: ``source.fetch``'s
    shape) or from long rows that already have those columns (the ``market_prices`` table's shape)."""
    if {"date", "symbol", "close"}.issubset(closes.columns):
        long = closes[["date", "symbol", "close"]]
    else:
        wide = closes.copy()
        wide.index = pd.DatetimeIndex(wide.index, name="date")
        wide.columns = pd.Index([str(c) for c in wide.columns], name="symbol")
        long = wide.stack().rename("close").reset_index()
    long = long.assign(date=pd.to_datetime(long["date"]).dt.normalize().astype("datetime64[ns]"),
                       symbol=long["symbol"].astype(str).str.upper(),
                       close=pd.to_numeric(long["close"], errors="coerce"))
    return long[long["close"].notna() & (long["close"] > 0)]


def _money(values: np.ndarray) -> np.ndarray:
    """Figures as text with 2 decimals (vectorised)."""
    return np.char.mod("%.2f", np.asarray(values, dtype=float)).astype(object)


def entry_sanity_warnings(rows: pd.DataFrame, closes: pd.DataFrame, splits: pd.DataFrame | None) -> pd.DataFrame:
    """The entry sanity warnings of a file's rows (module docstring: rules, scales, reference close).

    ``rows``: one per file row, columns :data:`ROW_COLUMNS`:

    * ``source_row`` the file's line (header = 1), ``ticker`` the symbol as booked (stock or OCC option);
    * ``underlying_symbol`` the MARKET-DATA symbol of what to compare with (the stock itself; an option's
      underlying, mapped as prices are, e.g. "^VIX" for a VIX option); blank means ``ticker``;
    * ``quantity`` signed (+ bought, - sold or written), ``price`` per share (per contract-share for an
      option), ``date`` the entry or trade date, as in the file (unadjusted);
    * ``option_type`` "C" / "P" for an option (blank for a stock), ``strike`` the option's strike as in the
      file (unadjusted); optional ``expiration`` (the option's) and ``dividend_yield`` (the underlying's, a
      decimal; 0 when absent) for the lower bound of a call.

    ``closes``: the source's split-adjusted closes around those dates, wide (index dates, a column per symbol,
    as ``source.fetch`` returns them) or long (``date, symbol, close``). ``splits``: the source's splits of
    those symbols (``symbol, ex_date, ratio``; ``source.fetch_splits``); None or empty: none.

    Returns one row per warning, columns :data:`WARNING_COLUMNS`, by ``source_row``: ``symbol`` the ticker,
    ``entry_date``, ``kind`` (:data:`OPTION_BELOW_INTRINSIC` or :data:`STOCK_FAR_FROM_CLOSE`), ``entry_price``
    the file's price, ``reference_price`` the intrinsic value (option) or the close (stock) on the file's
    scale, and ``message`` naming the row, symbol, date, both figures and what they were compared with.
    Vectorised over rows (one ``merge_asof``; :func:`split_factors` loops over the few splits, not the rows).
    """
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"entry sanity rows lack columns {missing}")
    if len(rows) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in WARNING_COLUMNS})
    frame = pd.DataFrame({
        "order": np.arange(len(rows)),
        "source_row": rows["source_row"].to_numpy(),
        "ticker": rows["ticker"].astype(str).to_numpy(dtype=object),
        "quantity": pd.to_numeric(rows["quantity"]).to_numpy(dtype=float),
        "price": pd.to_numeric(rows["price"]).to_numpy(dtype=float),
        "date": pd.to_datetime(rows["date"]).dt.normalize().to_numpy(dtype="datetime64[ns]"),
        "option_type": rows["option_type"].fillna("").astype(str).str.upper().to_numpy(dtype=object),
        "strike": pd.to_numeric(rows["strike"]).to_numpy(dtype=float),
    })
    underlying = rows["underlying_symbol"].fillna("").astype(str).str.strip()
    underlying = underlying.where(underlying != "", rows["ticker"].astype(str))
    frame["symbol"] = underlying.str.strip().str.upper().to_numpy(dtype=object)

    frame["expiration"] = (pd.to_datetime(rows["expiration"]).dt.normalize().to_numpy(dtype="datetime64[ns]")
                           if "expiration" in rows else np.datetime64("NaT"))
    frame["q"] = pd.to_numeric(rows["dividend_yield"]).fillna(0.0).to_numpy(dtype=float) if "dividend_yield" in rows else 0.0

    ref = _long_closes(closes).sort_values("date")
    matched = pd.merge_asof(
        frame.sort_values("date"), ref, on="date", by="symbol", direction="backward",
        tolerance=pd.Timedelta(days=MAX_CLOSE_AGE_DAYS),
    )
    rates = ref[ref["symbol"] == RATE_SYMBOL][["date", "close"]].rename(columns={"close": "rate_pct"})
    matched = pd.merge_asof(matched, rates, on="date", direction="backward",
                            tolerance=pd.Timedelta(days=MAX_CLOSE_AGE_DAYS))
    matched = matched.sort_values("order").reset_index(drop=True)

    factor = split_factors(splits, matched["symbol"], matched["date"])  # file scale -> adjusted scale
    close = matched["close"].to_numpy(dtype=float)  # adjusted
    price = matched["price"].to_numpy(dtype=float)  # file scale
    strike = matched["strike"].to_numpy(dtype=float) / factor  # adjusted
    is_call = (matched["option_type"] == "C").to_numpy()
    is_put = (matched["option_type"] == "P").to_numpy()
    is_option = is_call | is_put
    priced = ~np.isnan(close)

    intrinsic = np.where(is_call, np.maximum(close - strike, 0.0), np.maximum(strike - close, 0.0)) * factor  # file scale
    years = (matched["expiration"] - matched["date"]).dt.days.to_numpy(dtype=float) / 365.0
    r = matched["rate_pct"].to_numpy(dtype=float) / 100.0
    q = matched["q"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bound = (close * np.exp(-q * years) - strike * np.exp(-r * years)) * factor  # file scale; NaN unknown
        below = is_option & priced & (price < intrinsic - _TOLERANCE)
        under_bound = is_call & priced & ~below & (years > 0) & (price < bound - _TOLERANCE)
        distance = (price / factor) / close - 1.0
        far = ~is_option & priced & (np.abs(distance) > STOCK_DISTANCE_LIMIT)
    close_file = close * factor
    hit = below | under_bound | far
    if not hit.any():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in WARNING_COLUMNS})

    m = matched[hit].reset_index(drop=True)
    below, under_bound, factor = below[hit], under_bound[hit], factor[hit]
    ticker = m["ticker"].to_numpy(dtype=object)
    und = m["symbol"].to_numpy(dtype=object)
    row_txt = m["source_row"].astype(str).to_numpy(dtype=object)
    day = pd.DatetimeIndex(m["date"]).strftime("%Y-%m-%d").to_numpy(dtype=object)
    p_txt = _money(price[hit])
    c_txt = _money(close_file[hit])
    adjusted_note = np.where(
        factor != 1.0,
        " (split-adjusted close " + _money(close[hit]) + " x " + np.char.mod("%g", factor).astype(object) + " on the file's scale)",
        "",
    ).astype(object)
    side = np.where(m["quantity"].to_numpy(dtype=float) < 0, "sold", "bought").astype(object)
    option_msg = (
        "row " + row_txt + " " + ticker + " on " + day + ": " + side + " at " + p_txt + ", below its intrinsic value "
        + _money(intrinsic[hit]) + " (" + und + " close " + c_txt + adjusted_note + ", strike "
        + _money(m["strike"].to_numpy(dtype=float)) + "); imported as given"
    )
    bound_msg = (
        "row " + row_txt + " " + ticker + " on " + day + ": " + side + " at " + p_txt + ", below the lowest price "
        + "of a call without arbitrage " + _money(bound[hit]) + " (" + und + " close " + c_txt + adjusted_note
        + " x e^(-qT) - strike " + _money(m["strike"].to_numpy(dtype=float)) + " x e^(-rT), r "
        + np.char.mod("%.2f", r[hit] * 100).astype(object) + "%, q " + np.char.mod("%.2f", q[hit] * 100).astype(object)
        + "%, T " + np.char.mod("%.2f", years[hit]).astype(object) + " y; intrinsic " + _money(intrinsic[hit])
        + "); imported as given"
    )
    pct = np.char.mod("%.1f", np.abs(distance[hit]) * 100).astype(object)
    direction = np.where(distance[hit] > 0, "above", "below").astype(object)
    stock_msg = (
        "row " + row_txt + " " + ticker + " on " + day + ": entered at " + p_txt + ", " + pct + "% " + direction
        + " that day's close " + c_txt + adjusted_note + "; imported as given"
    )
    return pd.DataFrame({
        "source_row": m["source_row"].to_numpy(),
        "symbol": ticker,
        "entry_date": pd.DatetimeIndex(m["date"]),
        "kind": np.select([below, under_bound], [OPTION_BELOW_INTRINSIC, OPTION_BELOW_BOUND], STOCK_FAR_FROM_CLOSE).astype(object),
        "entry_price": price[hit],
        "reference_price": np.select([below, under_bound], [intrinsic[hit], bound[hit]], close_file[hit]),
        "message": np.select([below, under_bound], [option_msg, bound_msg], stock_msg).astype(object),
    }, columns=WARNING_COLUMNS)
