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

Percent of equity: ``pct_of_equity = correlated_pnl / gross_exposure`` (the base is the book's gross
exposure, sum of |market value| of priced positions, given in column ``gross_exposure``).
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
]

RATE_FACTOR = "Interest Rate"
CONVEXITY_ROW = "Option convexity"
EQUITY_FACTORS = list(factor_proxies())  # data/factors.yaml
SINGULAR_COND = 1e12  # above this condition number S_ss is treated as singular (lstsq / pseudo-inverse)

RESULT_COLUMNS = [
    "date",
    "scenario_id",
    "direct_pnl",
    "correlated_pnl",
    "correlation_effect",
    "pct_of_equity",
    "gross_exposure",
    "loss_cap_applied",
    "flag",
]
BREAKDOWN_COLUMNS = ["date", "scenario_id", "factor_name", "shock", "implied_move", "direct_pnl", "correlated_pnl"]
POSITION_PNL_COLUMNS = ["date", "scenario_id", "position_id", "direct_pnl", "correlated_pnl"]


class StressResult(NamedTuple):
    results: pd.DataFrame
    factor_breakdown: pd.DataFrame
    position_pnl: pd.DataFrame


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
    square = factor_cov.reindex(index=cov_factors, columns=cov_factors)
    keep = list(cov_factors)
    while keep and square.loc[keep, keep].isna().to_numpy().any():  # drop the factor with most NaN first
        keep.remove(square.loc[keep, keep].isna().sum(axis=1).idxmax())
    cov = square.loc[keep, keep].to_numpy(dtype=float)
    s_idx = [i for i, f in enumerate(keep) if f in shocks.index]
    u_idx = [i for i, f in enumerate(keep) if f not in shocks.index]

    order = cov_factors + [f for f in shocks.index if f not in cov_factors]
    out = pd.Series(0.0, index=pd.Index(order, dtype=object), dtype=float)
    method = "solve"
    if s_idx and u_idx:
        f_s = shocks.reindex([keep[i] for i in s_idx]).to_numpy(dtype=float)
        s_ss = cov[np.ix_(s_idx, s_idx)]
        s_us = cov[np.ix_(u_idx, s_idx)]
        if np.linalg.cond(s_ss) < SINGULAR_COND:
            x = np.linalg.solve(s_ss, f_s)
        else:
            x = np.linalg.lstsq(s_ss, f_s, rcond=None)[0]
            method = "lstsq"
        out.loc[[keep[i] for i in u_idx]] = s_us @ x
    out.loc[list(shocks.index)] = shocks.to_numpy()
    out.attrs["method"] = method
    return out


def _on_date(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    if "date" in frame.columns:
        frame = frame[pd.DatetimeIndex(frame["date"]) == as_of]
    return frame


def _betas_wide(position_betas: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Accept (position_id x factor) wide betas or long rows ``[date,] position_id, factor_name, beta``
    (e.g. ``factors.position_factor_exposures`` output; rows of other dates are ignored)."""
    position_betas = _on_date(position_betas, as_of)
    if {"position_id", "factor_name", "beta"}.issubset(position_betas.columns):
        return position_betas.pivot_table(index="position_id", columns="factor_name", values="beta", aggfunc="last")
    if "position_id" in position_betas.columns:
        return position_betas.set_index("position_id")
    return position_betas


def _rate_beta_series(rate_betas, as_of: pd.Timestamp) -> pd.Series:
    """A Series position_id -> rate beta, or a frame ``[date,] position_id, rate_beta``
    (e.g. ``rates.position_rate_sensitivity`` output; rows of other dates are ignored)."""
    if isinstance(rate_betas, pd.DataFrame):
        return _on_date(rate_betas, as_of).set_index("position_id")["rate_beta"]
    return pd.Series(rate_betas, dtype=float)


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

    Returns ``StressResult(results, factor_breakdown, position_pnl)`` with ``RESULT_COLUMNS``,
    ``BREAKDOWN_COLUMNS`` and ``POSITION_PNL_COLUMNS``.
    """
    as_of = pd.Timestamp(as_of)
    vals = _on_date(valuations_at_date, as_of)
    greeks = _on_date(greeks_at_date, as_of)

    # --- scenarios and shock matrices ---------------------------------------------------------------
    scen_ids = list(scenarios["scenario_id"])
    unknown_scen = set(shocks["scenario_id"]) - set(scen_ids)
    if unknown_scen:
        raise ValueError(f"shocks reference unknown scenarios: {sorted(unknown_scen)}")
    betas = _betas_wide(position_betas, as_of)
    known = list(dict.fromkeys([*factor_cov.index, *betas.columns, *EQUITY_FACTORS]))
    unknown_f = set(shocks["factor_name"]) - set(known) - {RATE_FACTOR}
    if unknown_f:
        raise ValueError(f"shocks name unknown factors {sorted(unknown_f)}; known: {known + [RATE_FACTOR]}")
    factors = known
    wide = shocks.pivot_table(index="scenario_id", columns="factor_name", values="shock", aggfunc="sum")
    wide = wide.reindex(index=scen_ids)
    direct = wide.reindex(columns=factors).fillna(0.0)  # (s, K)
    dy = (wide[RATE_FACTOR] if RATE_FACTOR in wide else pd.Series(0.0, index=scen_ids)).fillna(0.0).to_numpy()
    bp = dy * 1e4
    methods = []
    corr_rows = []
    for sid in scen_ids:
        named = wide.loc[sid].dropna()
        named = named[named.index != RATE_FACTOR]
        moves = conditional_factor_moves(named, factor_cov)
        methods.append(moves.attrs.get("method", "solve"))
        corr_rows.append(moves.reindex(factors).fillna(0.0).to_numpy())
    D = direct.to_numpy(dtype=float)
    C = np.vstack(corr_rows) if corr_rows else np.zeros((0, len(factors)))

    # --- positions ---------------------------------------------------------------------------------
    book = vals[["position_id", "market_value"]].merge(
        positions[["position_id", "quantity", "multiplier", "is_option", "option_type", "strike"]],
        on="position_id",
        how="left",
        validate="one_to_one",
    )
    book = book.merge(
        greeks[["position_id", "underlying_price", "implied_vol", "days_to_expiry"]], on="position_id", how="left"
    )
    ids = book["position_id"].to_numpy()
    n = len(book)
    mv = book["market_value"].to_numpy(dtype=float)
    scale = book["quantity"].to_numpy(dtype=float) * book["multiplier"].to_numpy(dtype=float)
    is_opt = _as_bool(book["is_option"])
    B_raw = betas.reindex(index=ids, columns=factors).to_numpy(dtype=float)
    missing_beta = int(np.isnan(B_raw).all(axis=1).sum())
    B = np.nan_to_num(B_raw, nan=0.0)
    rb_raw = _rate_beta_series(rate_betas, as_of).reindex(ids).to_numpy(dtype=float)
    missing_rate_beta = int(np.isnan(rb_raw).sum())
    rb = np.nan_to_num(rb_raw, nan=0.0)

    # option inputs and today's model value, delta, rho (one Black-Scholes call)
    o = np.flatnonzero(is_opt)
    S = book["underlying_price"].to_numpy(dtype=float)[o]
    K = book["strike"].to_numpy(dtype=float)[o]
    T = book["days_to_expiry"].to_numpy(dtype=float)[o] / 365.0
    sig = book["implied_vol"].to_numpy(dtype=float)[o]
    call = (book["option_type"].astype(object) == "C").to_numpy(dtype=bool)[o]
    r = float(_rate_decimal(short_rate, pd.DatetimeIndex([as_of]))[0])
    g0 = bs_greeks(S, K, T, r, sig, call)
    v0 = g0["price"]
    exposure = mv.copy()  # linear exposure E_i
    exposure[o] = g0["delta"] * scale[o] * S
    rho_pos = np.zeros(n)
    rho_pos[o] = g0["rho"] * scale[o]
    valid = ~np.isnan(mv)
    valid[o] = ~np.isnan(v0)

    def run(shock_matrix: np.ndarray):
        ret = B @ shock_matrix.T + rb[:, None] * bp[None, :]  # (n, s)
        pnl = mv[:, None] * ret
        lin = exposure[:, None] * ret + rho_pos[:, None] * (dy * 100.0)[None, :]
        if len(o):
            s_new = np.maximum(S[:, None] * (1.0 + ret[o]), 0.0)
            v1 = bs_price(s_new, K[:, None], T[:, None], r + dy[None, :], sig[:, None], call[:, None])
            pnl[o] = (v1 - v0[:, None]) * scale[o][:, None]
        pnl[~valid] = np.nan
        lin = np.where(valid[:, None], lin, 0.0)
        E = np.where(valid, exposure, 0.0)
        factor_rows = (E @ B)[None, :] * shock_matrix  # (s, K) linear per factor
        rate_row = (E * rb).sum() * bp + rho_pos[valid].sum() * dy * 100.0
        convex = np.where(valid[o][:, None], pnl[o] - lin[o], 0.0).sum(axis=0) if len(o) else np.zeros(len(bp))
        total = np.nansum(pnl, axis=0)
        return pnl, total, factor_rows, rate_row, convex

    pnl_d, tot_d, fac_d, rate_d, cvx_d = run(D)
    pnl_c, tot_c, fac_c, rate_c, cvx_c = run(C)

    gross = float(np.nansum(np.abs(mv)))
    worst = np.minimum(tot_d, tot_c)
    exceeds = worst < -gross
    ratio_d = np.ones(len(scen_ids))
    ratio_c = np.ones(len(scen_ids))
    if cap_losses:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_d = np.where(tot_d < -gross, -gross / tot_d, 1.0)
            ratio_c = np.where(tot_c < -gross, -gross / tot_c, 1.0)
    capped = (ratio_d < 1.0) | (ratio_c < 1.0)

    # --- outputs -------------------------------------------------------------------------------------
    notes_common = []
    n_missing = int((~valid).sum())
    if n_missing:
        notes_common.append(f"missing_price={n_missing}")
    if missing_beta:
        notes_common.append(f"missing_beta={missing_beta}")
    if missing_rate_beta:
        notes_common.append(f"missing_rate_beta={missing_rate_beta}")
    flags = []
    for j in range(len(scen_ids)):
        notes = list(notes_common)
        if methods[j] == "lstsq":
            notes.append("singular_cov_lstsq")
        if exceeds[j]:
            notes.append("loss_exceeds_gross")
        if capped[j]:
            notes.append("loss_capped")
        flags.append(";".join(notes) if notes else "ok")

    direct_total = tot_d * ratio_d
    corr_total = tot_c * ratio_c
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = corr_total / gross if gross > 0 else np.full(len(scen_ids), np.nan)
    results = pd.DataFrame(
        {
            "date": as_of,
            "scenario_id": scen_ids,
            "direct_pnl": direct_total + 0.0,
            "correlated_pnl": corr_total + 0.0,
            "correlation_effect": corr_total - direct_total,
            "pct_of_equity": pct,
            "gross_exposure": gross,
            "loss_cap_applied": capped,
            "flag": flags,
        },
        columns=RESULT_COLUMNS,
    )

    row_names = [*factors, RATE_FACTOR, CONVEXITY_ROW]
    n_rows = len(row_names)
    shock_part = np.column_stack([D, dy, np.full(len(scen_ids), np.nan)]) if scen_ids else np.zeros((0, n_rows))
    implied_part = np.column_stack([C, dy, np.full(len(scen_ids), np.nan)]) if scen_ids else np.zeros((0, n_rows))
    bd_direct = np.column_stack([fac_d, rate_d, cvx_d]) * ratio_d[:, None] if scen_ids else shock_part
    bd_corr = np.column_stack([fac_c, rate_c, cvx_c]) * ratio_c[:, None] if scen_ids else shock_part
    breakdown = pd.DataFrame(
        {
            "date": as_of,
            "scenario_id": np.repeat(np.asarray(scen_ids, dtype=object), n_rows),
            "factor_name": np.tile(np.asarray(row_names, dtype=object), len(scen_ids)),
            "shock": shock_part.ravel(),
            "implied_move": implied_part.ravel(),
            "direct_pnl": bd_direct.ravel() + 0.0,  # + 0.0 turns -0.0 into 0.0
            "correlated_pnl": bd_corr.ravel() + 0.0,
        },
        columns=BREAKDOWN_COLUMNS,
    )

    position_pnl = pd.DataFrame(
        {
            "date": as_of,
            "scenario_id": np.repeat(np.asarray(scen_ids, dtype=object), n),
            "position_id": np.tile(ids, len(scen_ids)),
            "direct_pnl": (pnl_d * ratio_d[None, :]).T.ravel() + 0.0,
            "correlated_pnl": (pnl_c * ratio_c[None, :]).T.ravel() + 0.0,
        },
        columns=POSITION_PNL_COLUMNS,
    )
    return StressResult(results, breakdown, position_pnl)


def _for_date(obj, as_of: pd.Timestamp):
    if isinstance(obj, Mapping):
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
    """``stress_test`` for each as-of date (each date vectorised), concatenated.

    ``position_betas``, ``rate_betas`` and ``factor_cov`` are either one object for every date or a
    mapping ``{Timestamp: object}`` (betas and covariance are estimated per date over their own window).
    """
    parts = [
        stress_test(
            positions,
            valuations,
            greeks,
            _for_date(position_betas, d),
            _for_date(rate_betas, d),
            _for_date(factor_cov, d),
            scenarios,
            shocks,
            short_rate,
            d,
            cap_losses=cap_losses,
        )
        for d in pd.DatetimeIndex(dates)
    ]
    if not parts:
        empty = [pd.DataFrame(columns=c) for c in (RESULT_COLUMNS, BREAKDOWN_COLUMNS, POSITION_PNL_COLUMNS)]
        return StressResult(*empty)
    return StressResult(*(pd.concat([getattr(p, f) for p in parts], ignore_index=True) for f in StressResult._fields))


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
