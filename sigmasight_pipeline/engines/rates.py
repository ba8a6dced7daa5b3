"""Interest-rate sensitivity: rolling rate betas on 10-year yield changes in basis points, plus option rho.

* :func:`yield_change_bp` -- daily ABSOLUTE change of the yield in basis points. (The earlier system called
  relative changes of the yield level "basis points": 4.00% -> 4.10% is +10 bp, not +2.5%.)
* :func:`rolling_rate_betas` -- each symbol's return per +1 bp, ``y = a + b * dy_bp``, over the same
  window convention as the factor betas, through the shared batched OLS of :mod:`.regression`.
* :func:`position_rate_sensitivity` -- dollars per +1 bp for each position: its delta-adjusted exposure x
  its (underlying's) rate beta, plus an option's rho.
* :func:`portfolio_rate_sensitivity` -- first-order scenario P&L: rates +-100/200 bp, market +-5/10/20%.

Nothing is made up where data is missing: no beta -> NaN beta, a flag, and 0 dollars from the beta term.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .factors import MARKET, attach_symbol_stats
from .regression import rolling_ols

__all__ = [
    "yield_change_bp",
    "rolling_rate_betas",
    "position_rate_sensitivity",
    "portfolio_rate_sensitivity",
    "RATE_SHOCKS_BP",
    "MARKET_SHOCKS_PCT",
    "FLAG_MISSING_RHO",
]

#: Rate scenarios, in basis points, and market scenarios, in percent (engines.md).
RATE_SHOCKS_BP = (100, 200)
MARKET_SHOCKS_PCT = (5, 10, 20)

#: Flag of an option for which no rho was supplied (its rho term then counts 0; rate_beta and n_obs still
#: describe its underlying's regression).
FLAG_MISSING_RHO = "missing_rho"

RATE_BETA_COLUMNS = ["date", "symbol", "rate_beta", "t_stat", "r_squared", "n_obs", "flag"]
POSITION_RATE_COLUMNS = [
    "date", "position_id", "rate_beta", "t_stat", "r_squared", "n_obs", "flag", "dollar_per_bp",
]
PORTFOLIO_RATE_COLUMNS = ["date", "dollar_per_bp"] + [
    f"pnl_rates_{d}_{s}bp" for s in RATE_SHOCKS_BP for d in ("up", "down")
] + [f"pnl_market_{d}_{s}" for s in MARKET_SHOCKS_PCT for d in ("up", "down")]


def yield_change_bp(yield_levels_percent: pd.Series) -> pd.Series:
    """Daily absolute yield change in basis points from yield LEVELS quoted in percent (^TNX: 4.21).

    ``change_bp = (y_t - y_{t-1}) [decimal] x 10,000 = (level_t - level_{t-1}) [percent] x 100``.
    4.00 -> 4.10 is +10 bp. Relative changes of the level (4.10 / 4.00 - 1 = 2.5%) are never used. A
    missing level gives NaN for that day and the next (no filling).
    """
    levels = pd.Series(yield_levels_percent, dtype=np.float64)
    out = levels.diff() * 100.0
    out.name = "yield_change_bp"
    return out


def rolling_rate_betas(
    asset_returns: pd.DataFrame,
    yield_levels_percent: pd.Series,
    as_of_dates: Iterable | pd.DatetimeIndex,
    window: int = 150,
    min_obs: int = 60,
) -> pd.DataFrame:
    """Rolling rate beta of every symbol: the return per +1 bp move of the 10-year yield.

    OLS ``r = a + rate_beta * dy_bp`` over the ``window`` sessions ending on each as-of date (never after),
    on rows where both the return and the yield change exist. The yield change is taken over consecutive
    sessions of the union of both indexes (a session without a yield level leaves that day's and the next
    day's change missing rather than spanning two days).

    Columns ``date, symbol, rate_beta, t_stat, r_squared, n_obs, flag`` (flags as for the factor betas:
    ok / limited_history / insufficient_history / singular_design).
    """
    sessions = asset_returns.index.union(pd.Series(yield_levels_percent).index)
    dy = yield_change_bp(pd.Series(yield_levels_percent).reindex(sessions)).to_frame()
    res = rolling_ols(asset_returns, dy, as_of_dates, window=window, min_obs=min_obs)
    d, n = len(res.dates), len(res.series)
    return pd.DataFrame(
        {
            "date": np.repeat(res.dates.values, n),
            "symbol": np.tile(np.asarray(res.series, dtype=object), d),
            "rate_beta": res.params[:, :, 1].reshape(-1),
            "t_stat": res.tvalues[:, :, 1].reshape(-1),
            "r_squared": res.rsquared.reshape(-1),
            "n_obs": res.n_obs.reshape(-1),
            "flag": res.flag.reshape(-1),
        },
        columns=RATE_BETA_COLUMNS,
    )


def position_rate_sensitivity(
    positions: pd.DataFrame,
    symbol_rate_betas: pd.DataFrame,
    exposures: pd.DataFrame,
    option_rho: pd.DataFrame,
) -> pd.DataFrame:
    """Dollars per +1 bp for each (date, position).

    ``dollar_per_bp = delta_adjusted_exposure x rate_beta + position_rho / 100``

    * ``rate_beta`` belongs to the position's market-data symbol (an option takes its UNDERLYING's, scaled
      by its delta-adjusted exposure); no beta -> NaN, its flag, and 0 from this term.
    * ``option_rho``: ``date, position_id, position_rho``, the position's dollar change per +1% (100 bp)
      rate move, already x contracts x multiplier and signed; /100 makes it per bp. Stocks have no rho. An
      option without a rho row gets 0 from this term and the flag ``missing_rho``.

    Inputs as for :func:`.factors.position_factor_exposures`. Columns ``date, position_id, rate_beta,
    t_stat, r_squared, n_obs, flag, dollar_per_bp``.
    """
    out = attach_symbol_stats(
        positions, symbol_rate_betas, exposures, ["rate_beta", "t_stat", "r_squared", "n_obs", "flag"]
    )
    rho = option_rho[["date", "position_id", "position_rho"]].assign(date=pd.to_datetime(option_rho["date"]))
    out = out.merge(rho, on=["date", "position_id"], how="left", validate="one_to_one")
    is_opt = out["position_id"].map(positions.set_index("position_id")["is_option"]).fillna(False).astype(bool)
    no_rho = is_opt & out["position_rho"].isna()
    out.loc[no_rho, "flag"] = FLAG_MISSING_RHO
    out["n_obs"] = out["n_obs"].fillna(0).astype(np.int64)
    beta = out["rate_beta"].to_numpy(dtype=np.float64)
    exp = out["delta_adjusted_exposure"].to_numpy(dtype=np.float64)
    rho_bp = out["position_rho"].fillna(0.0).to_numpy(dtype=np.float64) / 100.0
    out["dollar_per_bp"] = np.where(np.isfinite(beta), exp * np.nan_to_num(beta), 0.0) + rho_bp
    out = out.sort_values(["date", "position_id"], kind="stable").reset_index(drop=True)
    return out[POSITION_RATE_COLUMNS]


def portfolio_rate_sensitivity(position_rates: pd.DataFrame, market_dollar_exposure: pd.DataFrame) -> pd.DataFrame:
    """Portfolio dollars per bp and linear scenario P&L per date.

    ``position_rates``: rows of :func:`position_rate_sensitivity`. ``market_dollar_exposure``: ``date,
    dollar_exposure``, the portfolio's Market-factor dollar exposure (from
    :func:`.factors.portfolio_factor_exposures`; rows with other ``factor_name`` values are ignored if that
    column is present).

    These are FIRST-ORDER (linear) estimates: ``pnl_rates_up_100bp = 100 x dollar_per_bp``,
    ``pnl_market_down_10 = -0.10 x market dollar exposure``, and so on. They ignore convexity (option
    gamma, bond convexity) and cross-effects, which matter most for the large moves; the stress engine's
    full revaluation is the reference for those. A date without a market exposure gets NaN market P&L.

    Columns ``date, dollar_per_bp, pnl_rates_up_100bp, pnl_rates_down_100bp, pnl_rates_up_200bp,
    pnl_rates_down_200bp, pnl_market_up_5, pnl_market_down_5, pnl_market_up_10, pnl_market_down_10,
    pnl_market_up_20, pnl_market_down_20``.
    """
    pr = position_rates.assign(date=pd.to_datetime(position_rates["date"]))
    out = pr.groupby("date", sort=True)["dollar_per_bp"].sum().reset_index()
    mkt = market_dollar_exposure
    if "factor_name" in mkt.columns:
        mkt = mkt[mkt["factor_name"] == MARKET]
    mkt = mkt[["date", "dollar_exposure"]].assign(date=pd.to_datetime(mkt["date"]))
    if mkt["date"].duplicated().any():
        raise ValueError("market_dollar_exposure has more than one row per date")
    out = out.merge(mkt, on="date", how="left", validate="one_to_one")
    for bp in RATE_SHOCKS_BP:
        out[f"pnl_rates_up_{bp}bp"] = bp * out["dollar_per_bp"]
        out[f"pnl_rates_down_{bp}bp"] = -bp * out["dollar_per_bp"]
    for pct in MARKET_SHOCKS_PCT:
        out[f"pnl_market_up_{pct}"] = pct / 100.0 * out["dollar_exposure"]
        out[f"pnl_market_down_{pct}"] = -pct / 100.0 * out["dollar_exposure"]
    return out[PORTFOLIO_RATE_COLUMNS]
