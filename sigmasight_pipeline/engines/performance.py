"""Performance of a book from its stored daily snapshots (risk_measures.md, "Performance").

Inputs (:func:`return_series`):

* the daily return r_t of the snapshot: daily P&L / the previous snapshot's equity base (the snapshot engine's
  ``daily_return``: gross exposure of the previous day). A first snapshot has no daily return (its P&L is
  since entry, over an unknown number of days): it never enters a statistic; it is the base (level 1) of the
  index that the first return moves;
* the daily risk-free rate rf_t = ^IRX_t / 100 / 252 (the 13-week bill yield quoted at the close of t, in
  percent; a day without a quote takes the last earlier one);
* the market proxy's simple return m_t (SPY, the Market factor's proxy of ``data/factors.yaml``).

Windows (:data:`WINDOWS`), each ending on the as-of date and holding the returns dated inside it:
``mtd`` (month to date), ``ytd`` (year to date), ``21d`` / ``63d`` / ``126d`` / ``252d`` (the trailing 21, 63,
126, 252 XNYS sessions ending on the as-of date) and ``inception`` (every return since the first snapshot).
Nothing dated after the as-of date is ever read.

Statistics (the conventions of empyrical-reloaded 0.7, which the tests use as the reference at 1e-10), with
n returns r_1..r_n in the window, x_t = r_t - rf_t the excess returns, A = 252 sessions a year:

==========================  ===================================================================================
cumulative_return           prod(1 + r) - 1 (time-weighted; ``empyrical.cum_returns_final``)
annualized_return           (1 + cumulative_return) ** (A / n) - 1 (``annual_return``, a CAGR)
annual_volatility           std(r, ddof=1) sqrt(A) (``annual_volatility``)
sharpe_ratio                mean(x) / std(x, ddof=1) sqrt(A) (``sharpe_ratio(r, risk_free=rf)``)
sortino_ratio               mean(x) A / (sqrt(mean(min(x, 0)^2)) sqrt(A)) (``sortino_ratio(r, required_return=rf)``;
                            the downside deviation averages over ALL n days, positive ones counting 0)
max_drawdown                min over the window of I_k / max_{j<=k} I_j - 1, I the index prod(1 + r) with
                            I_0 = 1 at the close before the first return (``max_drawdown``); <= 0
peak_date, trough_date      the trough is the (first) date of the maximum drawdown; the peak the last date
                            before it at which the index stood at its running maximum (``base`` date possible:
                            the close before the window's first return). NULL when max_drawdown is 0
current_drawdown            I_n / max_j I_j - 1 on the as-of date
calmar_ratio                annualized_return / |max_drawdown| (``calmar_ratio``; NULL without a drawdown)
best_day, worst_day         max(r), min(r), with their dates
positive_days_share         #(r > 0) / n
beta                        cov(r, m) / var(m) on the days with both returns (``empyrical.beta``: raw returns,
                            population moments; NULL when var(m) < 1e-30)
alpha                       (1 + mean(x - beta (m - rf))) ** A - 1 (``empyrical.alpha(r, m, risk_free=rf)``)
correlation                 Pearson correlation of r and m
tracking_error              std(r - m, ddof=1) sqrt(A)
market_return               prod(1 + m) - 1 over the same days: the proxy's cumulative return
==========================  ===================================================================================

A window with fewer than :data:`MIN_RETURNS` (2) returns has no figure at all: every statistic is NULL, the
``flag`` is ``insufficient_returns`` and ``reason`` says how many returns it holds. A window holding fewer
returns than it has sessions (the history starts inside it, or a session has no return) is computed on the
returns it has and flagged ``limited_history``, the reason naming both counts. A ratio that is undefined on a
computed window (Sharpe of constant excess returns, Sortino without a day below the risk-free rate, Calmar
without a drawdown, beta/correlation without market returns that move) is NULL, and ``reason`` names it.

Vectorised: per window, the returns of every as-of date are gathered into one (dates x window length) matrix
padded with NaN, and every statistic is a reduction along its rows; dates are processed in blocks that keep
the matrix under :data:`BLOCK_CELLS` cells. The only Python loops run over the seven windows and the blocks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "ANNUALIZATION",
    "BETA_MIN_VARIANCE",
    "FLAG_INSUFFICIENT",
    "FLAG_LIMITED",
    "FLAG_OK",
    "MIN_RETURNS",
    "PERFORMANCE_COLUMNS",
    "RETURN_COLUMNS",
    "STATISTICS",
    "WINDOWS",
    "Window",
    "daily_risk_free",
    "performance_windows",
    "return_series",
    "sessions_needed",
]

#: Sessions a year: the annualisation of returns, volatility and ratios.
ANNUALIZATION = 252
#: Fewer returns in a window: no figure.
MIN_RETURNS = 2
#: empyrical's floor on the market variance of a beta (below it beta is undefined).
BETA_MIN_VARIANCE = 1.0e-30
#: Largest (as-of dates x window length) matrix built at once.
BLOCK_CELLS = 2_000_000

FLAG_OK = "ok"
FLAG_LIMITED = "limited_history"
FLAG_INSUFFICIENT = "insufficient_returns"


class Window(NamedTuple):
    """A performance window: ``kind`` month | year | trailing | inception, ``sessions`` for trailing ones."""

    name: str
    kind: str
    sessions: int | None = None


#: The windows of the spec, in report order.
WINDOWS: tuple[Window, ...] = (
    Window("mtd", "month"),
    Window("ytd", "year"),
    Window("21d", "trailing", 21),
    Window("63d", "trailing", 63),
    Window("126d", "trailing", 126),
    Window("252d", "trailing", 252),
    Window("inception", "inception"),
)

#: The figures of a window (NULL together when it has fewer than two returns).
STATISTICS = [
    "cumulative_return", "annualized_return", "annual_volatility", "sharpe_ratio", "sortino_ratio",
    "max_drawdown", "peak_date", "trough_date", "current_drawdown", "calmar_ratio",
    "best_day", "best_day_date", "worst_day", "worst_day_date", "positive_days_share",
    "beta", "alpha", "correlation", "tracking_error", "market_return",
]

PERFORMANCE_COLUMNS = [
    "date", "window_name", "window_start", "first_return_date", "window_sessions", "n_returns",
    *STATISTICS, "flag", "reason",
]

#: The input of :func:`performance_windows` (:func:`return_series`).
RETURN_COLUMNS = ["date", "base_date", "portfolio_return", "market_return", "risk_free"]


def daily_risk_free(short_rate: pd.Series, dates: Iterable) -> pd.Series:
    """The daily risk-free rate on ``dates``: ^IRX / 100 / 252.

    ``short_rate``: the 13-week bill yield in percent by date (``market_prices`` close of ^IRX). Each date takes
    the quote of that date, or the last quote before it; a date before the first quote is an error (a rate is
    never made up, nor taken from a later day).
    """
    dates = pd.DatetimeIndex(dates)
    quotes = pd.Series(short_rate, dtype="float64").dropna()
    quotes.index = pd.DatetimeIndex(quotes.index)
    quotes = quotes.sort_index()
    if len(dates) and (quotes.empty or dates.min() < quotes.index[0]):
        first = "none" if quotes.empty else f"{quotes.index[0]:%Y-%m-%d}"
        raise ValueError(f"no ^IRX quote on or before {dates.min():%Y-%m-%d} (first quote: {first})")
    pos = quotes.index.searchsorted(dates, side="right") - 1
    return pd.Series(quotes.to_numpy()[pos] / 100.0 / ANNUALIZATION, index=dates, name="risk_free")


def return_series(snapshots: pd.DataFrame, market_returns: pd.Series, short_rate: pd.Series) -> pd.DataFrame:
    """The daily returns the statistics use: one row per snapshot that HAS a daily return.

    ``snapshots``: ``date, daily_return`` (the stored snapshots of one portfolio; a first snapshot's
    ``daily_return`` is NULL). ``market_returns``: the proxy's simple return by date (NaN where missing).
    ``short_rate``: ^IRX in percent by date (:func:`daily_risk_free`).

    Columns :data:`RETURN_COLUMNS`: ``base_date`` is the date of the snapshot before (the close the return is
    measured from), ``portfolio_return`` the snapshot's daily return, ``market_return`` the proxy's return that
    day, ``risk_free`` the daily rate. Sorted by date.
    """
    snaps = snapshots[["date", "daily_return"]].assign(date=pd.to_datetime(snapshots["date"])).sort_values("date")
    if snaps["date"].duplicated().any():
        raise ValueError("snapshots hold more than one row per date")
    snaps = snaps.assign(base_date=snaps["date"].shift(1))
    snaps = snaps[np.isfinite(snaps["daily_return"].to_numpy(dtype=np.float64))]
    dates = pd.DatetimeIndex(snaps["date"])
    market = pd.Series(market_returns, dtype="float64")
    market.index = pd.DatetimeIndex(market.index)
    return pd.DataFrame({
        "date": dates,
        "base_date": pd.DatetimeIndex(snaps["base_date"]),
        "portfolio_return": snaps["daily_return"].to_numpy(dtype=np.float64),
        "market_return": market.reindex(dates).to_numpy(),
        "risk_free": daily_risk_free(short_rate, dates).to_numpy(),
    }, columns=RETURN_COLUMNS).reset_index(drop=True)


def sessions_needed(as_of_dates: Iterable, first_return_date=None, windows: Iterable[Window] = WINDOWS) -> tuple[pd.Timestamp, int]:
    """What the ``sessions`` of :func:`performance_windows` must cover: every session from the returned date
    (1 January of the first as-of date's year, or the first return's date when earlier) AND the returned number
    of sessions before the first as-of date (the longest trailing window less one); the caller's calendar
    turns both into sessions."""
    first = pd.DatetimeIndex(as_of_dates).min()
    start = pd.Timestamp(first.year, 1, 1)
    if first_return_date is not None and not pd.isna(first_return_date):
        start = min(start, pd.Timestamp(first_return_date))
    return start, max((w.sessions - 1 for w in windows if w.kind == "trailing"), default=0)


def _window_bounds(window: Window, as_of: pd.DatetimeIndex, sessions: pd.DatetimeIndex,
                   first_return: pd.Timestamp | None) -> pd.DatetimeIndex:
    """The first date of ``window`` for every as-of date (returns dated on or after it belong to it)."""
    if window.kind == "month":
        return pd.DatetimeIndex(as_of.to_period("M").start_time)
    if window.kind == "year":
        return pd.DatetimeIndex(as_of.to_period("Y").start_time)
    if window.kind == "trailing":
        pos = sessions.get_indexer(as_of) - (window.sessions - 1)
        if (pos < 0).any():
            raise ValueError(
                f"sessions must reach {window.sessions - 1} sessions before {as_of[pos < 0][0]:%Y-%m-%d} "
                f"(window {window.name}); they start {sessions[0]:%Y-%m-%d}"
            )
        return sessions[pos]
    if window.kind == "inception":
        start = first_return if first_return is not None else as_of.max() + pd.Timedelta(days=1)
        return pd.DatetimeIndex(np.full(len(as_of), start, dtype="datetime64[ns]"))
    raise ValueError(f"unknown window kind {window.kind!r}")


def _check_inputs(returns: pd.DataFrame, as_of: pd.DatetimeIndex, sessions: pd.DatetimeIndex) -> None:
    missing = [c for c in RETURN_COLUMNS if c not in returns.columns]
    if missing:
        raise ValueError(f"returns lacks columns {missing}")
    dates = pd.DatetimeIndex(returns["date"])
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        raise ValueError("returns must be sorted by date with one row per date")
    if not np.isfinite(returns["portfolio_return"].to_numpy(dtype=np.float64)).all():
        raise ValueError("returns holds a non-finite portfolio_return (a first snapshot's NULL return is never a return)")
    if not np.isfinite(returns["risk_free"].to_numpy(dtype=np.float64)).all():
        raise ValueError("returns holds a missing risk-free rate")
    if not sessions.is_monotonic_increasing:
        raise ValueError("sessions must be sorted")
    absent = as_of[sessions.get_indexer(as_of) < 0]
    if len(absent):
        raise ValueError(f"as-of dates are not among the sessions: {[f'{d:%Y-%m-%d}' for d in absent[:5]]}")


def performance_windows(
    returns: pd.DataFrame,
    as_of_dates: Iterable,
    sessions: pd.DatetimeIndex,
    windows: Iterable[Window] = WINDOWS,
) -> pd.DataFrame:
    """Every statistic of every window for every as-of date (the module docstring defines them).

    ``returns``: :func:`return_series` (the whole history up to at least the last as-of date; rows after an
    as-of date never enter its figures). ``as_of_dates``: XNYS sessions. ``sessions``: the XNYS sessions
    through the last as-of date (:func:`sessions_needed`): they place the trailing windows and count each
    window's sessions.

    Returns :data:`PERFORMANCE_COLUMNS`, one row per (as-of date, window), dates in order, windows in the
    order given. ``window_start`` is the first session of the window (for ``inception``: the first return's
    date); ``window_sessions`` the XNYS sessions from it through the as-of date; ``first_return_date`` the
    date of the window's first return.
    """
    as_of = pd.DatetimeIndex(as_of_dates).sort_values()
    sessions = pd.DatetimeIndex(sessions)
    windows = tuple(windows)
    _check_inputs(returns, as_of, sessions)
    dates = pd.DatetimeIndex(returns["date"])
    first_return = dates[0] if len(dates) else None
    end = dates.searchsorted(as_of, side="right") - 1  # the last return on or before each as-of date
    position = sessions.get_indexer(as_of)
    frames = []
    for window in windows:
        start_date = _window_bounds(window, as_of, sessions, first_return)
        opens = start_date <= as_of  # an inception window before the first return has no session yet
        start = dates.searchsorted(start_date, side="left")
        n = np.maximum(end - start + 1, 0)
        if len(dates) and (dates[np.minimum(start, len(dates) - 1)][n > 0] < sessions[0]).any():
            raise ValueError(f"sessions start {sessions[0]:%Y-%m-%d}, after returns of window {window.name}: "
                             "they must cover every session of every window")
        first_session = sessions.searchsorted(start_date, side="left")
        stats = _window_statistics(returns, start, n)
        frame = pd.DataFrame({
            "date": as_of,
            "window_name": window.name,
            "window_start": pd.DatetimeIndex(np.where(opens, sessions[np.minimum(first_session, len(sessions) - 1)], pd.NaT)),
            "first_return_date": pd.DatetimeIndex(np.where(n > 0, dates[np.minimum(start, len(dates) - 1)], pd.NaT))
            if len(dates) else pd.DatetimeIndex([pd.NaT] * len(as_of)),
            "window_sessions": np.where(opens, position - first_session + 1, 0).astype(np.int64),
            "n_returns": n.astype(np.int64),
            **stats,
        })
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=PERFORMANCE_COLUMNS)
    order = {w.name: i for i, w in enumerate(windows)}
    out = pd.concat(frames, ignore_index=True)
    out["flag"], out["reason"] = _flags_and_reasons(out)
    out = out.assign(_w=out["window_name"].map(order)).sort_values(["date", "_w"], kind="stable")
    return out[PERFORMANCE_COLUMNS].reset_index(drop=True)


def _gather(values: np.ndarray, start: np.ndarray, n: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows x width) matrix of values[start + k] for k < n (NaN after), and its validity mask."""
    k = np.arange(width)[None, :]
    valid = k < n[:, None]
    idx = np.clip(start[:, None] + k, 0, max(len(values) - 1, 0))
    out = np.where(valid, values[idx], np.nan) if len(values) else np.full(valid.shape, np.nan)
    return out, valid


def _window_statistics(returns: pd.DataFrame, start: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics of windows [start, start + n) of ``returns``, in blocks of as-of dates."""
    rows = len(n)
    out = {name: np.full(rows, np.nan) for name in STATISTICS}
    for name in ("peak_date", "trough_date", "best_day_date", "worst_day_date"):
        out[name] = np.full(rows, np.datetime64("NaT"), dtype="datetime64[ns]")
    computed = np.flatnonzero(n >= MIN_RETURNS)
    if not len(computed):
        return out
    width_all = int(n[computed].max())
    block = max(1, BLOCK_CELLS // (width_all + 1))
    r = returns["portfolio_return"].to_numpy(dtype=np.float64)
    m = returns["market_return"].to_numpy(dtype=np.float64)
    rf = returns["risk_free"].to_numpy(dtype=np.float64)
    dates = pd.DatetimeIndex(returns["date"]).to_numpy(dtype="datetime64[ns]")
    bases = pd.DatetimeIndex(returns["base_date"]).to_numpy(dtype="datetime64[ns]")
    for lo in range(0, len(computed), block):
        sel = computed[lo: lo + block]
        stats = _block_statistics(r, m, rf, dates, bases, start[sel], n[sel])
        for name, values in stats.items():
            out[name][sel] = values
    return out


def _block_statistics(r, m, rf, dates, bases, start, n) -> dict[str, np.ndarray]:
    width = int(n.max())
    rows = np.arange(len(n))
    R, valid = _gather(r, start, n, width)
    M, _ = _gather(m, start, n, width)
    RF, _ = _gather(rf, start, n, width)
    nf = n.astype(np.float64)
    ann = float(ANNUALIZATION)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nan-reductions of a row without market returns: NaN
        wealth = np.cumprod(np.where(valid, 1.0 + R, 1.0), axis=1)
        cumulative = wealth[rows, n - 1] - 1.0
        annualized = (1.0 + cumulative) ** (ann / nf) - 1.0
        volatility = np.nanstd(R, axis=1, ddof=1) * np.sqrt(ann)

        X = R - RF  # excess returns (NaN outside the window)
        mean_x = np.nanmean(X, axis=1)
        sd_x = np.nanstd(X, axis=1, ddof=1)
        sd_x = np.where(np.nanmax(X, axis=1) == np.nanmin(X, axis=1), 0.0, sd_x)  # empyrical's zero dispersion
        sharpe = mean_x / sd_x * np.sqrt(ann)
        downside = np.sqrt(np.nanmean(np.square(np.minimum(X, 0.0)), axis=1)) * np.sqrt(ann)
        sortino = mean_x * ann / downside

        # The index I_0 = 1 (the close before the first return), I_k = prod_{j<=k} (1 + r_j).
        levels = np.concatenate([np.ones((len(n), 1)), wealth], axis=1)
        running_max = np.fmax.accumulate(levels, axis=1)
        drawdown = levels / running_max - 1.0
        in_window = np.concatenate([np.ones((len(n), 1), dtype=bool), valid], axis=1)
        drawdown = np.where(in_window, drawdown, np.inf)
        trough = np.argmin(drawdown, axis=1)  # first occurrence of the deepest point
        max_dd = drawdown[rows, trough]
        at_peak = (levels == running_max[rows, trough][:, None]) & (np.arange(width + 1)[None, :] <= trough[:, None])
        peak = width - np.argmax(at_peak[:, ::-1], axis=1)  # the last level at the running maximum
        current = drawdown[rows, n]
        calmar = np.where(max_dd < 0, annualized / np.abs(max_dd), np.nan)

        best_pos = np.nanargmax(R, axis=1)
        worst_pos = np.nanargmin(R, axis=1)
        positive = (R > 0).sum(axis=1) / nf

        pair = valid & np.isfinite(M)
        n_pair = pair.sum(axis=1)
        Mp = np.where(pair, M, np.nan)
        Rp = np.where(pair, R, np.nan)
        m_centered = Mp - np.nanmean(Mp, axis=1)[:, None]
        r_centered = Rp - np.nanmean(Rp, axis=1)[:, None]
        covariance = np.nanmean(m_centered * Rp, axis=1)
        m_variance = np.nanmean(np.square(m_centered), axis=1)
        r_variance = np.nanmean(np.square(r_centered), axis=1)
        beta = np.where(m_variance >= BETA_MIN_VARIANCE, covariance / m_variance, np.nan)
        alpha = (1.0 + np.nanmean((Rp - RF) - beta[:, None] * (Mp - RF), axis=1)) ** ann - 1.0
        correlation = covariance / np.sqrt(m_variance * r_variance)
        tracking = np.nanstd(Rp - Mp, axis=1, ddof=1) * np.sqrt(ann)
        market = np.nanprod(1.0 + Mp, axis=1) - 1.0
    few_pairs = n_pair < MIN_RETURNS
    for values in (beta, alpha, correlation, tracking, market):
        values[few_pairs] = np.nan

    def level_date(pos: np.ndarray) -> np.ndarray:  # position 0: the base close before the first return
        idx = start + np.maximum(pos - 1, 0)
        return np.where(pos == 0, bases[start], dates[idx])

    no_dd = ~(max_dd < 0)
    finite = lambda a: np.where(np.isfinite(a), a, np.nan)  # noqa: E731 (an undefined ratio is NULL)
    stats = {
        "cumulative_return": cumulative,
        "annualized_return": finite(annualized),
        "annual_volatility": volatility,
        "sharpe_ratio": finite(sharpe),
        "sortino_ratio": finite(sortino),
        "max_drawdown": max_dd,
        "peak_date": np.where(no_dd, np.datetime64("NaT"), level_date(peak)),
        "trough_date": np.where(no_dd, np.datetime64("NaT"), level_date(trough)),
        "current_drawdown": current,
        "calmar_ratio": finite(calmar),
        "best_day": R[rows, best_pos],
        "best_day_date": dates[start + best_pos],
        "worst_day": R[rows, worst_pos],
        "worst_day_date": dates[start + worst_pos],
        "positive_days_share": positive,
        "beta": beta,
        "alpha": finite(alpha),
        "correlation": finite(correlation),
        "tracking_error": tracking,
        "market_return": market,
    }
    return stats


#: Why a figure of a computed window is NULL, per statistic.
_UNDEFINED = {
    "sharpe_ratio": "sharpe_ratio (excess returns do not vary)",
    "sortino_ratio": "sortino_ratio (no day below the risk-free rate)",
    "calmar_ratio": "calmar_ratio (no drawdown)",
    "annualized_return": "annualized_return (the book lost more than its base)",
    "beta": "beta, alpha, correlation (fewer than 2 market proxy returns, or they do not vary)",
}


def _flags_and_reasons(frame: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """``flag`` and ``reason`` of every row (vectorised string building; a loop over the few statistics)."""
    n = frame["n_returns"].to_numpy()
    sessions = frame["window_sessions"].to_numpy()
    computed = n >= MIN_RETURNS
    limited = computed & (n < sessions)
    flag = np.where(~computed, FLAG_INSUFFICIENT, np.where(limited, FLAG_LIMITED, FLAG_OK)).astype(object)
    reason = pd.Series("", index=frame.index, dtype=object)
    none = pd.Series(np.where(n == 0, "no return in the window", n.astype(str) + " return in the window"),
                     index=frame.index)
    reason = reason.where(computed, none + f"; {MIN_RETURNS} needed for a figure")
    first = pd.to_datetime(frame["first_return_date"]).dt.strftime("%Y-%m-%d").fillna("")
    limited_text = (pd.Series(n.astype(str), index=frame.index) + " returns over " + pd.Series(sessions.astype(str), index=frame.index)
                    + " sessions (first return " + first + ")")
    reason = reason.where(~limited, limited_text)
    undefined = pd.Series("", index=frame.index, dtype=object)
    for name, text in _UNDEFINED.items():
        missing = computed & frame[name].isna().to_numpy()
        undefined = undefined.where(~missing, undefined + ", " + text)
    has_undefined = undefined.str.len().to_numpy() > 0
    undefined = "undefined: " + undefined.str.slice(2)
    joined = reason.where(reason.str.len() == 0, reason + "; ") + undefined
    reason = reason.where(~has_undefined, joined)
    return flag, reason.where(reason.str.len() > 0, None)
