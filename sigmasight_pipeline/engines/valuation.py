"""Position valuation and portfolio exposures (pure, vectorised over positions x dates).

Conventions:

- ``market_value = quantity x price x multiplier`` (signed: shorts and written options are negative).
- ``is_long`` is the sign of the quantity; long/short exposure split by it (a short put is a short
  position: negative market value, even though its delta is positive; the delta view is
  ``delta_adjusted_long`` / ``delta_adjusted_short``).
- A missing price is never 0: the row has ``price_source`` "missing" and NaN market value, unrealised
  P&L and exposures; aggregates sum over priced positions only and report ``missing_price_count``.
- Options on a volatility index (``options.VOLATILITY_INDEXES``: ^VIX) are volatility exposure, not
  equity exposure: a position keeps its own delta-adjusted exposure, but the aggregates put it in
  ``volatility_delta_exposure`` and leave it out of ``delta_adjusted_exposure`` / ``_long`` / ``_short``
  (SPX, NDX and RUT options stay equity exposure). Their market values count in every market-value figure
  (long/short/gross/net, options exposure) like any other option's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .options import _as_bool, _grid, is_volatility_index_option

__all__ = [
    "VALUATION_COLUMNS",
    "EXPOSURE_COLUMNS",
    "value_positions",
    "portfolio_exposures",
    "group_exposures",
    "parse_tags",
]

VALUATION_COLUMNS = [
    "date",
    "position_id",
    "price",
    "price_source",
    "underlying_price",
    "market_value",
    "cost_basis",
    "unrealized_pnl",
    "notional",
    "delta_adjusted_exposure",
    "is_long",
]

EXPOSURE_COLUMNS = [
    "date",
    "long_exposure",
    "short_exposure",
    "gross_exposure",
    "net_exposure",
    "notional",
    "delta_adjusted_exposure",
    "delta_adjusted_long",
    "delta_adjusted_short",
    "volatility_delta_exposure",
    "options_exposure",
    "stock_exposure",
    "long_count",
    "short_count",
    "option_count",
    "stock_count",
    "position_count",
    "missing_price_count",
    "total_cost_basis",
    "total_unrealized_pnl",
]

UNTAGGED = "(untagged)"
_COUNTS = ("long_count", "short_count", "option_count", "stock_count", "position_count", "missing_price_count")


def _position_grid(frame: pd.DataFrame | None, column: str, dates: pd.DatetimeIndex, pos_ids) -> np.ndarray:
    """(dates x positions) array of one column of a long (date, position_id, ...) frame."""
    if frame is None or len(frame) == 0 or column not in frame:
        return np.full((len(dates), len(pos_ids)), np.nan)
    wide = frame.pivot_table(index="date", columns="position_id", values=column, aggfunc="last", dropna=False)
    wide.index = pd.DatetimeIndex(wide.index)
    return wide.reindex(index=dates, columns=list(pos_ids)).to_numpy(dtype=float)


def value_positions(
    positions: pd.DataFrame,
    prices: pd.DataFrame,
    dates,
    option_model_prices: pd.DataFrame | None,
) -> pd.DataFrame:
    """Value every position held on each date (``entry_date <= date``).

    ``option_model_prices`` is the ``position_greeks`` output (uses ``date, position_id, model_price,
    delta, underlying_price``).

    - Stocks: the close of ``symbol`` ("market"), else "missing".
    - Options: the option's own close when ``prices`` has a non-missing value for the option symbol
      ("market"), else the Black-Scholes model price ("model"; 0 for an expired option), else "missing".
    - ``cost_basis = quantity x entry_price x multiplier``; ``unrealized_pnl = market_value - cost_basis``.
    - ``notional`` = |quantity| x multiplier x underlying price for options, |market_value| for stocks.
    - ``delta_adjusted_exposure`` = market_value for stocks; delta x quantity x multiplier x underlying
      price for options (delta from the model).

    Returns exactly ``VALUATION_COLUMNS``, sorted by date then position order.
    """
    dates = pd.DatetimeIndex(dates)
    n, m = len(positions), len(dates)
    if n == 0 or m == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in VALUATION_COLUMNS})

    pos_ids = positions["position_id"].to_numpy()
    qty = positions["quantity"].to_numpy(dtype=float)
    mult = positions["multiplier"].to_numpy(dtype=float)
    entry_price = positions["entry_price"].to_numpy(dtype=float)
    is_option = _as_bool(positions["is_option"])[None, :] & np.ones((m, 1), dtype=bool)
    entry = pd.to_datetime(positions["entry_date"]).dt.normalize().to_numpy(dtype="datetime64[ns]")
    held = entry[None, :] <= dates.to_numpy(dtype="datetime64[ns]")[:, None]

    own = _grid(prices, dates, positions["symbol"].astype(object).to_numpy())
    und = _grid(prices, dates, positions["underlying_symbol"].astype(object).to_numpy())
    model = _position_grid(option_model_prices, "model_price", dates, pos_ids)
    delta = _position_grid(option_model_prices, "delta", dates, pos_ids)
    model_und = _position_grid(option_model_prices, "underlying_price", dates, pos_ids)
    und = np.where(np.isnan(und), model_und, und)

    has_market = ~np.isnan(own)
    has_model = is_option & ~np.isnan(model)
    price = np.where(has_market, own, np.where(has_model, model, np.nan))
    source = np.where(has_market, "market", np.where(has_model, "model", "missing"))
    und = np.where(is_option, und, price)

    scale = (qty * mult)[None, :]
    market_value = price * scale
    cost_basis = np.broadcast_to(entry_price * qty * mult, (m, n))
    notional = np.where(is_option, np.abs(scale) * und, np.abs(market_value))
    dae = np.where(is_option, delta * scale * und, market_value)
    is_long = np.broadcast_to(qty > 0, (m, n))

    di, pj = np.nonzero(held)
    out = pd.DataFrame(
        {
            "date": dates[di],
            "position_id": pos_ids[pj],
            "price": price[di, pj],
            "price_source": source[di, pj],
            "underlying_price": und[di, pj],
            "market_value": market_value[di, pj],
            "cost_basis": cost_basis[di, pj],
            "unrealized_pnl": (market_value - cost_basis)[di, pj],
            "notional": notional[di, pj],
            "delta_adjusted_exposure": dae[di, pj],
            "is_long": is_long[di, pj],
        },
        columns=VALUATION_COLUMNS,
    )
    return out.reset_index(drop=True)


def _aggregate(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sum exposure contributions by ``keys``; ``frame`` = valuations joined with ``is_option`` and
    ``is_volatility`` (an option on a volatility index: its delta-adjusted exposure goes to
    ``volatility_delta_exposure`` instead of the equity figures)."""
    mv = frame["market_value"]
    priced = mv.notna()
    mv0 = mv.fillna(0.0)
    is_long = frame["is_long"].astype(bool)
    is_option = frame["is_option"].astype(bool)
    is_volatility = frame["is_volatility"].astype(bool)
    dae0 = frame["delta_adjusted_exposure"].fillna(0.0)
    equity_dae = dae0.where(~is_volatility, 0.0)
    parts = pd.DataFrame(
        {
            **{k: frame[k] for k in keys},
            "long_exposure": mv0.where(is_long, 0.0),
            "short_exposure": mv0.where(~is_long, 0.0),
            "notional": frame["notional"].fillna(0.0),
            "delta_adjusted_exposure": equity_dae,
            "delta_adjusted_long": equity_dae.clip(lower=0.0),
            "delta_adjusted_short": equity_dae.clip(upper=0.0),
            "volatility_delta_exposure": dae0.where(is_volatility, 0.0),
            "options_exposure": mv0.where(is_option, 0.0),
            "stock_exposure": mv0.where(~is_option, 0.0),
            "long_count": is_long.astype(int),
            "short_count": (~is_long).astype(int),
            "option_count": is_option.astype(int),
            "stock_count": (~is_option).astype(int),
            "position_count": 1,
            "missing_price_count": (~priced).astype(int),
            "total_cost_basis": frame["cost_basis"].fillna(0.0),
            "total_unrealized_pnl": frame["unrealized_pnl"].fillna(0.0),
        }
    )
    agg = parts.groupby(keys, sort=True).sum().reset_index()
    agg["gross_exposure"] = agg["long_exposure"] + agg["short_exposure"].abs()
    agg["net_exposure"] = agg["long_exposure"] + agg["short_exposure"]
    return agg


def _with_option_flag(valuations: pd.DataFrame, positions: pd.DataFrame) -> pd.DataFrame:
    flags = positions[["position_id"]].assign(
        is_option=_as_bool(positions["is_option"]), is_volatility=is_volatility_index_option(positions)
    )
    return valuations.merge(flags, on="position_id", how="left", validate="many_to_one")


def portfolio_exposures(valuations: pd.DataFrame, positions: pd.DataFrame, flat_dates=None) -> pd.DataFrame:
    """Portfolio exposures per date from ``value_positions`` output.

    - ``long_exposure`` / ``short_exposure`` (a negative number): market values of long / short positions;
      ``gross = long + |short|``, ``net = long + short``.
    - ``delta_adjusted_exposure`` / ``_long`` / ``_short``: the equity delta-adjusted exposure, its sums
      of positive / negative position exposures (split by the sign of the exposure, so a short put adds to
      the long side); ``_long + _short == delta_adjusted_exposure``.
    - ``volatility_delta_exposure``: the delta-adjusted exposure of options on a volatility index (VIX),
      kept out of the equity figures; ``delta_adjusted_exposure + volatility_delta_exposure`` is the sum
      of every priced position's delta-adjusted exposure.
    - ``options_exposure`` / ``stock_exposure``: signed market values of options / stocks (they add up to
      ``net_exposure``).
    - Counts add up: ``long_count + short_count == option_count + stock_count == position_count``
      (positions held that date, priced or not). Money figures sum priced positions only;
      ``missing_price_count`` says how many were left out. ``total_cost_basis`` covers every held
      position; ``total_unrealized_pnl`` the priced ones.

    ``flat_dates``: the dates of a flat book (every position closed): one row of zeros each.

    Returns exactly ``EXPOSURE_COLUMNS``, one row per date.
    """
    if flat_dates is not None:  # a book that holds nothing: every figure and count is 0
        zeros = pd.DataFrame(0.0, index=range(len(flat_dates)), columns=EXPOSURE_COLUMNS[1:])
        return zeros.assign(date=pd.DatetimeIndex(flat_dates))[EXPOSURE_COLUMNS].astype({c: int for c in _COUNTS})
    if len(valuations) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in EXPOSURE_COLUMNS})
    agg = _aggregate(_with_option_flag(valuations, positions), ["date"])
    return agg[EXPOSURE_COLUMNS]


def parse_tags(tags) -> list[str]:
    """A tags cell (comma-separated string, list, or missing) -> list of stripped, non-empty tags."""
    if isinstance(tags, (list, tuple, set, np.ndarray)):
        items = [str(t) for t in tags]
    elif tags is None or (isinstance(tags, float) and np.isnan(tags)) or tags is pd.NA:
        items = []
    else:
        items = str(tags).split(",")
    cleaned = list(dict.fromkeys(t.strip() for t in items if t and t.strip()))
    return cleaned or [UNTAGGED]


def group_exposures(valuations: pd.DataFrame, positions: pd.DataFrame, by: str = "tag") -> pd.DataFrame:
    """Exposures per date and group: ``by="tag"`` (positions' ``tags`` column) or ``"underlying"``.

    A position with several tags counts fully in EACH of its tag groups, so tag groups can add up to more
    than the portfolio; untagged positions form the group "(untagged)". By underlying, an option joins its
    underlying's group (AAPL stock and AAPL options together); those groups partition the book.

    Columns: ``date, group`` followed by the ``EXPOSURE_COLUMNS`` figures.
    """
    if by == "tag":
        tag_col = positions["tags"] if "tags" in positions else pd.Series([None] * len(positions), index=positions.index)
        groups = pd.DataFrame({"position_id": positions["position_id"], "group": tag_col.map(parse_tags)})
        groups = groups.explode("group")
    elif by == "underlying":
        groups = pd.DataFrame(
            {"position_id": positions["position_id"], "group": positions["underlying_symbol"].astype(object)}
        )
    else:
        raise ValueError(f"by must be 'tag' or 'underlying', not {by!r}")
    columns = ["date", "group", *EXPOSURE_COLUMNS[1:]]
    if len(valuations) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    frame = _with_option_flag(valuations, positions).merge(groups, on="position_id", how="left")
    return _aggregate(frame, ["date", "group"])[columns]
