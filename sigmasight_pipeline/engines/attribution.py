"""Where a day's P&L came from: factor attribution of the snapshot's daily P&L (risk_measures.md, "Where
today's P&L came from").

For a session t with a one-day P&L (every snapshot but a first one) and its previous session t-1::

    daily P&L_t = sum_f X_(f,t-1) F_(f,t)  +  specific_t  +  residual_t

* ``X_(f,t-1)``: the book's stored dollar exposure to factor f on t-1 (``portfolio_factor_exposures``: the
  sum over positions of delta-adjusted exposure x beta, positions without a beta counting 0);
* ``F_(f,t)``: the factor's return on t, the design of the factor regression
  (:func:`sigmasight_pipeline.engines.factors.factor_returns`): Market is the market proxy's (SPY's) return, a
  style factor its ETF's return minus the proxy's;
* ``specific_t = sum_i e_(i,t-1) (r_(i,t) - b_(i,t-1)' F_t)`` over the positions held on t-1 that have betas
  (all factors) and a return on t: ``e`` the stored delta-adjusted exposure of t-1 (``position_valuations``),
  ``b`` the stored betas of t-1 (``position_factor_exposures``), ``r`` the simple return on t of the position's
  market symbol (an option's underlying);
* ``residual_t``: whatever remains: option convexity and theta, trades of the day, positions without betas or
  without a return, cents of rounding.

Every factor line and the specific line are rounded to the cent and the residual is the snapshot's P&L minus
their sum, so the lines add up to the stored snapshot P&L to the cent by construction; cumulative attribution
over a range is the sum of the daily lines.

Lines that cannot be computed are NULL (never 0) and the residual carries their share, with a ``flag``:
``no_previous_exposures`` (no stored factor exposure on t-1: every factor line and the specific line),
``no_factor_return`` (the factor's proxy has no return on t); the residual of such a date is flagged
``includes_uncomputed_lines``. The specific line's flag counts the positions
left out of it (``left out: N without betas, M without a return``). A first snapshot's P&L is measured since entry over
an unknown number of days: it is not a one-day P&L and is not attributed (no rows; performance likewise
starts from it), so cumulative attribution equals the P&L since the first snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = [
    "ATTRIBUTION_COLUMNS",
    "FLAG_CARRIES_UNCOMPUTED",
    "FLAG_NO_EXPOSURES",
    "FLAG_NO_FACTOR_RETURN",
    "RESIDUAL",
    "SPECIFIC",
    "attribute_pnl",
]

SPECIFIC = "specific"
RESIDUAL = "residual"
FLAG_NO_EXPOSURES = "no_previous_exposures"
FLAG_NO_FACTOR_RETURN = "no_factor_return"
#: The residual of a date with a line that could not be computed carries that line's P&L.
FLAG_CARRIES_UNCOMPUTED = "includes_uncomputed_lines"

ATTRIBUTION_COLUMNS = [
    "date", "line", "line_type", "line_order", "previous_date", "exposure", "factor_return", "pnl", "flag",
]


def _cents(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


def attribute_pnl(
    snapshots: pd.DataFrame,
    factor_exposures: pd.DataFrame,
    position_exposures: pd.DataFrame,
    position_betas: pd.DataFrame,
    position_symbols: pd.DataFrame,
    factor_returns: pd.DataFrame,
    symbol_returns: pd.DataFrame,
    sessions: Iterable,
) -> pd.DataFrame:
    """Daily P&L by factor, specific and residual for every snapshot date that has a one-day P&L.

    ``snapshots``: ``date, daily_pnl, is_first_snapshot`` of one portfolio (the dates attributed; a first
    snapshot gets no rows). ``factor_exposures``: ``date, factor_name, dollar_exposure`` (stored portfolio
    rows; the previous sessions' are what is used). ``position_exposures``: ``date, position_id,
    delta_adjusted_exposure`` and ``position_betas``: ``date, position_id, factor_name, beta`` (stored rows of
    the previous sessions; or wide: one row per position and date, a beta column per factor).
    ``position_symbols``: ``position_id, market_symbol`` (an option's underlying). ``factor_returns``: sessions
    x factors, the regression design (Market first; its column order is the order of the lines).
    ``symbol_returns``: sessions x symbols, simple returns. ``sessions``: the XNYS sessions from the one before
    the first snapshot date through the last (t-1 is the session before t).

    Nothing dated after t enters the lines of t. Returns :data:`ATTRIBUTION_COLUMNS`, per date the factor
    lines in design order (``line_type`` "factor", ``exposure`` X_(f,t-1), ``factor_return`` F_(f,t)), then
    "specific" and "residual"; ``line_order`` 1.. in that order; ``previous_date`` t-1; ``pnl`` in dollars.
    """
    factors = list(factor_returns.columns)
    sessions = pd.DatetimeIndex(sessions)
    snaps = snapshots.assign(date=pd.to_datetime(snapshots["date"])).sort_values("date")
    snaps = snaps[~snaps["is_first_snapshot"].astype(bool)]
    dates = pd.DatetimeIndex(snaps["date"])
    if dates.has_duplicates:
        raise ValueError("snapshots hold more than one row per date")
    if not len(dates):
        return pd.DataFrame(columns=ATTRIBUTION_COLUMNS)
    pos = sessions.get_indexer(dates)
    if (pos < 1).any():
        bad = dates[pos < 1][0]
        raise ValueError(f"sessions must hold {bad:%Y-%m-%d} and the session before it")
    previous = sessions[pos - 1]
    pnl = snaps["daily_pnl"].to_numpy(dtype=np.float64)
    if not np.isfinite(pnl).all():
        raise ValueError("a snapshot without a daily P&L cannot be attributed")

    fr = factor_returns.copy()
    fr.index = pd.DatetimeIndex(fr.index)
    F = fr.reindex(dates).to_numpy(dtype=np.float64)  # (D, K) factor returns on t
    fx = factor_exposures.assign(date=pd.to_datetime(factor_exposures["date"]))
    X = (fx.pivot_table(index="date", columns="factor_name", values="dollar_exposure", aggfunc="sum", dropna=False)
         .reindex(index=previous, columns=factors).to_numpy(dtype=np.float64))  # (D, K) exposures on t-1
    known = fx.groupby("date").size().reindex(previous).notna().to_numpy()  # exposure rows exist on t-1
    factor_pnl = _cents(X * F)  # NaN where an exposure or a factor return is missing

    specific, left_out = _specific(
        previous, dates, position_exposures, position_betas, position_symbols, factors, F, symbol_returns)
    all_returns = np.isfinite(F).all(axis=1)
    specific = np.where(known & all_returns, _cents(specific), np.nan)
    residual = _cents(pnl - np.nansum(factor_pnl, axis=1) - np.nan_to_num(specific))

    d, k = len(dates), len(factors)
    n_lines = k + 2
    flags = np.full((d, n_lines), None, dtype=object)
    flags[:, :k] = np.where(~np.isfinite(X), FLAG_NO_EXPOSURES, np.where(~np.isfinite(F), FLAG_NO_FACTOR_RETURN, None))
    flags[:, k] = np.where(~known, FLAG_NO_EXPOSURES, np.where(~all_returns, FLAG_NO_FACTOR_RETURN, left_out))
    uncomputed = np.isnan(factor_pnl).any(axis=1) | np.isnan(specific)
    flags[:, k + 1] = np.where(uncomputed, FLAG_CARRIES_UNCOMPUTED, None)
    return pd.DataFrame({
        "date": np.repeat(dates.to_numpy(), n_lines),
        "line": np.tile(np.array(factors + [SPECIFIC, RESIDUAL], dtype=object), d),
        "line_type": np.tile(np.array(["factor"] * k + [SPECIFIC, RESIDUAL], dtype=object), d),
        "line_order": np.tile(np.arange(1, n_lines + 1), d),
        "previous_date": np.repeat(previous.to_numpy(), n_lines),
        "exposure": np.concatenate([X, np.full((d, 2), np.nan)], axis=1).reshape(-1),
        "factor_return": np.concatenate([F, np.full((d, 2), np.nan)], axis=1).reshape(-1),
        "pnl": np.concatenate([factor_pnl, specific[:, None], residual[:, None]], axis=1).reshape(-1),
        "flag": flags.reshape(-1),
    }, columns=ATTRIBUTION_COLUMNS)


def _specific(previous, dates, position_exposures, position_betas, position_symbols, factors, F, symbol_returns):
    """sum_i e_(i,t-1) (r_(i,t) - b_(i,t-1)' F_t) per date over the positions with an exposure, betas and a
    return, and per date the text naming how many positions held on t-1 were left out and why."""
    ex = position_exposures.assign(date=pd.to_datetime(position_exposures["date"]))
    ex = ex[ex["date"].isin(previous)]
    ids = np.sort(ex["position_id"].unique())
    d = len(dates)
    if not len(ids):
        return np.zeros(d), np.full(d, None, dtype=object)
    wide = ex.pivot(index="date", columns="position_id", values="delta_adjusted_exposure").reindex(
        index=previous, columns=ids)
    e = wide.to_numpy(dtype=np.float64)  # (D, P) on t-1
    held = (ex.assign(_held=1.0).pivot(index="date", columns="position_id", values="_held")
            .reindex(index=previous, columns=ids).notna().to_numpy())  # a row on t-1 (its exposure may be NULL)
    B = np.full((d, len(ids), len(factors)), np.nan)
    if len(position_betas):  # one scatter of every row (the previous sessions are distinct: one row of B each)
        t = pd.Index(previous).get_indexer(pd.DatetimeIndex(position_betas["date"]))
        p = pd.Index(ids).get_indexer(position_betas["position_id"])
        on = (t >= 0) & (p >= 0)
        if "factor_name" in position_betas.columns:  # long: a row per factor
            f = pd.Index(factors).get_indexer(position_betas["factor_name"])
            ok = on & (f >= 0)
            B[t[ok], p[ok], f[ok]] = position_betas["beta"].to_numpy(dtype=np.float64)[ok]
        else:  # wide: a row per (date, position), a beta column per factor
            present = np.array([i for i, f in enumerate(factors) if f in position_betas.columns], dtype=np.int64)
            values = position_betas[[factors[i] for i in present]].to_numpy(dtype=np.float64)[on]
            B[t[on][:, None], p[on][:, None], present[None, :]] = values
    has_beta = np.isfinite(B).all(axis=2)
    symbols = position_symbols.set_index("position_id")["market_symbol"].reindex(ids)
    if symbols.isna().any():
        raise ValueError(f"positions without a market symbol: {symbols[symbols.isna()].index.tolist()}")
    sr = symbol_returns.copy()
    sr.index = pd.DatetimeIndex(sr.index)
    r = sr.reindex(index=dates, columns=symbols.to_numpy()).to_numpy(dtype=np.float64)  # (D, P) on t
    has_return = np.isfinite(r)
    has_exposure = np.isfinite(e)
    used = has_exposure & has_beta & has_return
    factor_part = np.einsum("dpk,dk->dp", np.nan_to_num(B), np.nan_to_num(F))
    contribution = np.where(used, np.nan_to_num(e) * (np.nan_to_num(r) - factor_part), 0.0)
    return contribution.sum(axis=1), _left_out_text({
        "without an exposure": held & ~has_exposure,
        "without betas": held & has_exposure & ~has_beta,
        "without a return": held & has_exposure & has_beta & ~has_return,
    })


def _left_out_text(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Per date: "left out: 2 without betas, 1 without a return" (None when no position was left out)."""
    text = None
    for what, mask in masks.items():
        count = mask.sum(axis=1)
        part = pd.Series(count.astype(str)) + " " + what
        part = part.where(count > 0, "")
        text = part if text is None else text + np.where((text.str.len() > 0) & (part.str.len() > 0), ", ", "") + part
    return ("left out: " + text).where(text.str.len() > 0, None).to_numpy(dtype=object)
