"""Stress tests: factor-shock scenarios applied position by position (vectorised positions x scenarios).

Scenarios are data: a ``scenarios`` frame (``scenario_id, name, category, severity``) and a ``shocks``
frame (``scenario_id, factor_name, shock``). Equity factor shocks are fractional factor returns
(-0.10 = -10%); the factor ``"Interest Rate"`` is an absolute change of the 10-year yield in decimal
(0.01 = +100 bp). Adding a scenario needs no code change; a shock naming a factor the model does not know
(e.g. "Market Beta") raises instead of being dropped.

Per position i and scenario s, with betas b_ik (an option carries its underlying's betas) and rate beta
rb_i (return per +1 bp):

    return_is = sum_k b_ik f_sk + rb_i x bp_s          (bp_s = 10,000 x rate shock)

- Linear positions (stocks, ETFs): P&L = market_value x return_is.
- Options: full Black-Scholes revaluation at the shocked underlying price S x (1 + return_is) (floored at
  0), with the same vol and T and the rate shifted to r + dy (the 10-year shock applied to the discount
  rate as a parallel shift, so rho enters exactly): P&L = (V(S', r + dy) - V(S, r)) x quantity x
  multiplier. V(S, r) is the model value at today's inputs (so a market-priced option's mispricing is not
  scenario P&L, and a zero shock gives exactly 0).
- Direct P&L uses the named shocks only; correlated P&L adds the conditional moves of the unshocked equity
  factors, E[f_u | f_s] = S_us S_ss^-1 f_s (``conditional_factor_moves``). Interest Rate is not in the
  equity factor covariance: it moves only when shocked.

Factor breakdown: per factor, the linear contribution sum_i E_i b_ik f_k, where E_i is the market value
(linear positions) or the delta-adjusted exposure delta x quantity x multiplier x S (options). The
"Interest Rate" row adds E_i rb_i bp plus the options' rho term. The options' remaining non-linearity is
the row "Option convexity" = full revaluation P&L - its linear parts, so the rows add up to the total
(to floating-point rounding, ~1e-12 relative).

VIX: a scenario may shock the VIX level itself with the key ``"VIX"`` (a relative change of the level,
1.50 = +150%, so 20 -> 50). It is not a factor: it is not in the factor covariance, does not condition the
other factors and moves nothing else. In a scenario with a VIX shock, an option on the VIX (underlying
``^VIX``) is revalued at the shocked level VIX x (1 + shock) (full Black-Scholes, as every option: same vol,
T and rate shift), in both the direct and the correlated run, instead of through the betas of ^VIX to the
factors; in a scenario without one it moves through its factor and rate betas, as any option. When any
scenario shocks the VIX, the breakdown has a row "VIX" (the delta-linear part of the VIX options,
sum delta x quantity x multiplier x VIX x shock; its ``shock`` and ``implied_move`` are the VIX shock, 0 where
a scenario has none) and the VIX options' non-linearity goes to "Option convexity" as for any option.

Percentages, each named for what it divides by (books.md, "Numbers that must not mislead"):

- ``pct_of_gross_exposure = correlated_pnl / gross_exposure``: gross exposure = sum of |market value| of the
  priced positions held that date (NULL when 0);
- ``pct_of_equity = correlated_pnl / equity``: equity = the book's net liquidation value = sum of the
  signed market values of the priced positions held that date, which is ``portfolio_exposures.net_exposure``
  (shorts and written options count negative). No cash is modelled: a short sale's proceeds and the cash
  left after buying are not in the book, so this is the net market value of the positions. NULL when
  equity <= 0 (a ratio on a non-positive base has no meaning); the row's flag then says
  "equity_nonpositive".
- ``exceeds_equity``: the scenario's loss (the worse of direct and correlated P&L) is larger than the
  equity: P&L < -equity, and when equity <= 0 any loss (:func:`loss_exceeds_equity`); flag
  "loss_exceeds_equity". Such a row is possible for a levered or long/short book and is reported, not
  capped; for an unlevered long-only book a loss larger than gross exposure remains a model error
  (:func:`loss_cap_violations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from sigmasight_pipeline.data import factor_proxies

from .options import _as_bool, _rate_decimal, bs_greeks, bs_price

__all__ = [
    "RATE_FACTOR",
    "VIX_SHOCK",
    "VIX_UNDERLYING",
    "CONVEXITY_ROW",
    "EQUITY_FACTORS",
    "RESULT_COLUMNS",
    "BREAKDOWN_COLUMNS",
    "POSITION_PNL_COLUMNS",
    "StressResult",
    "conditional_factor_moves",
    "stress_test",
    "stress_test_range",
    "loss_cap_violations",
    "loss_exceeds_equity",
    "equity_loss_rows",
]

RATE_FACTOR = "Interest Rate"
#: The scenario key (and breakdown row) of a shock to the VIX level itself: a relative change, not a factor.
VIX_SHOCK = "VIX"
#: The underlying symbol of a VIX option in the positions frame (the market-data symbol of the VIX level,
#: ``marketdata.base.SYMBOLS.VIX``; engines do not import marketdata).
VIX_UNDERLYING = "^VIX"
CONVEXITY_ROW = "Option convexity"
EQUITY_FACTORS = list(factor_proxies())  # data/factors.yaml
SINGULAR_COND = 1e12  # above this condition number S_ss is treated as singular (lstsq / pseudo-inverse)

RESULT_COLUMNS = [
    "date",
    "scenario_id",
    "direct_pnl",
    "correlated_pnl",
    "correlation_effect",
    "pct_of_gross_exposure",
    "gross_exposure",
    "pct_of_equity",
    "equity",
    "exceeds_equity",
    "loss_cap_applied",
    "flag",
]
BREAKDOWN_COLUMNS = ["date", "scenario_id", "factor_name", "shock", "implied_move", "direct_pnl", "correlated_pnl"]
POSITION_PNL_COLUMNS = ["date", "scenario_id", "position_id", "direct_pnl", "correlated_pnl"]


class StressResult(NamedTuple):
    results: pd.DataFrame
    factor_breakdown: pd.DataFrame
    position_pnl: pd.DataFrame


def _conditioning_factors(nan_pattern: np.ndarray) -> np.ndarray:
    """Factors usable for conditioning, given the (K, K) NaN pattern of a covariance: repeatedly drop the
    factor with the most NaN entries (the first such) until the kept block has none. Returns a bool mask."""
    keep = np.ones(nan_pattern.shape[0], dtype=bool)
    while keep.any():
        idx = np.flatnonzero(keep)
        counts = nan_pattern[np.ix_(idx, idx)].sum(axis=1)
        if not counts.any():
            break
        keep[idx[np.argmax(counts)]] = False
    return keep


def _conditional_moves(named: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised core of :func:`conditional_factor_moves` over dates and scenarios.

    ``named`` is (s, K): scenario shocks on K factors, NaN where a factor is not named; ``cov`` is (T, K, K),
    NaN where unknown (a factor outside the covariance has an all-NaN row and column). Returns ``moves``
    (T, s, K) and ``lstsq`` (T, s), True where the shocked block was singular and the minimum-norm
    least-squares solution was used. Scenarios that shock the same factor set share one batched solve per
    group of dates with the same NaN pattern, so the cost is a handful of LAPACK calls per range.
    """
    n_dates, (n_scen, k) = cov.shape[0], named.shape
    moves = np.broadcast_to(np.nan_to_num(named, nan=0.0), (n_dates, n_scen, k)).copy()
    lstsq = np.zeros((n_dates, n_scen), dtype=bool)
    if n_dates == 0 or n_scen == 0:
        return moves, lstsq
    nan_patterns, date_group = np.unique(np.isnan(cov).reshape(n_dates, -1), axis=0, return_inverse=True)
    shock_patterns, scen_group = np.unique(~np.isnan(named), axis=0, return_inverse=True)
    for g, nan_pattern in enumerate(nan_patterns):
        keep = _conditioning_factors(nan_pattern.reshape(k, k))
        t_idx = np.flatnonzero(date_group.ravel() == g)
        for h, shocked in enumerate(shock_patterns):
            s_mask, u_mask = shocked & keep, ~shocked & keep
            if not s_mask.any() or not u_mask.any():
                continue
            rows = np.flatnonzero(scen_group.ravel() == h)
            block = cov[t_idx]
            s_ss = block[:, s_mask][:, :, s_mask]  # (t, ks, ks)
            s_us = block[:, u_mask][:, :, s_mask]  # (t, ku, ks)
            f_s = named[np.ix_(rows, np.flatnonzero(s_mask))].T  # (ks, r)
            x = np.empty((len(t_idx), int(s_mask.sum()), len(rows)))
            regular = np.linalg.cond(s_ss) < SINGULAR_COND
            if regular.any():
                x[regular] = np.linalg.solve(s_ss[regular], np.broadcast_to(f_s, (int(regular.sum()), *f_s.shape)))
            for j in np.flatnonzero(~regular):  # singular blocks are rare; lstsq has no batched form
                x[j] = np.linalg.lstsq(s_ss[j], f_s, rcond=None)[0]
            lstsq[np.ix_(t_idx[~regular], rows)] = True
            moves[np.ix_(t_idx, rows, np.flatnonzero(u_mask))] = np.einsum("tus,tsr->tru", s_us, x)
    return moves, lstsq


def conditional_factor_moves(shocks: pd.Series, factor_cov: pd.DataFrame) -> pd.Series:
    """Shocked factors keep their shock; the unshocked factors of ``factor_cov`` move by
    E[f_u | f_s] = S_us S_ss^-1 f_s (zero-mean conditional normal).

    Solved with ``np.linalg.solve``; when S_ss is singular or ill-conditioned (condition number above
    1e12, e.g. two collinear factors shocked together) the minimum-norm least-squares solution
    (``np.linalg.lstsq``, equal to the pseudo-inverse) is used and ``result.attrs["method"]`` is "lstsq"
    (else "solve"). Factors whose covariance row has NaN are left out of the conditioning and do not move
    unless shocked. Factors absent from the covariance (Interest Rate) move only when shocked.

    Returns a Series over the covariance's factors followed by any other shocked factors.
    """
    shocks = pd.Series(shocks, dtype=float)
    shocks = shocks[shocks.notna()]
    cov_factors = list(factor_cov.index)
    order = cov_factors + [f for f in shocks.index if f not in cov_factors]
    cov = factor_cov.reindex(index=order, columns=order).to_numpy(dtype=float)
    moves, lstsq = _conditional_moves(shocks.reindex(order).to_numpy(dtype=float)[None, :], cov[None])
    out = pd.Series(moves[0, 0], index=pd.Index(order, dtype=object), dtype=float)
    out.attrs["method"] = "lstsq" if lstsq[0, 0] else "solve"
    return out


# --- inputs as (date x position [x factor]) grids ---------------------------------------------------------


def _positions_of(frame: pd.DataFrame, dates: pd.DatetimeIndex, ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Row -> (date index, position index) for a frame with ``position_id`` (and optionally ``date``);
    undated rows hold on every date (date index -1). Rows of other dates or positions are marked -2."""
    pos = ids.get_indexer(frame["position_id"])
    if "date" in frame.columns:
        t = dates.get_indexer(pd.DatetimeIndex(frame["date"]))
        bad = (t < 0) | (pos < 0)
    else:
        t = np.full(len(frame), -1)
        bad = pos < 0
    t = np.where(bad, -2, t)
    return t, pos


def _scatter(grid: np.ndarray, t: np.ndarray, pos: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Write row values into a (T, n, ...) grid: dated rows on their date, undated rows on every date."""
    dated, undated = t >= 0, t == -1
    grid[:, pos[undated]] = values[undated]
    grid[t[dated], pos[dated]] = values[dated]
    return grid


def _position_grid(frame: pd.DataFrame, dates: pd.DatetimeIndex, ids: pd.Index, column: str) -> np.ndarray:
    t, pos = _positions_of(frame, dates, ids)
    values = frame[column].to_numpy(dtype=float)
    return _scatter(np.full((len(dates), len(ids)), np.nan), t, pos, values)


def _beta_factor_names(position_betas) -> list:
    if isinstance(position_betas, Mapping):
        return list(dict.fromkeys(f for obj in position_betas.values() for f in _beta_factor_names(obj)))
    if {"position_id", "factor_name", "beta"}.issubset(position_betas.columns):
        return list(dict.fromkeys(position_betas["factor_name"]))
    return [c for c in position_betas.columns if c not in ("date", "position_id")]


def _beta_grid(position_betas, dates: pd.DatetimeIndex, ids: pd.Index, factors: list) -> np.ndarray:
    """(T, n, K) betas from long rows ``[date,] position_id, factor_name, beta``, wide (position x factor,
    indexed or with a ``position_id`` column, optionally dated) or a mapping {date: either}."""
    grid = np.full((len(dates), len(ids), len(factors)), np.nan)
    if isinstance(position_betas, Mapping):
        for j, d in enumerate(dates):  # one object per date: the loop is over dates, not rows
            grid[j] = _beta_grid(_for_date(position_betas, d), dates[j : j + 1], ids, factors)[0]
        return grid
    if {"position_id", "factor_name", "beta"}.issubset(position_betas.columns):
        t, pos = _positions_of(position_betas, dates, ids)
        k = pd.Index(factors).get_indexer(position_betas["factor_name"])
        t = np.where(k < 0, -2, t)
        values = position_betas["beta"].to_numpy(dtype=float)
        dated, undated = t >= 0, t == -1
        grid[:, pos[undated], k[undated]] = values[undated]
        grid[t[dated], pos[dated], k[dated]] = values[dated]
        return grid
    wide = position_betas if "position_id" in position_betas.columns else position_betas.rename_axis("position_id").reset_index()
    t, pos = _positions_of(wide, dates, ids)
    cols = [f for f in factors if f in wide.columns]
    return _scatter(grid, t, pos, _values_on(wide, cols, factors))


def _values_on(wide: pd.DataFrame, cols: list, factors: list) -> np.ndarray:
    out = np.full((len(wide), len(factors)), np.nan)
    out[:, [factors.index(c) for c in cols]] = wide[cols].to_numpy(dtype=float)
    return out


def _rate_beta_grid(rate_betas, dates: pd.DatetimeIndex, ids: pd.Index) -> np.ndarray:
    """(T, n) rate betas from a Series position_id -> beta, a frame ``[date,] position_id, rate_beta`` or a
    mapping {date: either}."""
    if isinstance(rate_betas, Mapping):
        return np.vstack([_rate_beta_grid(_for_date(rate_betas, d), dates[j : j + 1], ids) for j, d in enumerate(dates)]) \
            if len(dates) else np.zeros((0, len(ids)))
    if not isinstance(rate_betas, pd.DataFrame):
        rate_betas = pd.Series(rate_betas, dtype=float).rename("rate_beta").rename_axis("position_id").reset_index()
    return _position_grid(rate_betas, dates, ids, "rate_beta")


def _cov_factor_names(factor_cov) -> list:
    if isinstance(factor_cov, Mapping):
        return list(dict.fromkeys(f for c in factor_cov.values() for f in _cov_factor_names(c)))
    if {"factor_a", "factor_b", "covariance"}.issubset(factor_cov.columns):
        return list(dict.fromkeys([*factor_cov["factor_a"], *factor_cov["factor_b"]]))
    return list(factor_cov.index)


def _cov_grid(factor_cov, dates: pd.DatetimeIndex, factors: list) -> np.ndarray:
    """(T, K, K) covariance: a square frame for every date, a mapping {date: square frame}, or the long
    ``factor_correlations`` rows (``date, factor_a, factor_b, covariance``, upper triangle) of every date.
    A date with no covariance is an error, not a silent zero."""
    if isinstance(factor_cov, Mapping):
        missing = [d for d in dates if d not in factor_cov]
        if missing:
            raise ValueError(f"no factor covariance for {', '.join(f'{d:%Y-%m-%d}' for d in missing[:5])}")
        stack = [factor_cov[d].reindex(index=factors, columns=factors).to_numpy(dtype=float) for d in dates]
        return np.stack(stack) if stack else np.zeros((0, len(factors), len(factors)))
    if {"factor_a", "factor_b", "covariance"}.issubset(factor_cov.columns):
        from .factors import covariance_stack  # one place rebuilds the matrix from the stored triangle

        stack = covariance_stack(factor_cov, dates, factors)
        missing = dates[np.isnan(stack).all(axis=(1, 2))]
        if len(missing):
            raise ValueError(f"no factor covariance for {', '.join(f'{d:%Y-%m-%d}' for d in missing[:5])}")
        return stack
    square = factor_cov.reindex(index=factors, columns=factors).to_numpy(dtype=float)
    return np.broadcast_to(square, (len(dates), len(factors), len(factors)))


def _notes(*parts: np.ndarray) -> np.ndarray:
    """Join per-cell note strings with ';' (empty parts skipped); a cell with no note is "ok"."""
    out = np.asarray(parts[0], dtype=str)
    for part in parts[1:]:
        part = np.asarray(part, dtype=str)
        sep = np.where((out != "") & (part != ""), ";", "")
        out = np.strings.add(np.strings.add(out, sep), part)
    return np.where(out == "", "ok", out)


def _count_note(label: str, counts: np.ndarray) -> np.ndarray:
    return np.where(counts > 0, np.strings.add(f"{label}=", counts.astype(str)), "")


def stress_test(
    positions: pd.DataFrame,
    valuations_at_date: pd.DataFrame,
    greeks_at_date: pd.DataFrame,
    position_betas: pd.DataFrame,
    rate_betas: pd.Series | pd.DataFrame,
    factor_cov: pd.DataFrame,
    scenarios: pd.DataFrame,
    shocks: pd.DataFrame,
    short_rate: pd.Series | float,
    as_of,
    cap_losses: bool = False,
) -> StressResult:
    """Run every scenario on the book held at ``as_of`` (see the module docstring for the model).

    Inputs: ``valuations_at_date`` / ``greeks_at_date`` are ``value_positions`` / ``position_greeks`` rows
    (filtered to ``as_of`` when they carry a ``date`` column); ``position_betas`` is (position_id x factor)
    or long ``position_id, factor_name, beta``; ``rate_betas`` is a Series position_id -> return per +1 bp
    (or a frame ``position_id, rate_beta``); ``short_rate`` is the ^IRX level in percent (scalar or a
    Series by date; the value at or before ``as_of`` is used).

    Missing data is never made up: a position without a price (or an option without model inputs: no
    underlying close or no vol) has NaN position P&L, is left out of the totals and counted in ``flag``
    ("missing_price=n"); missing betas / rate betas count as 0 exposure and
    are counted ("missing_beta=n", "missing_rate_beta=n"). A loss larger than gross exposure adds
    "loss_exceeds_gross". With ``cap_losses=True`` such a loss is capped at -gross for display, the factor
    rows and position rows scaled by the same ratio, ``loss_cap_applied`` True and "loss_capped" in flag.
    A loss larger than the book's equity sets ``exceeds_equity`` and adds "loss_exceeds_equity" (decided on
    the uncapped loss); a non-positive equity adds "equity_nonpositive" and leaves ``pct_of_equity`` NULL.
    ``shocks`` may name ``"VIX"`` (a relative change of the VIX level; see the module docstring).

    Returns ``StressResult(results, factor_breakdown, position_pnl)`` with ``RESULT_COLUMNS``,
    ``BREAKDOWN_COLUMNS`` and ``POSITION_PNL_COLUMNS``.
    """
    return stress_test_range(
        positions, valuations_at_date, greeks_at_date, position_betas, rate_betas, factor_cov, scenarios, shocks,
        short_rate, [as_of], cap_losses=cap_losses,
    )


def _for_date(obj, as_of: pd.Timestamp):
    if isinstance(obj, Mapping):
        if as_of not in obj:
            raise ValueError(f"no input for {as_of:%Y-%m-%d}")
        return obj[as_of]
    return obj


def stress_test_range(
    positions: pd.DataFrame,
    valuations: pd.DataFrame,
    greeks: pd.DataFrame,
    position_betas,
    rate_betas,
    factor_cov,
    scenarios: pd.DataFrame,
    shocks: pd.DataFrame,
    short_rate: pd.Series | float,
    dates,
    cap_losses: bool = False,
) -> StressResult:
    """:func:`stress_test` for every as-of date, vectorised across dates, positions and scenarios.

    The book on a date is the ``valuations`` rows of that date (rows without a ``date`` column hold on
    every date). ``position_betas``, ``rate_betas`` and ``factor_cov`` are either one object for every
    date, a mapping ``{Timestamp: object}``, or dated rows (betas and covariance are estimated per date
    over their own window); ``factor_cov`` may also be the stored ``factor_correlations`` rows. Output rows
    are ordered by date, then scenario (then factor row or position).
    """
    dates = pd.DatetimeIndex(dates)
    n_dates = len(dates)

    # --- scenarios and shock matrices ---------------------------------------------------------------
    scen_ids = list(scenarios["scenario_id"])
    unknown_scen = set(shocks["scenario_id"]) - set(scen_ids)
    if unknown_scen:
        raise ValueError(f"shocks reference unknown scenarios: {sorted(unknown_scen)}")
    factors = list(dict.fromkeys([*_cov_factor_names(factor_cov), *_beta_factor_names(position_betas), *EQUITY_FACTORS]))
    if VIX_SHOCK in factors:
        raise ValueError(f"{VIX_SHOCK!r} is the VIX-level shock, not a factor name")
    unknown_f = set(shocks["factor_name"]) - set(factors) - {RATE_FACTOR, VIX_SHOCK}
    if unknown_f:
        raise ValueError(f"shocks name unknown factors {sorted(unknown_f)}; known: {factors + [RATE_FACTOR, VIX_SHOCK]}")
    wide = shocks.pivot_table(index="scenario_id", columns="factor_name", values="shock", aggfunc="sum")
    wide = wide.reindex(index=scen_ids)
    named = wide.reindex(columns=factors).to_numpy(dtype=float)  # (s, K), NaN = not named
    D = np.nan_to_num(named, nan=0.0)
    dy = (wide[RATE_FACTOR] if RATE_FACTOR in wide else pd.Series(0.0, index=scen_ids)).fillna(0.0).to_numpy()
    bp = dy * 1e4
    vix_row = bool((shocks["factor_name"] == VIX_SHOCK).any())  # a "VIX" breakdown row for every scenario
    vix = (wide[VIX_SHOCK] if VIX_SHOCK in wide else pd.Series(np.nan, index=scen_ids)).to_numpy(dtype=float)  # (s,)
    C, lstsq = _conditional_moves(named, _cov_grid(factor_cov, dates, factors))  # (T, s, K), (T, s)

    # --- positions as (date x position) grids --------------------------------------------------------
    ids = pd.Index(pd.unique(valuations["position_id"]))
    n = len(ids)
    t_val, p_val = _positions_of(valuations, dates, ids)
    present = _scatter(np.zeros((n_dates, n), dtype=bool), t_val, p_val, np.ones(len(valuations), dtype=bool))
    mv = _position_grid(valuations, dates, ids, "market_value")
    if positions["position_id"].duplicated().any():
        raise ValueError("duplicate position_id in positions")
    book = positions.set_index("position_id").reindex(ids)
    scale = book["quantity"].to_numpy(dtype=float) * book["multiplier"].to_numpy(dtype=float)
    is_opt = _as_bool(book["is_option"])
    # (n, s): a VIX option in a scenario that shocks the VIX moves with the VIX level, not with its betas
    on_vix = is_opt & (book["underlying_symbol"].astype(object) == VIX_UNDERLYING).to_numpy(dtype=bool)
    vix_moves = on_vix[:, None] & ~np.isnan(vix)[None, :]
    by_betas = ~vix_moves
    B_raw = _beta_grid(position_betas, dates, ids, factors)
    missing_beta = (present & np.isnan(B_raw).all(axis=2)).sum(axis=1)
    B = np.nan_to_num(B_raw, nan=0.0)
    rb_raw = _rate_beta_grid(rate_betas, dates, ids)
    missing_rate_beta = (present & np.isnan(rb_raw)).sum(axis=1)
    rb = np.nan_to_num(rb_raw, nan=0.0)

    # option inputs and today's model value, delta, rho (one Black-Scholes call over dates x options)
    o = np.flatnonzero(is_opt)
    S = _position_grid(greeks, dates, ids, "underlying_price")[:, o]
    sig = _position_grid(greeks, dates, ids, "implied_vol")[:, o]
    T = _position_grid(greeks, dates, ids, "days_to_expiry")[:, o] / 365.0
    # the dividend yield the Greeks used (Black-Scholes-Merton; 0 on rows written before it was stored)
    q = (np.nan_to_num(_position_grid(greeks, dates, ids, "dividend_yield")[:, o], nan=0.0)
         if "dividend_yield" in greeks else np.zeros_like(T))
    K = book["strike"].to_numpy(dtype=float)[o]
    call = (book["option_type"].astype(object) == "C").to_numpy(dtype=bool)[o]
    r = _rate_decimal(short_rate, dates) if n_dates else np.zeros(0)
    g0 = bs_greeks(S, K[None, :], T, r[:, None], sig, call[None, :], q=q)
    v0 = g0["price"]
    exposure = mv.copy()  # linear exposure E_i
    exposure[:, o] = g0["delta"] * scale[o] * S
    rho_pos = np.zeros((n_dates, n))
    rho_pos[:, o] = g0["rho"] * scale[o]
    valid = present & ~np.isnan(mv)
    valid[:, o] = present[:, o] & ~np.isnan(v0)
    E = np.where(valid, exposure, 0.0)
    rho_carry = np.where(valid, rho_pos, 0.0).sum(axis=1)[:, None] * dy[None, :] * 100.0
    if vix_moves.any():
        rate_carry = np.einsum("tn,ns->ts", E * rb, by_betas.astype(float)) * bp[None, :] + rho_carry
        vix_linear = np.einsum("tn,ns->ts", E, vix_moves * np.nan_to_num(vix)[None, :])  # (T, s)
    else:
        rate_carry = (E * rb).sum(axis=1)[:, None] * bp[None, :] + rho_carry
        vix_linear = np.zeros((n_dates, len(scen_ids)))

    def run(shock: np.ndarray):
        """P&L of every (date, position, scenario) under the (T, s, K) factor moves ``shock``."""
        ret = np.einsum("tnk,tsk->tns", B, shock) + rb[:, :, None] * bp[None, None, :]  # (T, n, s)
        if vix_moves.any():
            ret = np.where(vix_moves[None], vix[None, None, :], ret)
        pnl = mv[:, :, None] * ret
        lin = exposure[:, :, None] * ret + rho_pos[:, :, None] * (dy * 100.0)[None, None, :]
        if len(o):
            s_new = np.maximum(S[:, :, None] * (1.0 + ret[:, o]), 0.0)
            v1 = bs_price(s_new, K[None, :, None], T[:, :, None], r[:, None, None] + dy[None, None, :], sig[:, :, None],
                          call[None, :, None], q=q[:, :, None])
            pnl[:, o] = (v1 - v0[:, :, None]) * scale[o][None, :, None]
        pnl[~valid] = np.nan
        lin = np.where(valid[:, :, None], lin, 0.0)
        if vix_moves.any():  # the VIX options of a VIX scenario are not in the factor rows
            factor_rows = np.einsum("tn,tnk,ns->tsk", E, B, by_betas.astype(float)) * shock
        else:
            factor_rows = np.einsum("tn,tnk->tk", E, B)[:, None, :] * shock  # (T, s, K) linear per factor
        convex = np.where(valid[:, o, None], pnl[:, o] - lin[:, o], 0.0).sum(axis=1)  # (T, s)
        total = np.nansum(pnl, axis=1)  # (T, s)
        return pnl, total, factor_rows, convex

    pnl_d, tot_d, fac_d, cvx_d = run(np.broadcast_to(D, (n_dates, *D.shape)))
    pnl_c, tot_c, fac_c, cvx_c = run(C)

    held_mv = np.where(present, mv, np.nan)
    gross = np.nansum(np.abs(held_mv), axis=1)  # (T,)
    equity = np.nansum(held_mv, axis=1)  # (T,) net liquidation value = portfolio_exposures.net_exposure
    worst = np.minimum(tot_d, tot_c)
    exceeds = worst < -gross[:, None]
    beyond_equity = loss_exceeds_equity(worst, equity[:, None])
    no_equity = np.broadcast_to((equity <= 0)[:, None], worst.shape)
    ratio_d = np.ones_like(tot_d)
    ratio_c = np.ones_like(tot_c)
    if cap_losses:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_d = np.where(tot_d < -gross[:, None], -gross[:, None] / tot_d, 1.0)
            ratio_c = np.where(tot_c < -gross[:, None], -gross[:, None] / tot_c, 1.0)
    capped = (ratio_d < 1.0) | (ratio_c < 1.0)

    # --- outputs: rows by date, then scenario ------------------------------------------------------------
    n_scen = len(scen_ids)
    per_date = lambda a: np.broadcast_to(a[:, None], (n_dates, n_scen))  # noqa: E731
    flags = _notes(
        per_date(_count_note("missing_price", (present & ~valid).sum(axis=1))),
        per_date(_count_note("missing_beta", missing_beta)),
        per_date(_count_note("missing_rate_beta", missing_rate_beta)),
        np.where(lstsq, "singular_cov_lstsq", ""),
        np.where(exceeds, "loss_exceeds_gross", ""),
        np.where(capped, "loss_capped", ""),
        np.where(no_equity, "equity_nonpositive", ""),
        np.where(beyond_equity, "loss_exceeds_equity", ""),
    )
    direct_total = tot_d * ratio_d
    corr_total = tot_c * ratio_c
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(gross[:, None] > 0, corr_total / gross[:, None], np.nan)
        pct_equity = np.where(equity[:, None] > 0, corr_total / equity[:, None], np.nan)
    scen_arr = np.asarray(scen_ids, dtype=object)
    results = pd.DataFrame(
        {
            "date": np.repeat(dates, n_scen),
            "scenario_id": np.tile(scen_arr, n_dates),
            "direct_pnl": direct_total.ravel() + 0.0,
            "correlated_pnl": corr_total.ravel() + 0.0,
            "correlation_effect": (corr_total - direct_total).ravel(),
            "pct_of_gross_exposure": pct.ravel(),
            "gross_exposure": np.repeat(gross, n_scen),
            "pct_of_equity": pct_equity.ravel(),
            "equity": np.repeat(equity, n_scen) + 0.0,
            "exceeds_equity": beyond_equity.ravel(),
            "loss_cap_applied": capped.ravel(),
            "flag": flags.ravel().astype(object),
        },
        columns=RESULT_COLUMNS,
    )

    vix_names, vix_cols, vix_pnl = [], [], []
    if vix_row:  # the VIX row: shock and implied move are the VIX shock (0 where none), P&L its linear part
        vix_names = [VIX_SHOCK]
        vix_cols = [np.broadcast_to(np.nan_to_num(vix)[None, :, None], (n_dates, n_scen, 1))]
        vix_pnl = [vix_linear[:, :, None]]
    row_names = np.asarray([*factors, RATE_FACTOR, *vix_names, CONVEXITY_ROW], dtype=object)
    n_rows = len(row_names)
    rate_col = np.broadcast_to(dy[None, :, None], (n_dates, n_scen, 1))
    blank = np.full((n_dates, n_scen, 1), np.nan)
    shock_part = np.concatenate([np.broadcast_to(D, (n_dates, *D.shape)), rate_col, *vix_cols, blank], axis=2)
    implied_part = np.concatenate([C, rate_col, *vix_cols, blank], axis=2)
    bd_direct = np.concatenate([fac_d, rate_carry[:, :, None], *vix_pnl, cvx_d[:, :, None]], axis=2) * ratio_d[:, :, None]
    bd_corr = np.concatenate([fac_c, rate_carry[:, :, None], *vix_pnl, cvx_c[:, :, None]], axis=2) * ratio_c[:, :, None]
    breakdown = pd.DataFrame(
        {
            "date": np.repeat(dates, n_scen * n_rows),
            "scenario_id": np.tile(np.repeat(scen_arr, n_rows), n_dates),
            "factor_name": np.tile(row_names, n_dates * n_scen),
            "shock": shock_part.ravel(),
            "implied_move": implied_part.ravel(),
            "direct_pnl": bd_direct.ravel() + 0.0,  # + 0.0 turns -0.0 into 0.0
            "correlated_pnl": bd_corr.ravel() + 0.0,
        },
        columns=BREAKDOWN_COLUMNS,
    )

    held = np.broadcast_to(present[:, None, :], (n_dates, n_scen, n))  # (T, s, n): the book of each date
    position_pnl = pd.DataFrame(
        {
            "date": np.broadcast_to(np.asarray(dates)[:, None, None], held.shape)[held],
            "scenario_id": np.broadcast_to(scen_arr[None, :, None], held.shape)[held],
            "position_id": np.broadcast_to(ids.to_numpy()[None, None, :], held.shape)[held],
            "direct_pnl": (pnl_d * ratio_d[:, None, :]).transpose(0, 2, 1)[held] + 0.0,
            "correlated_pnl": (pnl_c * ratio_c[:, None, :]).transpose(0, 2, 1)[held] + 0.0,
        },
        columns=POSITION_PNL_COLUMNS,
    )
    return StressResult(results, breakdown, position_pnl)


def loss_exceeds_equity(pnl, equity) -> np.ndarray:
    """Where a scenario P&L is a loss larger than the book's equity (broadcasting ``pnl`` and ``equity``):
    ``pnl < -equity`` when equity > 0, and any loss (``pnl < 0``) when equity <= 0. An unknown P&L or
    equity (NaN) is never flagged. The one rule for ``stress_results.exceeds_equity`` and the equity check."""
    pnl = np.asarray(pnl, dtype=float)
    equity = np.asarray(equity, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(equity > 0, pnl < -equity, pnl < 0) & ~np.isnan(equity)


def equity_loss_rows(results: pd.DataFrame, exposures: pd.DataFrame) -> pd.DataFrame:
    """Scenario rows whose loss (the worse of direct and correlated P&L) is larger than the book's equity.

    Equity is ``exposures.net_exposure`` of the row's date (the book's net liquidation value: the signed
    market values of its priced positions; no cash is modelled), matched on ``date``; a date without an
    exposures row is not judged. Such a loss is possible for any levered or long/short book: it is a warning
    to read, not a model error. Returns the offending ``results`` rows plus ``book_equity``.
    """
    ex = exposures[["date", "net_exposure"]].rename(columns={"net_exposure": "book_equity"})
    merged = results.merge(ex, on="date", how="left")
    worst = np.minimum(merged["direct_pnl"].to_numpy(dtype=float), merged["correlated_pnl"].to_numpy(dtype=float))
    keep = loss_exceeds_equity(worst, merged["book_equity"].to_numpy(dtype=float))
    return merged.loc[keep].reset_index(drop=True)


def loss_cap_violations(results: pd.DataFrame, exposures: pd.DataFrame, long_only_only: bool = True) -> pd.DataFrame:
    """Scenario rows whose loss (direct or correlated) is larger than the book's gross exposure.

    For an unlevered long-only book (no short positions on that date: ``short_count == 0``) such a loss
    is impossible and marks a model error (``violation`` "model_error"). Books with shorts can lose more
    than gross; with ``long_only_only=False`` they are returned too, as "review". Rows already capped for
    display (``loss_cap_applied``) are returned as well, since their uncapped loss exceeded the cap.

    ``exposures`` is ``portfolio_exposures`` output; rows are matched on ``date``. Returns the offending
    ``results`` rows plus ``book_gross_exposure``, ``long_only`` and ``violation``.
    """
    ex = exposures[["date", "gross_exposure", "short_count"]].rename(columns={"gross_exposure": "book_gross_exposure"})
    merged = results.merge(ex, on="date", how="left")
    worst = np.minimum(merged["direct_pnl"], merged["correlated_pnl"])
    breach = (worst < -merged["book_gross_exposure"]) | merged["loss_cap_applied"].astype(bool)
    merged["long_only"] = merged["short_count"].fillna(0).eq(0)
    merged["violation"] = np.where(merged["long_only"], "model_error", "review")
    keep = breach & (merged["long_only"] | (not long_only_only))
    return merged.loc[keep].drop(columns=["short_count"]).reset_index(drop=True)
