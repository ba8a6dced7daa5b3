"""Risk measures (spec/risk_measures.md): historical-simulation and parametric (factor-model) VaR and expected
shortfall, their Euler contributions, ex-ante volatility and tracking error, and the 99% VaR backtest.

Pure and vectorised: one call computes every date of a batch, every scenario and every position at once (the
only Python loops run over a handful of confidence levels and over blocks of dates that bound memory).

Sign convention: P&L is positive for a gain; VaR and ES are positive losses. A book whose tail scenarios are
gains has a NEGATIVE VaR (flagged ``negative_var``, never clipped).

Historical simulation with full revaluation (:func:`scenario_pnl`)
    The risk window of a date d is the ``window`` (250) rows of ``returns`` ending on d: consecutive XNYS
    sessions, so the caller indexes ``returns`` by the exchange calendar (a session without data is a row of
    NaN). Scenario s applies session s's simple returns to the book held on d:

    * a stock or ETF gains ``market_value x r``;
    * an option is repriced with :func:`.options.bs_price` (Black-Scholes-Merton) at the underlying price
      ``S x (1 + r_underlying)``, time to expiry minus one calendar day (floored at 0: an option expiring
      on d is worth its intrinsic value at the scenario price), and the same volatility, short rate and
      dividend yield as its Greeks (``position_greeks``: implied_vol, dividend_yield, days_to_expiry, the
      ^IRX of d). Its P&L is ``(V(S', T - 1 day) - V(S, T)) x quantity x multiplier``, with V(S, T) the model
      value at d's inputs (so a market price away from the model is not scenario P&L). No delta
      approximation anywhere.

    A session is a scenario when the market proxy has a return on it; N is the number of such sessions in the
    window (``scenarios``). A symbol without a return on a scenario (listed later, a gap) gets
    ``Market beta x market return`` from its stored Market beta (``filled_returns`` counts the filled
    (symbol, session) values); a symbol that needs a fill and has no beta is left out of that date, and named
    (``left_out=...``). A held position without a price (a stock without a market value, an option without
    model inputs) is left out and counted (``unpriced=n``). N in [100, 250): computed, flagged
    ``limited_history``; N < 100: not computed (values NaN), flagged ``insufficient_history``.

VaR and ES (:func:`tail_risk`), for N scenario P&Ls sorted ascending p(1) <= ... <= p(N) and level a:
    ``k = (1 - a) N`` (rounded to 1e-9, so that a level such as 0.95, which binary floating point stores as
    0.94999..., gives the integer k = 5 on 100 scenarios), ``j = floor(k)``;
    ``VaR_a = -p(j + 1)`` (no interpolation), ``ES_a = -(p(1) + ... + p(j) + (k - j) p(j + 1)) / k``
    (Rockafellar-Uryasev). These are ``skfolio.measures.value_at_risk`` / ``cvar`` (skfolio 1.12) applied to
    the P&L. The ES tail weights ``w`` (1/k on the j worst, (k - j)/k on the next) also give the Euler
    contribution of position i: ``-sum_s w_s pnl_is``; the contributions add up to ES_a.

Parametric, delta-normal factor model (:func:`parametric_risk`), mean zero:
    ``sigma^2 = x' F x + sum_u (E_u s_u)^2`` with e_i the position's delta-adjusted exposure, b_i its symbol's
    betas (an option its underlying's), x = sum_i e_i b_i the book's dollar factor exposures, F the factor
    covariance of the 150-session beta window (the stored ``factor_correlations`` triangle, rebuilt by
    :func:`.factors.covariance_stack` as the stress engine does), s_u the daily residual standard deviation of
    symbol u from the same regression and E_u = sum of e_i over the positions on u. The specific return is the
    symbol's, so a stock and its options share it: a call written against the stock nets its specific risk
    (position covariance ``C_ij = b_i' F b_j + s_u^2`` when i and j are on the same symbol u, else
    ``b_i' F b_j``). With one position per symbol this is the spec's ``sum_i (e_i s_i)^2``.
    ``VaR_a = z_a sigma``, ``ES_a = sigma phi(z_a) / (1 - a)``.
    x is computed here from the stored position betas and exposures (the stored portfolio figure is the same
    sum, rounded to cents), so that the Euler parts add up exactly. A position without betas is left out of
    the model and counted (``positions_without_beta=n``); one with betas and no residual standard deviation
    (a row stored before 0007) counts no specific risk (``missing_residual_std=n``).

    Euler allocation of sigma: position i gets ``e_i (C e)_i / sigma`` (``(C e)_i = b_i' F x + s_u^2 E_u`` for
    i on symbol u; the marginal contribution d sigma / d e_i is ``(C e)_i / sigma``); factor f gets
    ``x_f (F x)_f / sigma`` and specific risk ``sum_u (E_u s_u)^2 / sigma``. Both sets add up to sigma.

    Ex-ante volatility = sigma x sqrt(252), in dollars and as a fraction of equity (the book's net liquidation
    value; NaN when equity <= 0, flagged ``equity_nonpositive``). Ex-ante tracking error against the market
    proxy: the same formula on the active exposures (x with equity subtracted on Market, styles unchanged),
    specific risk included. ``factor_share`` / ``specific_share`` are x'Fx / sigma^2 and sum (E s)^2 / sigma^2.

Horizons: 1 day; the 10-day figures are the 1-day figures x sqrt(10), flagged ``scaled_sqrt10``. Annualised
figures carry ``horizon_days`` 252. Measures without a confidence level carry ``level`` 0.

Backtest (:func:`var_backtest`): on each session with a previous-session 99% historical VaR, an exception is
a realised daily P&L below minus that VaR. Over the last 250 such sessions: the exception count, Kupiec's
proportion-of-failures likelihood ratio and its chi-square(1) p-value (:func:`kupiec_pof`) and the Basel
traffic light (:func:`basel_zone`: green 0-4, yellow 5-9, red 10 or more; the thresholds of 250 observations,
applied to the count of a shorter window as it is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import chdtrc, ndtri, xlogy

from .factors import MARKET, covariance_stack
from .options import DAYS_PER_YEAR, _as_bool, _rate_decimal, bs_price
from .regression import trailing_window_view, window_positions

__all__ = [
    "RISK_WINDOW",
    "MIN_SCENARIOS",
    "VAR_LEVELS",
    "ES_LEVELS",
    "BACKTEST_LEVEL",
    "SCALED_HORIZON",
    "TRADING_DAYS",
    "NO_LEVEL",
    "HISTORICAL",
    "PARAMETRIC",
    "SPECIFIC",
    "MEASURE_COLUMNS",
    "POSITION_CONTRIBUTION_COLUMNS",
    "FACTOR_CONTRIBUTION_COLUMNS",
    "BACKTEST_COLUMNS",
    "BookGrids",
    "Scenarios",
    "HistoricalRisk",
    "ParametricRisk",
    "RiskMeasures",
    "tail_count",
    "tail_risk",
    "value_at_risk",
    "expected_shortfall",
    "normal_var_es",
    "book_grids",
    "scenario_pnl",
    "historical_risk",
    "parametric_risk",
    "risk_measures_range",
    "kupiec_pof",
    "basel_zone",
    "var_backtest",
]

RISK_WINDOW = 250  # sessions ending on the partition date
MIN_SCENARIOS = 100  # fewer: not computed
VAR_LEVELS = (0.95, 0.99)
ES_LEVELS = (0.95, 0.975, 0.99)
BACKTEST_LEVEL = 0.99
SCALED_HORIZON = 10  # days: the 1-day figures x sqrt(10)
TRADING_DAYS = 252
NO_LEVEL = 0.0  # ``level`` of a measure without a confidence level (volatility, shares, counts)
HISTORICAL, PARAMETRIC = "historical", "parametric"
SPECIFIC = "Specific"  # the specific-risk row of the factor contributions

#: Rounding of k = (1 - a) N: a level that binary floating point cannot hold exactly still gives the k it means.
_K_DECIMALS = 9
#: Upper bound on the elements of one (dates x scenarios x positions) block of scenario P&L.
_BLOCK_ELEMENTS = 4_000_000
#: Basel traffic light on 250 observations: green up to 4 exceptions, yellow up to 9, red from 10.
_GREEN_MAX, _YELLOW_MAX = 4, 9

MEASURE_COLUMNS = ["date", "method", "measure", "level", "horizon_days", "value", "flag"]
POSITION_CONTRIBUTION_COLUMNS = ["date", "position_id", "method", "measure", "level", "contribution", "marginal", "share"]
FACTOR_CONTRIBUTION_COLUMNS = ["date", "factor_name", "dollar_exposure", "contribution", "marginal", "share"]
BACKTEST_COLUMNS = [
    "date", "var_date", "var_99", "realized_pnl", "exception", "window_sessions", "exceptions",
    "kupiec_lr", "kupiec_p_value", "zone",
]


# --- VaR and ES of P&L vectors --------------------------------------------------------------------------------


def tail_count(level: float, n) -> np.ndarray:
    """k = (1 - level) x n, rounded to 1e-9 (see the module docstring). ``level`` must lie in (0, 1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"a confidence level lies in (0, 1), got {level!r}")
    return np.round((1.0 - level) * np.asarray(n, dtype=float), _K_DECIMALS)


def tail_risk(pnl, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VaR, ES and the ES tail weights of P&L vectors along the last axis (NaN entries are not scenarios).

    Returns ``(var, es, weights)``: ``var`` and ``es`` of shape ``pnl.shape[:-1]`` (NaN where there is no
    scenario), ``weights`` of ``pnl``'s shape, in its order: 1/k on the j worst scenarios, (k - j)/k on the
    (j+1)-th worst, 0 elsewhere, so that ``es == -sum(weights x pnl)``. Ties are ranked in scenario order
    (stable sort): the values do not depend on it, the weights of tied scenarios may.
    """
    return _tail_of_sorted(_sort_scenarios(pnl), level)


def _sort_scenarios(pnl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, sorted P&L, scenario count)`` along the last axis (stable, NaN last): what every level reads."""
    pnl = np.asarray(pnl, dtype=float)
    order = np.argsort(pnl, axis=-1, kind="stable")  # NaN last
    return order, np.take_along_axis(pnl, order, axis=-1), np.isfinite(pnl).sum(axis=-1)


def _tail_of_sorted(sorted_scenarios, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`tail_risk` from :func:`_sort_scenarios` (one sort serves every level)."""
    order, srt, n = sorted_scenarios
    n_s = srt.shape[-1]
    k = tail_count(level, n)
    j = np.floor(k).astype(np.int64)
    ok = n > 0
    at = np.minimum(j, max(n_s - 1, 0))[..., None]
    p_next = np.take_along_axis(srt, at, axis=-1)[..., 0] if n_s else np.zeros(n.shape)
    ranks = np.arange(n_s)
    head = np.where(ranks < j[..., None], srt, 0.0).sum(axis=-1)
    frac = k - j
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(ok, -p_next, np.nan)
        es = np.where(ok, -(head + np.where(frac > 0, frac * p_next, 0.0)) / k, np.nan)
        w_sorted = np.where(ranks < j[..., None], 1.0, np.where(ranks == j[..., None], frac[..., None], 0.0))
        w_sorted = np.where(ok[..., None], w_sorted / k[..., None], 0.0)
    weights = np.zeros_like(w_sorted)
    np.put_along_axis(weights, order, w_sorted, axis=-1)
    return var, es, weights


def value_at_risk(pnl, level: float) -> np.ndarray | float:
    """Historical VaR (a positive loss) of P&L vectors along the last axis: ``-p(j + 1)``, j = floor((1-a)N)."""
    out = tail_risk(pnl, level)[0]
    return float(out) if out.ndim == 0 else out


def expected_shortfall(pnl, level: float) -> np.ndarray | float:
    """Historical ES (Rockafellar-Uryasev) of P&L vectors along the last axis (see :func:`tail_risk`)."""
    out = tail_risk(pnl, level)[1]
    return float(out) if out.ndim == 0 else out


def normal_var_es(sigma, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean-zero normal VaR and ES of a P&L with standard deviation ``sigma``: ``z sigma`` and
    ``sigma phi(z) / (1 - a)`` with ``z = Phi^-1(a)``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"a confidence level lies in (0, 1), got {level!r}")
    z = ndtri(level)
    phi = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    sigma = np.asarray(sigma, dtype=float)
    return z * sigma, sigma * phi / (1.0 - level)


# --- the book as (date x position) grids ------------------------------------------------------------------------


class BookGrids(NamedTuple):
    """A batch's book on each date as arrays: ``(T, n)`` per date and position, ``(n,)`` per position."""

    dates: pd.DatetimeIndex
    position_ids: np.ndarray  # (n,)
    symbols: np.ndarray  # (n,) the market-data symbol whose returns move the position (an option's underlying)
    is_option: np.ndarray  # (n,) bool
    strike: np.ndarray  # (n,)
    is_call: np.ndarray  # (n,) bool
    scale: np.ndarray  # (n,) quantity x multiplier
    held: np.ndarray  # (T, n) a valuation row on that date
    market_value: np.ndarray  # (T, n)
    exposure: np.ndarray  # (T, n) delta-adjusted exposure
    underlying_price: np.ndarray  # (T, n)
    vol: np.ndarray  # (T, n) the sigma of the Greeks
    days: np.ndarray  # (T, n) calendar days to expiry
    dividend_yield: np.ndarray  # (T, n) q (0 where unknown)
    rate: np.ndarray  # (T,) short rate, decimal
    factors: tuple[str, ...]
    betas: np.ndarray  # (T, n, K), NaN where none
    residual_std: np.ndarray  # (T, n) daily residual standard deviation of the symbol's regression


def _index_of(frame: pd.DataFrame, dates: pd.DatetimeIndex, ids: pd.Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = dates.get_indexer(pd.DatetimeIndex(frame["date"]))
    p = ids.get_indexer(frame["position_id"])
    keep = (t >= 0) & (p >= 0)
    return t[keep], p[keep], keep


def _grid(frame: pd.DataFrame, dates: pd.DatetimeIndex, ids: pd.Index, column: str, fill=np.nan) -> np.ndarray:
    out = np.full((len(dates), len(ids)), fill, dtype=float)
    if frame is None or frame.empty or column not in frame.columns:
        return out
    t, p, keep = _index_of(frame, dates, ids)
    out[t, p] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)[keep]
    return out


def book_grids(
    positions: pd.DataFrame,
    valuations: pd.DataFrame,
    greeks: pd.DataFrame,
    position_betas: pd.DataFrame,
    short_rate: pd.Series | float,
    dates,
    factors: Sequence[str],
) -> BookGrids:
    """The inputs of both methods on the grid (dates x positions of ``positions``).

    ``positions``: the book (``position_id, symbol, underlying_symbol, is_option, quantity, multiplier, strike,
    option_type``). ``valuations``: ``date, position_id, market_value, delta_adjusted_exposure`` (a row = held
    that date). ``greeks``: ``date, position_id, underlying_price, implied_vol, days_to_expiry, dividend_yield``.
    ``position_betas``: long ``date, position_id, factor_name, beta[, residual_std]`` (the stored rows), or wide
    ``date, position_id[, residual_std]`` and one beta column per factor name (one row per position and date,
    as a pivot of the stored rows gives it; a factor without a column has no beta). ``short_rate``: ^IRX
    in percent (a Series by date, carried forward over bond-market holidays, or a scalar). ``factors``: the
    factor order (Market among them).
    """
    dates = pd.DatetimeIndex(dates)
    if positions["position_id"].duplicated().any():
        raise ValueError("duplicate position_id in positions")
    factors = tuple(factors)
    if MARKET not in factors:
        raise ValueError(f"the factors must include {MARKET!r}, got {list(factors)}")
    ids = pd.Index(positions["position_id"])
    is_opt = _as_bool(positions["is_option"])
    under = positions["underlying_symbol"].astype(object)
    under = under.where(under.notna() & (under.astype(str).str.strip() != ""), positions["symbol"])
    if (is_opt & under.isna().to_numpy()).any():
        raise ValueError("option positions need an underlying symbol")
    held = np.zeros((len(dates), len(ids)), dtype=bool)
    if len(valuations):
        t, p, _ = _index_of(valuations, dates, ids)
        held[t, p] = True
    betas = np.full((len(dates), len(ids), len(factors)), np.nan)
    resid = np.full((len(dates), len(ids)), np.nan)
    if len(position_betas):
        t, p, keep = _index_of(position_betas, dates, ids)
        if "factor_name" in position_betas.columns:  # long: one row per factor
            k = pd.Index(factors).get_indexer(position_betas["factor_name"][keep])
            ok = k >= 0
            betas[t[ok], p[ok], k[ok]] = position_betas["beta"].to_numpy(dtype=float)[keep][ok]
        else:  # wide: one row per (date, position), a column per factor
            present = np.array([i for i, f in enumerate(factors) if f in position_betas.columns], dtype=np.int64)
            values = position_betas[[factors[i] for i in present]].to_numpy(dtype=float)[keep]
            betas[t[:, None], p[:, None], present[None, :]] = values
        if "residual_std" in position_betas.columns:
            resid[t, p] = pd.to_numeric(position_betas["residual_std"], errors="coerce").to_numpy(dtype=float)[keep]
    q = _grid(greeks, dates, ids, "dividend_yield")
    return BookGrids(
        dates=dates,
        position_ids=ids.to_numpy(),
        symbols=under.to_numpy(dtype=object),
        is_option=is_opt,
        strike=pd.to_numeric(positions["strike"], errors="coerce").to_numpy(dtype=float),
        is_call=(positions["option_type"].astype(object) == "C").to_numpy(dtype=bool),
        scale=positions["quantity"].to_numpy(dtype=float) * positions["multiplier"].to_numpy(dtype=float),
        held=held,
        market_value=_grid(valuations, dates, ids, "market_value"),
        exposure=_grid(valuations, dates, ids, "delta_adjusted_exposure"),
        underlying_price=_grid(greeks, dates, ids, "underlying_price"),
        vol=_grid(greeks, dates, ids, "implied_vol"),
        days=_grid(greeks, dates, ids, "days_to_expiry"),
        dividend_yield=np.where(np.isnan(q), 0.0, q),
        rate=_rate_decimal(short_rate, dates) if len(dates) else np.zeros(0),
        factors=factors,
        betas=betas,
        residual_std=resid,
    )


# --- historical simulation ---------------------------------------------------------------------------------------


class Scenarios(NamedTuple):
    """Scenario P&L of a block of dates (``rows`` of the grids)."""

    rows: np.ndarray  # (T,) indices into the grids' dates
    sessions: np.ndarray  # (T, S) datetime64 session of each scenario (NaT before the data)
    pnl: np.ndarray  # (T, S, n) position P&L; 0 for a position left out and on a session that is no scenario
    total: np.ndarray  # (T, S) book P&L; NaN on a session that is no scenario (no market return)
    n_scenarios: np.ndarray  # (T,)
    filled: np.ndarray  # (T,) (symbol, session) returns filled with beta x market return
    included: np.ndarray  # (T, n) held, priced and not left out
    unpriced: np.ndarray  # (T,) held positions without a price or model inputs
    left_out: list  # per date: the symbols left out (a return to fill and no Market beta), sorted


def _prepare_returns(grids: BookGrids, returns: pd.DataFrame, market_returns: pd.Series):
    """Symbols of the book, their returns and the market's as arrays on ``returns``' sessions."""
    sessions = pd.DatetimeIndex(returns.index)
    symbols = pd.Index(pd.unique(grids.symbols))
    r = returns.reindex(columns=symbols).to_numpy(dtype=float)
    m = pd.Series(market_returns, dtype=float).reindex(sessions).to_numpy(dtype=float)
    sym_idx = symbols.get_indexer(grids.symbols)
    onehot = np.zeros((len(grids.symbols), len(symbols)))
    onehot[np.arange(len(grids.symbols)), sym_idx] = 1.0
    beta_m = grids.betas[:, :, grids.factors.index(MARKET)]
    has = np.isfinite(beta_m)
    with np.errstate(invalid="ignore", divide="ignore"):  # a symbol's Market beta: the one its positions share
        beta_sym = (np.where(has, beta_m, 0.0) @ onehot) / (has.astype(float) @ onehot)
    return sessions, symbols, r, m, sym_idx, beta_sym


def scenario_pnl(
    grids: BookGrids,
    returns: pd.DataFrame,
    market_returns: pd.Series,
    window: int = RISK_WINDOW,
    rows=None,
    _prepared=None,
) -> Scenarios:
    """Scenario P&L (full revaluation) of the book on ``grids.dates[rows]`` (default: every date).

    ``returns``: simple returns, sessions x symbols, indexed by CONSECUTIVE sessions covering every window
    (NaN where unknown; rows after the last date are never read). ``market_returns``: the market proxy's
    simple returns by session. See the module docstring for the model.
    """
    sessions, symbols, r, m, sym_idx, beta_sym = _prepared or _prepare_returns(grids, returns, market_returns)
    rows = np.arange(len(grids.dates)) if rows is None else np.asarray(rows)
    pos = window_positions(sessions, grids.dates[rows])
    r_win = np.ascontiguousarray(trailing_window_view(r, window, np.nan)[pos].transpose(0, 2, 1))  # (T, S, M)
    m_win = trailing_window_view(m, window, np.nan)[pos]  # (T, S)
    sess = trailing_window_view(sessions.to_numpy(dtype="datetime64[ns]"), window, np.datetime64("NaT"))[pos]
    valid = np.isfinite(m_win)
    beta_s = beta_sym[rows]  # (T, M)

    # fill the gaps of the symbols the book holds on each date: beta x market return
    held, is_opt = grids.held[rows], grids.is_option
    mv, S, K = grids.market_value[rows], grids.underlying_price[rows], grids.strike
    tau = grids.days[rows] / DAYS_PER_YEAR
    rate = grids.rate[rows][:, None]
    v0 = np.full(held.shape, np.nan)
    o = np.flatnonzero(is_opt)
    if len(o):
        v0[:, o] = bs_price(S[:, o], K[None, o], tau[:, o], rate, grids.vol[rows][:, o], grids.is_call[None, o],
                            grids.dividend_yield[rows][:, o])
    priced = np.where(is_opt[None, :], np.isfinite(v0), np.isfinite(mv))
    uses = (held & priced).astype(float) @ _onehot(sym_idx, len(symbols)) > 0  # (T, M) symbols in use
    missing = np.isnan(r_win) & valid[:, :, None]
    fillable = np.isfinite(beta_s)[:, None, :]
    left_sym = missing.any(axis=1) & ~np.isfinite(beta_s) & uses  # (T, M)
    filled = (missing & fillable & uses[:, None, :]).sum(axis=(1, 2))
    included = held & priced & ~left_sym[:, sym_idx]
    # the returns the scenarios apply: gaps filled; 0 where nothing applies (a symbol left out, a session that
    # is no scenario), whose P&L is masked below
    t, w, k = np.nonzero(missing)  # in place: the gaps are few, the window is (T, S, M)
    r_win[t, w, k] = np.where(np.isfinite(beta_s[t, k]), beta_s[t, k] * m_win[t, w], 0.0)
    r_win[~valid] = 0.0

    # P&L of every (date, scenario, position): linear positions by market value x return, options repriced
    rp = r_win[:, :, sym_idx]  # (T, S, n), a copy
    if len(o):
        tau1 = np.where(tau[:, o] < 0, tau[:, o], np.maximum(tau[:, o] - 1.0 / DAYS_PER_YEAR, 0.0))
        v1 = bs_price(S[:, None, o] * (1.0 + rp[:, :, o]), K[None, None, o], tau1[:, None, :], rate[:, :, None],
                      grids.vol[rows][:, None, o], grids.is_call[None, None, o], grids.dividend_yield[rows][:, None, o])
    pnl = np.multiply(rp, np.where(included & ~is_opt[None, :], mv, 0.0)[:, None, :], out=rp)
    if len(o):
        opt_pnl = (v1 - v0[:, None, o]) * grids.scale[None, None, o]
        pnl[:, :, o] = np.where(included[:, None, o] & valid[:, :, None], opt_pnl, 0.0)
    total = np.where(valid, pnl.sum(axis=2), np.nan)
    left_out = [sorted(symbols[row].tolist()) for row in left_sym]
    return Scenarios(rows, sess, pnl, total, valid.sum(axis=1), filled, included,
                     (held & ~priced).sum(axis=1), left_out)


def _onehot(idx: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(idx), width))
    out[np.arange(len(idx)), idx] = 1.0
    return out


class HistoricalRisk(NamedTuple):
    """Historical VaR / ES per date and level, the ES contributions and the scenario bookkeeping."""

    var: np.ndarray  # (T, len(VAR_LEVELS)), NaN where not computed
    es: np.ndarray  # (T, len(ES_LEVELS))
    contributions: np.ndarray  # (T, n, len(ES_LEVELS)) Euler contributions to ES
    total: np.ndarray  # (T, S) book scenario P&L
    sessions: np.ndarray  # (T, S) the scenario sessions
    n_scenarios: np.ndarray  # (T,)
    filled: np.ndarray  # (T,)
    included: np.ndarray  # (T, n)
    unpriced: np.ndarray  # (T,)
    left_out: list  # (T,) lists of symbols


def historical_risk(
    grids: BookGrids,
    returns: pd.DataFrame,
    market_returns: pd.Series,
    window: int = RISK_WINDOW,
    min_scenarios: int = MIN_SCENARIOS,
    var_levels: Sequence[float] = VAR_LEVELS,
    es_levels: Sequence[float] = ES_LEVELS,
) -> HistoricalRisk:
    """Historical-simulation VaR and ES of every date of ``grids`` with full revaluation, and each position's
    Euler contribution to ES. Dates are processed in blocks of at most ~4M (date, scenario, position) cells;
    a date with fewer than ``min_scenarios`` scenarios gets NaN."""
    n_t, n = len(grids.dates), len(grids.position_ids)
    prepared = _prepare_returns(grids, returns, market_returns)
    var = np.full((n_t, len(var_levels)), np.nan)
    es = np.full((n_t, len(es_levels)), np.nan)
    contrib = np.full((n_t, n, len(es_levels)), np.nan)
    total = np.full((n_t, window), np.nan)
    sessions = np.full((n_t, window), np.datetime64("NaT"), dtype="datetime64[ns]")
    n_scen = np.zeros(n_t, dtype=np.int64)
    filled = np.zeros(n_t, dtype=np.int64)
    unpriced = np.zeros(n_t, dtype=np.int64)
    included = np.zeros((n_t, n), dtype=bool)
    left_out: list = [[] for _ in range(n_t)]
    step = max(1, _BLOCK_ELEMENTS // max(1, window * max(n, 1)))
    for start in range(0, n_t, step):  # blocks of dates: bounded memory, each block one vectorised pass
        sc = scenario_pnl(grids, returns, market_returns, window, np.arange(start, min(start + step, n_t)), prepared)
        rows = sc.rows
        enough = sc.n_scenarios >= min_scenarios
        ranked = _sort_scenarios(sc.total)
        for i, level in enumerate(var_levels):
            var[rows, i] = np.where(enough, _tail_of_sorted(ranked, level)[0], np.nan)
        for i, level in enumerate(es_levels):
            _, e, w = _tail_of_sorted(ranked, level)
            es[rows, i] = np.where(enough, e, np.nan)
            c = -np.einsum("ts,tsn->tn", w, sc.pnl)
            contrib[rows, :, i] = np.where(enough[:, None], c, np.nan)
        total[rows], sessions[rows] = sc.total, sc.sessions
        n_scen[rows], filled[rows], unpriced[rows], included[rows] = sc.n_scenarios, sc.filled, sc.unpriced, sc.included
        for row, names in zip(rows, sc.left_out):
            left_out[row] = names
    return HistoricalRisk(var, es, contrib, total, sessions, n_scen, filled, included, unpriced, left_out)


# --- parametric (factor model) ------------------------------------------------------------------------------------


class ParametricRisk(NamedTuple):
    sigma: np.ndarray  # (T,) 1-day P&L standard deviation, dollars
    factor_variance: np.ndarray  # (T,) x' F x
    specific_variance: np.ndarray  # (T,) sum over symbols of (net exposure x s)^2
    tracking_error: np.ndarray  # (T,) 1-day, dollars
    exposures: np.ndarray  # (T, K) x
    position_contributions: np.ndarray  # (T, n) to sigma
    position_marginals: np.ndarray  # (T, n) d sigma / d e_i
    factor_contributions: np.ndarray  # (T, K) to sigma
    factor_marginals: np.ndarray  # (T, K) (F x)_f / sigma
    specific_contribution: np.ndarray  # (T,)
    included: np.ndarray  # (T, n)
    without_beta: np.ndarray  # (T,) held positions without betas
    missing_residual: np.ndarray  # (T,) included positions without a residual standard deviation


def parametric_risk(grids: BookGrids, factor_cov: np.ndarray, equity) -> ParametricRisk:
    """The delta-normal factor model of every date (see the module docstring).

    ``factor_cov``: (T, K, K) daily factor covariance in ``grids.factors`` order (e.g. from
    :func:`.factors.covariance_stack`); ``equity``: (T,) the book's net liquidation value, the Market
    exposure of the tracking error's benchmark.
    """
    F = np.asarray(factor_cov, dtype=float)
    k = len(grids.factors)
    if F.shape != (len(grids.dates), k, k):
        raise ValueError(f"factor_cov must be (dates, factors, factors) = {(len(grids.dates), k, k)}, got {F.shape}")
    has_beta = np.isfinite(grids.betas).all(axis=2)
    included = grids.held & has_beta & np.isfinite(grids.exposure)
    e = np.where(included, grids.exposure, 0.0)
    # specific risk belongs to the symbol: its positions (a stock and its options) share one residual
    sym = pd.Index(pd.unique(grids.symbols)).get_indexer(grids.symbols)
    onehot = _onehot(sym, int(sym.max()) + 1 if len(sym) else 0)
    known = included & np.isfinite(grids.residual_std)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_sym = (np.where(known, grids.residual_std, 0.0) @ onehot) / (known.astype(float) @ onehot)
    s_sym = np.nan_to_num(s_sym, nan=0.0)  # (T, M): 0 where no included position of the symbol has one
    e_sym = e @ onehot  # (T, M) the symbol's net delta-adjusted exposure
    B = np.where(included[:, :, None], grids.betas, 0.0)
    x = np.einsum("tn,tnk->tk", e, B)
    Fx = np.einsum("tkl,tl->tk", F, x)
    fvar = np.einsum("tk,tk->t", x, Fx)
    svar = ((e_sym * s_sym) ** 2).sum(axis=1)
    sigma = np.sqrt(fvar + svar)
    ce = np.einsum("tnk,tk->tn", B, Fx) + (s_sym * s_sym * e_sym)[:, sym]  # (C e)_i
    active = x.copy()
    active[:, grids.factors.index(MARKET)] -= np.asarray(equity, dtype=float)
    te = np.sqrt(np.einsum("tk,tkl,tl->t", active, F, active) + svar)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(sigma > 0, 1.0 / sigma, np.nan)
    marginal = ce * inv[:, None]
    zero = (sigma == 0)[:, None]  # an empty or riskless book: nothing to allocate
    pos_c = np.where(zero, 0.0, e * marginal)
    fac_c = np.where(zero, 0.0, x * Fx * inv[:, None])
    spec_c = np.where(sigma == 0, 0.0, svar * inv)
    return ParametricRisk(
        sigma, fvar, svar, te, x, pos_c, np.where(included, marginal, np.nan), fac_c, Fx * inv[:, None], spec_c,
        included, (grids.held & ~has_beta).sum(axis=1), (included & ~np.isfinite(grids.residual_std)).sum(axis=1),
    )


# --- the whole computation, as the warehouse's rows ---------------------------------------------------------------


class RiskMeasures(NamedTuple):
    measures: pd.DataFrame  # MEASURE_COLUMNS
    position_contributions: pd.DataFrame  # POSITION_CONTRIBUTION_COLUMNS
    factor_contributions: pd.DataFrame  # FACTOR_CONTRIBUTION_COLUMNS
    historical: HistoricalRisk
    parametric: ParametricRisk


def _notes(*parts) -> np.ndarray:
    """Join per-cell notes with ';' (empty ones and "ok" skipped); a cell without a note is "ok"."""
    clean = lambda p: np.where(np.asarray(p, dtype=object) == "ok", "", np.asarray(p, dtype=object))  # noqa: E731
    out = clean(parts[0])
    for part in parts[1:]:
        part = clean(part)
        out = np.where((out != "") & (part != ""), out + ";" + part, out + part)
    return np.where(out == "", "ok", out)


def _count(label: str, counts: np.ndarray) -> np.ndarray:
    return np.array([f"{label}={c}" if c else "" for c in counts], dtype=object)


def _measure_rows(method: str, measure: str, level: float, horizon: int, values, flags) -> tuple:
    """One measure on every date: ``(method, measure, level, horizon, values (T,), flags (T,) or one flag)``."""
    return method, measure, float(level), int(horizon), np.asarray(values, dtype=float), flags


def _tail_rows(method, var, es, var_levels, es_levels, base_flags, negative: bool) -> list[tuple]:
    """VaR and ES rows at 1 day and (scaled) 10 days."""
    out = []
    scale = np.sqrt(SCALED_HORIZON)
    scaled = np.full(len(base_flags), "scaled_sqrt10", dtype=object)
    for name, values, levels in (("var", var, var_levels), ("es", es, es_levels)):
        for i, level in enumerate(levels):
            v = values[:, i]
            neg = np.where(negative & (v < 0), f"negative_{name}", "")
            out.append(_measure_rows(method, name, level, 1, v, _notes(base_flags, neg)))
            out.append(_measure_rows(method, name, level, SCALED_HORIZON, v * scale, _notes(base_flags, neg, scaled)))
    return out


def _measures_frame(dates: pd.DatetimeIndex, rows: list[tuple]) -> pd.DataFrame:
    """The long ``MEASURE_COLUMNS`` frame of :func:`_measure_rows` tuples: by date, within a date in the order of
    ``rows`` (one (dates x rows) grid per column, raveled date-major: no per-measure frames to concatenate)."""
    n_t = len(dates)
    if not n_t:
        return pd.DataFrame(columns=MEASURE_COLUMNS)
    method, measure, level, horizon, values, flags = zip(*rows)
    tile = lambda column, dtype: np.tile(np.asarray(column, dtype=dtype), n_t)  # noqa: E731
    return pd.DataFrame({
        "date": np.repeat(dates.to_numpy(), len(rows)),
        "method": tile(method, object),
        "measure": tile(measure, object),
        "level": tile(level, float),
        "horizon_days": tile(horizon, np.int64),
        "value": np.stack(values, axis=1).ravel() + 0.0,
        "flag": np.stack([np.broadcast_to(np.asarray(f, dtype=object), (n_t,)) for f in flags], axis=1).ravel(),
    }, columns=MEASURE_COLUMNS)


def risk_measures_range(
    positions: pd.DataFrame,
    valuations: pd.DataFrame,
    greeks: pd.DataFrame,
    position_betas: pd.DataFrame,
    factor_cov,
    returns: pd.DataFrame,
    market_returns: pd.Series,
    short_rate: pd.Series | float,
    equity: pd.Series | Mapping,
    dates,
    factors: Sequence[str],
    window: int = RISK_WINDOW,
    min_scenarios: int = MIN_SCENARIOS,
) -> RiskMeasures:
    """Both methods for every date of ``dates``, as the rows of the three risk tables.

    Inputs as :func:`book_grids` and :func:`scenario_pnl`; ``factor_cov``: the stored ``factor_correlations``
    rows (``date, factor_a, factor_b, covariance``) or a (T, K, K) array; ``equity``: net liquidation value by
    date. A date without a factor covariance is an error, not a silent zero.

    ``measures`` (long, one row per date, method, measure, level and horizon): historical and parametric
    ``var`` (VAR_LEVELS) and ``es`` (ES_LEVELS) at 1 and 10 days; historical ``scenarios`` and
    ``filled_returns``; parametric ``volatility`` (1 day and 252 days, dollars), ``volatility_of_equity``
    (252 days), ``tracking_error`` (1 and 252 days), ``tracking_error_of_equity`` (252), ``factor_share`` and
    ``specific_share``. ``position_contributions``: historical ``es`` at each ES level (``marginal`` NaN,
    ``share`` = contribution / ES) and parametric ``volatility`` (contribution to the 1-day sigma, marginal
    d sigma / d e_i, share of sigma), for the positions each method includes. ``factor_contributions``: each
    factor and ``Specific``, to the 1-day sigma.
    """
    dates = pd.DatetimeIndex(dates)
    grids = book_grids(positions, valuations, greeks, position_betas, short_rate, dates, factors)
    if isinstance(factor_cov, pd.DataFrame):
        F = covariance_stack(factor_cov, dates, list(grids.factors))
    else:
        F = np.asarray(factor_cov, dtype=float)
    no_cov = np.isnan(F).all(axis=(1, 2)) if len(dates) else np.zeros(0, dtype=bool)
    if no_cov.any():
        raise ValueError(f"no factor covariance for {', '.join(f'{d:%Y-%m-%d}' for d in dates[no_cov][:5])}")
    eq = pd.Series(equity, dtype=float)
    eq.index = pd.DatetimeIndex(eq.index)
    equity_arr = eq.reindex(dates).to_numpy(dtype=float)

    hist = historical_risk(grids, returns, market_returns, window, min_scenarios)
    par = parametric_risk(grids, F, equity_arr)
    n_t = len(dates)

    # --- portfolio measures
    history = np.where(hist.n_scenarios < min_scenarios, "insufficient_history",
                       np.where(hist.n_scenarios < window, "limited_history", "")).astype(object)
    left = np.array([f"left_out={','.join(names)}" if names else "" for names in hist.left_out], dtype=object)
    h_flags = _notes(history, _count("filled_returns", hist.filled), left, _count("unpriced", hist.unpriced))
    p_flags = _notes(_count("positions_without_beta", par.without_beta),
                     _count("missing_residual_std", par.missing_residual),
                     np.where(np.isnan(F).any(axis=(1, 2)), "incomplete_covariance", "").astype(object))
    p_var = np.stack([normal_var_es(par.sigma, a)[0] for a in VAR_LEVELS], axis=1) if n_t else np.zeros((0, 2))
    p_es = np.stack([normal_var_es(par.sigma, a)[1] for a in ES_LEVELS], axis=1) if n_t else np.zeros((0, 3))
    positive = equity_arr > 0
    eq_flag = _notes(p_flags, np.where(positive, "", "equity_nonpositive").astype(object))
    ann = np.sqrt(TRADING_DAYS)
    with np.errstate(divide="ignore", invalid="ignore"):
        vol_pct = np.where(positive, par.sigma * ann / equity_arr, np.nan)
        te_pct = np.where(positive, par.tracking_error * ann / equity_arr, np.nan)
        var_total = par.sigma ** 2
        f_share = np.where(var_total > 0, par.factor_variance / var_total, np.nan)
        s_share = np.where(var_total > 0, par.specific_variance / var_total, np.nan)
    measures = _measures_frame(dates, [
        *_tail_rows(HISTORICAL, hist.var, hist.es, VAR_LEVELS, ES_LEVELS, h_flags, True),
        _measure_rows(HISTORICAL, "scenarios", NO_LEVEL, 1, hist.n_scenarios, h_flags),
        _measure_rows(HISTORICAL, "filled_returns", NO_LEVEL, 1, hist.filled, h_flags),
        *_tail_rows(PARAMETRIC, p_var, p_es, VAR_LEVELS, ES_LEVELS, p_flags, False),
        _measure_rows(PARAMETRIC, "volatility", NO_LEVEL, 1, par.sigma, p_flags),
        _measure_rows(PARAMETRIC, "volatility", NO_LEVEL, TRADING_DAYS, par.sigma * ann, p_flags),
        _measure_rows(PARAMETRIC, "volatility_of_equity", NO_LEVEL, TRADING_DAYS, vol_pct, eq_flag),
        _measure_rows(PARAMETRIC, "tracking_error", NO_LEVEL, 1, par.tracking_error, p_flags),
        _measure_rows(PARAMETRIC, "tracking_error", NO_LEVEL, TRADING_DAYS, par.tracking_error * ann, p_flags),
        _measure_rows(PARAMETRIC, "tracking_error_of_equity", NO_LEVEL, TRADING_DAYS, te_pct, eq_flag),
        _measure_rows(PARAMETRIC, "factor_share", NO_LEVEL, 1, f_share, p_flags),
        _measure_rows(PARAMETRIC, "specific_share", NO_LEVEL, 1, s_share, p_flags),
    ])  # by date; within a date in the order above (historical first)

    # --- position contributions: one (dates x positions x kinds) grid per column, kinds the ES levels then the
    # parametric sigma; the rows each method includes, by date, position id and kind
    n_es = len(ES_LEVELS)
    order = np.argsort(grids.position_ids, kind="stable")
    contrib = np.concatenate([hist.contributions, par.position_contributions[:, :, None]], axis=2)[:, order]
    keep = np.concatenate([hist.included[:, :, None] & np.isfinite(hist.contributions),
                           (par.included & np.isfinite(par.sigma)[:, None])[:, :, None]], axis=2)[:, order]
    t, p, kind = np.nonzero(keep)
    c = contrib[t, p, kind]
    total = np.concatenate([hist.es, par.sigma[:, None]], axis=1)[t, kind]  # the measure each part adds up to
    is_par = kind == n_es
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(np.where(is_par, total > 0, total != 0), c / total, np.nan)
    pos_c = pd.DataFrame({
        "date": dates[t],
        "position_id": grids.position_ids[order][p],
        "method": np.array([HISTORICAL] * n_es + [PARAMETRIC], dtype=object)[kind],
        "measure": np.array(["es"] * n_es + ["volatility"], dtype=object)[kind],
        "level": np.array([*ES_LEVELS, NO_LEVEL], dtype=float)[kind],
        "contribution": c + 0.0,
        "marginal": np.where(is_par, par.position_marginals[:, order][t, p], np.nan) + 0.0,
        "share": share,
    }, columns=POSITION_CONTRIBUTION_COLUMNS)

    # --- factor contributions (and specific risk)
    k = len(grids.factors)
    names = np.asarray([*grids.factors, SPECIFIC], dtype=object)
    contrib = np.concatenate([par.factor_contributions, par.specific_contribution[:, None]], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(par.sigma[:, None] > 0, contrib / par.sigma[:, None], np.nan)
    fac_c = pd.DataFrame({
        "date": np.repeat(dates, k + 1),
        "factor_name": np.tile(names, n_t),
        "dollar_exposure": np.concatenate([par.exposures, np.full((n_t, 1), np.nan)], axis=1).ravel(),
        "contribution": contrib.ravel() + 0.0,
        "marginal": np.concatenate([par.factor_marginals, np.full((n_t, 1), np.nan)], axis=1).ravel(),
        "share": shares.ravel(),
    }, columns=FACTOR_CONTRIBUTION_COLUMNS)
    return RiskMeasures(measures, pos_c, fac_c, hist, par)


# --- backtest ---------------------------------------------------------------------------------------------------------


def kupiec_pof(exceptions, observations, level: float = BACKTEST_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Kupiec's proportion-of-failures test: ``(LR, p-value)`` for x exceptions in T observations of a VaR at
    ``level`` (expected failure rate p = 1 - level)::

        LR = -2 ln[(1 - p)^(T - x) p^x] + 2 ln[(1 - x/T)^(T - x) (x/T)^x]     (0 ln 0 = 0)

    and the p-value ``P(chi2(1) > LR)``. NaN where T == 0.
    """
    x = np.asarray(exceptions, dtype=float)
    n = np.asarray(observations, dtype=float)
    p = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, x / n, np.nan)
        null = xlogy(n - x, 1.0 - p) + xlogy(x, p)
        alt = xlogy(n - x, 1.0 - rate) + xlogy(x, rate)
        lr = np.where(n > 0, np.maximum(-2.0 * (null - alt), 0.0), np.nan)
    return lr, chdtrc(1.0, lr)  # the chi-square(1) survival function


def basel_zone(exceptions) -> np.ndarray:
    """The Basel traffic light of an exception count in 250 sessions: green 0-4, yellow 5-9, red >= 10."""
    x = np.asarray(exceptions)
    return np.where(x <= _GREEN_MAX, "green", np.where(x <= _YELLOW_MAX, "yellow", "red")).astype(object)


def var_backtest(
    dates,
    var_dates,
    var_previous,
    realized_pnl,
    prior_exceptions: Sequence[bool] = (),
    window: int = RISK_WINDOW,
    level: float = BACKTEST_LEVEL,
) -> pd.DataFrame:
    """The 99% VaR backtest on ``dates`` (ascending), one row per date with both a VaR of the previous session
    (``var_previous``, positive loss; NaN: none) and a realised P&L (NaN: none, e.g. a first snapshot).

    ``exception`` = ``realized_pnl < -var_previous``. ``prior_exceptions``: the exceptions of the backtest's
    earlier sessions (oldest first, as stored); the window of a date is its last ``window`` backtested sessions
    (those and this run's, the date included): ``window_sessions``, ``exceptions``, Kupiec's LR and p-value,
    and the Basel zone. Columns ``BACKTEST_COLUMNS``.
    """
    dates = pd.DatetimeIndex(dates)
    var_prev = np.asarray(var_previous, dtype=float)
    pnl = np.asarray(realized_pnl, dtype=float)
    keep = np.isfinite(var_prev) & np.isfinite(pnl)
    exc = pnl[keep] < -var_prev[keep]
    prior = np.asarray(list(prior_exceptions), dtype=bool)[-(window - 1):] if window > 1 else np.zeros(0, bool)
    series = np.concatenate([prior, exc]).astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(series)])
    end = np.arange(len(prior) + 1, len(series) + 1)
    begin = np.maximum(end - window, 0)
    count = csum[end] - csum[begin]
    nobs = end - begin
    lr, pval = kupiec_pof(count, nobs, level)
    return pd.DataFrame({
        "date": dates[keep],
        "var_date": pd.DatetimeIndex(var_dates)[keep],
        "var_99": var_prev[keep],
        "realized_pnl": pnl[keep],
        "exception": exc,
        "window_sessions": nobs.astype(np.int64),
        "exceptions": count.astype(np.int64),
        "kupiec_lr": lr,
        "kupiec_p_value": pval,
        "zone": basel_zone(count),
    }, columns=BACKTEST_COLUMNS)
