"""Batched rolling OLS: the one place in the pipeline that fits ``y = a + X b``.

The factor engine (seven regressors) and the rate engine (one regressor) both call
:func:`rolling_ols`. It fits every dependent series for every window-end date at once:

* the window for an as-of date ``d`` is the ``window`` sessions ending ON ``d`` (rows of the frame with
  index <= d, the last ``window`` of them); no row after ``d`` is ever read (no look-ahead);
* each (date, series) pair has its own missing-data mask: a row counts when the series' return and every
  regressor are finite on it, so a symbol with a short history or a gap is fitted on exactly the rows it
  has, as ``statsmodels.OLS(y, add_constant(X)).fit()`` would be after dropping incomplete rows;
* the fit uses batched normal equations: the masked cross-products ``X'WX`` of all series and dates come
  from a few stacked matrix products over :func:`numpy.lib.stride_tricks.sliding_window_view` windows,
  and ``np.linalg.solve`` runs on the stacked ``(D, N, K, K)`` systems. To keep the normal equations as
  accurate as a QR/SVD fit, the regressors are centred (the intercept is then recovered from the means)
  and each system is scaled to unit diagonal before it is solved; residuals, R^2 and standard errors are
  computed from the residuals themselves, not from differences of sums of squares.

Results equal statsmodels' to ~1e-13 on return-like data (the tests compare at 1e-10). A series with fewer
than ``min_obs`` usable rows, or whose design is singular in its window (for example a regressor that does
not move), gets NaN results and a flag; nothing raises for data reasons.

Flags (per date and series):

``ok``                    n_obs == window
``limited_history``       min_obs <= n_obs < window: fitted, but on fewer rows than the window
``insufficient_history``  n_obs < min_obs: no fit (NaN)
``singular_design``       enough rows, but the regressors are (numerically) collinear or constant: NaN

Exact fits (books.md, "Numbers that must not mislead"): a fitted series whose residual sum of squares is
(numerically) zero relative to its own scale, ``SSR <= EXACT_FIT_RTOL * ||y||^2`` on its usable rows, is
an exact fit (for example SPY regressed on a design that contains SPY). ``exact_fit`` is True for it; its
coefficients are kept, but its t-statistics are NaN: they would be round-off divided by round-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "FLAG_OK",
    "FLAG_LIMITED",
    "FLAG_INSUFFICIENT",
    "FLAG_SINGULAR",
    "EXACT_FIT_RTOL",
    "OLSResult",
    "rolling_ols",
    "window_positions",
    "as_of_index",
    "trailing_window_view",
]

FLAG_OK = "ok"
FLAG_LIMITED = "limited_history"
FLAG_INSUFFICIENT = "insufficient_history"
FLAG_SINGULAR = "singular_design"

# A design in which some regressor has a VIF above this (is explained by the others and the constant with
# R^2 > 1 - 1e-10) is treated as singular: its coefficients are not identified to any useful precision.
_MAX_VIF = 1e10

# Exact fit: SSR <= EXACT_FIT_RTOL * ||y||^2 (usable rows, uncentred so that a constant or all-zero series,
# which the intercept fits exactly, counts too). Why 1e-12: round-off leaves an exact fit with residuals of
# ~1e-16 x |y| per row (SSR/||y||^2 ~ 1e-30; well under 1e-20 even with the conditioning _MAX_VIF admits on
# return data), while 1e-12 means a residual RMS of 1e-6 of y's RMS -- for daily returns of ~1%, 1e-8 per
# day, far below what prices quoted to the cent can carry, so no genuine regression of market data gets
# there (R^2 of return regressions is far below 1 - 1e-12). Between the two there are ~18 orders of margin.
EXACT_FIT_RTOL = 1e-12

# Upper bound on the elements of one (dates x series x window) block; bounds memory at a few hundred MB.
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class OLSResult:
    """Stacked results of :func:`rolling_ols`.

    Arrays are indexed ``[date, series]`` (and ``[..., coefficient]``); coefficient 0 is the intercept,
    coefficient ``k + 1`` belongs to ``regressors[k]``.
    """

    dates: pd.DatetimeIndex  # (D,) as-of dates, ascending
    series: pd.Index  # (N,) dependent series (e.g. symbols)
    regressors: tuple[str, ...]  # (K,) regressor names, without the constant
    params: np.ndarray  # (D, N, K + 1)
    bse: np.ndarray  # (D, N, K + 1) standard errors
    tvalues: np.ndarray  # (D, N, K + 1)
    rsquared: np.ndarray  # (D, N) centred R^2
    n_obs: np.ndarray  # (D, N) int64, usable rows in the window
    resid_std: np.ndarray  # (D, N) sqrt(SSR / (n_obs - K - 1))
    flag: np.ndarray  # (D, N) str
    exact_fit: np.ndarray  # (D, N) bool: fitted with SSR numerically zero (tvalues NaN, params kept)
    window_start: pd.DatetimeIndex  # (D,) first session of each window
    window_end: pd.DatetimeIndex  # (D,) last session of each window (== the as-of date)


def as_of_index(as_of_dates: Iterable | pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Normalise as-of dates: tz-naive, unique, ascending."""
    idx = pd.DatetimeIndex(as_of_dates)
    if idx.tz is not None:
        raise ValueError("as_of_dates must be tz-naive session dates")
    return idx.unique().sort_values()


def window_positions(sessions: pd.DatetimeIndex, as_of: pd.DatetimeIndex) -> np.ndarray:
    """Integer position of each as-of date in ``sessions``; every as-of date must be a session there.

    An as-of date missing from the data is an error, not a reason to fall back silently to an earlier day.
    """
    if not sessions.is_monotonic_increasing or not sessions.is_unique:
        raise ValueError("the return frame index must be sorted and unique")
    pos = sessions.get_indexer(as_of)
    if (pos < 0).any():
        missing = [str(d.date()) for d in as_of[pos < 0][:5]]
        raise ValueError(f"as-of date(s) not among the sessions of the return frame: {missing}")
    return pos


def trailing_window_view(values: np.ndarray, window: int, fill) -> np.ndarray:
    """Read-only view of shape ``(T, ..., window)``: entry ``t`` holds rows ``t - window + 1 .. t`` of
    ``values`` (inclusive; ``fill`` stands in for rows before the first). Index it with as-of positions."""
    values = np.asarray(values)
    pad = np.full((window - 1,) + values.shape[1:], fill, dtype=values.dtype)
    return sliding_window_view(np.concatenate([pad, values]), window, axis=0)


def rolling_ols(
    y: pd.DataFrame,
    x: pd.DataFrame,
    as_of_dates: Iterable | pd.DatetimeIndex,
    window: int,
    min_obs: int,
) -> OLSResult:
    """Fit ``y[:, n] = a + x b`` for every column ``n`` of ``y`` over the window ending on each as-of date.

    ``y``: wide frame (sessions x series), NaN where missing. ``x``: regressors (sessions x K), NaN where
    missing. The two are aligned on the union of their indexes (a session one of them lacks is missing
    data for it). ``window`` counts sessions of that union.
    """
    if window < 1:
        raise ValueError("window must be positive")
    k = x.shape[1]
    if k < 1:
        raise ValueError("at least one regressor is required")
    if min_obs < k + 2:
        raise ValueError(f"min_obs must be at least K + 2 = {k + 2} (intercept + {k} slopes + 1 dof)")
    if min_obs > window:
        raise ValueError("min_obs cannot exceed window")

    as_of = as_of_index(as_of_dates)
    sessions = y.index.union(x.index)
    pos_all = window_positions(sessions, as_of)

    # Only the rows some window needs: from the first window's start to the last as-of date (inclusive).
    lo = max(0, int(pos_all.min()) - window + 1) if len(pos_all) else 0
    hi = int(pos_all.max()) + 1 if len(pos_all) else 0
    rows = sessions[lo:hi]
    yv = y.reindex(rows).to_numpy(dtype=np.float64)
    xv = x.reindex(rows).to_numpy(dtype=np.float64)
    pos = pos_all - lo
    n_series = yv.shape[1]
    d = len(pos)

    params = np.full((d, n_series, k + 1), np.nan)
    bse = np.full_like(params, np.nan)
    rsq = np.full((d, n_series), np.nan)
    rstd = np.full((d, n_series), np.nan)
    nobs = np.zeros((d, n_series), dtype=np.int64)
    singular = np.zeros((d, n_series), dtype=bool)
    exact = np.zeros((d, n_series), dtype=bool)

    if d:
        x_ok = np.isfinite(xv).all(axis=1)
        y_ok = np.isfinite(yv) & x_ok[:, None]
        x_win = trailing_window_view(np.where(x_ok[:, None], xv, 0.0), window, 0.0)  # (T, K, w)
        xok_win = trailing_window_view(x_ok, window, False)  # (T, w)
        y_win = trailing_window_view(np.where(y_ok, yv, 0.0), window, 0.0)  # (T, N, w)
        yok_win = trailing_window_view(y_ok, window, False)  # (T, N, w)

        step = max(1, _CHUNK_ELEMENTS // max(1, n_series * window))
        for i0 in range(0, d, step):
            p = pos[i0 : i0 + step]
            out = _fit_windows(
                y=y_win[p],
                m=yok_win[p],
                x=np.ascontiguousarray(x_win[p].transpose(0, 2, 1)),
                x_ok=xok_win[p],
                min_obs=min_obs,
            )
            sl = slice(i0, i0 + len(p))
            params[sl], bse[sl], rsq[sl], rstd[sl], nobs[sl], singular[sl], exact[sl] = out

    with np.errstate(divide="ignore", invalid="ignore"):
        tvalues = params / bse
    tvalues[exact] = np.nan  # round-off / round-off: not a statistic

    flag = np.where(nobs >= window, FLAG_OK, FLAG_LIMITED).astype(object)
    flag[nobs < min_obs] = FLAG_INSUFFICIENT
    flag[singular & (nobs >= min_obs)] = FLAG_SINGULAR

    start_pos = np.maximum(pos_all - window + 1, 0)
    return OLSResult(
        dates=as_of,
        series=pd.Index(y.columns),
        regressors=tuple(str(c) for c in x.columns),
        params=params,
        bse=bse,
        tvalues=tvalues,
        rsquared=rsq,
        n_obs=nobs,
        resid_std=rstd,
        flag=flag,
        exact_fit=exact,
        window_start=pd.DatetimeIndex(sessions[start_pos]),
        window_end=pd.DatetimeIndex(sessions[pos_all]),
    )


def _fit_windows(y, m, x, x_ok, min_obs):
    """Core of :func:`rolling_ols` for one block of dates.

    y: (D, N, w) returns, 0 where unusable; m: (D, N, w) bool usable mask; x: (D, w, K) regressors, 0 on
    rows where any regressor is missing; x_ok: (D, w) bool.
    """
    dc, n_series, w = y.shape
    k = x.shape[2]
    mf = m.astype(np.float64)
    n = mf.sum(axis=2)  # (D, N)
    fit = n >= min_obs
    n_safe = np.where(n > 0, n, 1.0)

    # Centre the regressors once per date (over rows where they are complete); series-specific means are
    # then small corrections, so the centred cross-products below lose almost nothing to cancellation.
    rows = x_ok.sum(axis=1, keepdims=True).astype(np.float64)  # (D, 1)
    xbar = x.sum(axis=1) / np.where(rows > 0, rows, 1.0)  # (D, K)
    xc = (x - xbar[:, None, :]) * x_ok[:, :, None]  # (D, w, K)

    sx = mf @ xc  # (D, N, K)  masked sums of centred x
    mux = sx / n_safe[..., None]
    muy = y.sum(axis=2) / n_safe  # (D, N)
    outer = (xc[:, :, :, None] * xc[:, :, None, :]).reshape(dc, w, k * k)
    sxx = (mf @ outer).reshape(dc, n_series, k, k)
    a = sxx - n[..., None, None] * mux[..., :, None] * mux[..., None, :]  # centred X'WX per series
    yc = (y - muy[..., None]) * mf  # (D, N, w) centred y, 0 off-mask
    b = yc @ xc  # (D, N, K) centred X'Wy (sum of yc is 0, so no mean correction needed)

    diag = np.einsum("dnii->dni", a)
    ok = fit & (diag > 0).all(axis=2)
    s = np.sqrt(np.where(ok[..., None], diag, 1.0))
    a_s = a / (s[..., :, None] * s[..., None, :])
    eye = np.eye(k)
    a_s[~ok] = eye
    b_s = np.where(ok[..., None], b / s, 0.0)
    rhs = np.concatenate([b_s[..., None], np.broadcast_to(eye, (dc, n_series, k, k))], axis=-1)
    try:
        sol = np.linalg.solve(a_s, rhs)  # (D, N, K, K + 1)
    except np.linalg.LinAlgError:  # an exactly singular system somewhere in the block: set those aside
        eig = np.linalg.eigvalsh(a_s)
        ok &= eig[..., 0] > 1e-14 * eig[..., -1]
        a_s[~ok] = eye
        sol = np.linalg.solve(a_s, rhs)
    ainv_s = sol[..., 1:]  # inverse of the scaled system: its diagonal holds the series' VIFs
    vif = np.einsum("dnii->dni", ainv_s)
    # A VIF is >= 1 by construction; one outside [1, _MAX_VIF) means the factorisation met a singular design.
    ok &= np.isfinite(sol).all(axis=(2, 3)) & ((vif > 1.0 - 1e-6) & (vif < _MAX_VIF)).all(axis=2)
    beta = sol[..., 0] / s  # (D, N, K)

    # Residuals from the data themselves: r = (y - muy) - (x - mux) b on usable rows.
    fitted = beta @ xc.transpose(0, 2, 1)  # (D, N, w)
    resid = (yc - (fitted - (mux * beta).sum(axis=2)[..., None]) * mf)
    ssr = (resid * resid).sum(axis=2)
    sst = (yc * yc).sum(axis=2)
    dof = n - k - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = ssr / dof
        rsq = 1.0 - ssr / sst
        se_slope = np.sqrt(sigma2[..., None] * vif / (s * s))
        mfull = (mux + xbar[:, None, :]) / s  # full-x means, in the scaled units
        quad = np.einsum("dni,dnij,dnj->dn", mfull, ainv_s, mfull)
        se_const = np.sqrt(sigma2 * (1.0 / n_safe + quad))
        rstd = np.where(ok, np.sqrt(sigma2), np.nan)
    alpha = muy - ((mux + xbar[:, None, :]) * beta).sum(axis=2)

    params = np.concatenate([alpha[..., None], beta], axis=2)
    bse = np.concatenate([se_const[..., None], se_slope], axis=2)
    params[~ok] = np.nan
    bse[~ok] = np.nan
    rsq = np.where(ok, rsq, np.nan)
    singular = fit & ~ok
    exact = ok & (ssr <= EXACT_FIT_RTOL * (y * y).sum(axis=2))  # y is 0 off the mask: ||y||^2 of usable rows
    return params, bse, rsq, rstd, n.astype(np.int64), singular, exact
