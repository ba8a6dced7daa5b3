"""The performance-and-attribution section: the stored performance windows, today's P&L by attribution line,
the cumulative attribution up to the anchor date, and the drawdown path of the cumulative-return index.

Windows and today's lines are the anchor date's rows of ``portfolio_performance`` and ``pnl_attribution``,
formatted as stored (spec/risk_measures.md). Two series are summed or chained here, from stored rows only and
never past the anchor date:

- the cumulative attribution (:func:`cumulative_attribution`): the sum of each line's daily P&L over the
  attributed sessions up to the anchor date, in whole cents (the stored lines are cents, so the sums are
  exact). A first snapshot's P&L (since entry) is not attributed, so neither is it here;
- the drawdown path of the chart (:func:`drawdown_history`, :func:`drawdown_path`): the
  cumulative-return index of the stored daily returns and its drawdown from its running maximum (the
  convention of ``engines.performance``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sigmasight_pipeline.engines.attribution import RESIDUAL, SPECIFIC
from sigmasight_pipeline.engines.performance import WINDOWS

from ..formatting import as_bool, as_float, as_int, as_str, format_field, iso_date
from ..inputs import SECTION_TABLES, as_date, float_values, last_per_day, on_date, rows_upto, text_values
from .anchored import Anchored

__all__ = [
    "WINDOW_LABELS",
    "WINDOW_RATIOS",
    "CUMULATIVE_KEY",
    "DRAWDOWN_KEY",
    "cumulative_attribution",
    "cumulative_lines",
    "drawdown_paths",
    "drawdown_history",
    "drawdown_path",
    "performance_section",
    "performance_quality_notes",
    "return_history",
    "returns_upto",
]

#: window name -> its label in the Markdown
WINDOW_LABELS: dict[str, str] = {
    "mtd": "Month to date",
    "ytd": "Year to date",
    "21d": "21 sessions",
    "63d": "63 sessions",
    "126d": "126 sessions",
    "252d": "252 sessions",
    "inception": "Since inception",
}
_WINDOW_ORDER = {w.name: i for i, w in enumerate(WINDOWS)}
#: the ratio figures of a window, in the JSON's order (beta and correlation follow with their own precision)
WINDOW_RATIOS = (
    "cumulative_return", "annualized_return", "annual_volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown",
)
_RETURN_BASIS = (
    "daily return r_t = the snapshot's daily P&L / the previous snapshot's equity base (the stored daily_return; "
    "a first snapshot has none); risk-free rate ^IRX / 100 / 252 a day; 252 sessions a year; cumulative_return = "
    "prod(1 + r) - 1 (time-weighted); drawdowns of the index prod(1 + r); beta, alpha, correlation, "
    "tracking_error and market_return against the market proxy's returns; conventions of empyrical"
)
_ATTRIBUTION_BASIS = (
    "daily P&L_t = sum_f X_(f,t-1) F_(f,t) + specific_t + residual_t: the previous session's dollar factor "
    "exposure x the factor's return on t (Market: the proxy's return; a style: its ETF's return minus the "
    "proxy's), the positions' returns net of their betas (specific), and what remains (residual: option "
    "convexity and theta, trades, positions without betas or returns); the lines add up to the snapshot's "
    "daily P&L"
)
_CUMULATIVE_BASIS = (
    "sum of each line's daily P&L over the attributed sessions up to the anchor date; a first snapshot's P&L "
    "(since entry, not a one-day P&L) is not attributed"
)
_LINE_TYPE_RANK = {"factor": 0, SPECIFIC: 1, RESIDUAL: 2}


# ---------------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------------
def _window_key(r: dict) -> tuple[int, str]:
    name = str(r.get("window_name"))
    return _WINDOW_ORDER.get(name, len(_WINDOW_ORDER)), name


def _window(r: dict) -> dict:
    return {
        "window_name": str(r.get("window_name")),
        "window_start": iso_date(r.get("window_start")),
        "first_return_date": iso_date(r.get("first_return_date")),
        "window_sessions": as_int(r.get("window_sessions")),
        "n_returns": as_int(r.get("n_returns")),
        **{f: format_field(f, r.get(f)) for f in WINDOW_RATIOS},
        "peak_date": iso_date(r.get("peak_date")),
        "trough_date": iso_date(r.get("trough_date")),
        "current_drawdown": format_field("current_drawdown", r.get("current_drawdown")),
        "calmar_ratio": format_field("calmar_ratio", r.get("calmar_ratio")),
        "best_day": format_field("best_day", r.get("best_day")),
        "best_day_date": iso_date(r.get("best_day_date")),
        "worst_day": format_field("worst_day", r.get("worst_day")),
        "worst_day_date": iso_date(r.get("worst_day_date")),
        "positive_days_share": format_field("positive_days_share", r.get("positive_days_share")),
        "beta": format_field("beta", r.get("beta")),
        "alpha": format_field("alpha", r.get("alpha")),
        "correlation": format_field("correlation", r.get("correlation")),
        "tracking_error": format_field("tracking_error", r.get("tracking_error")),
        "market_return": format_field("market_return", r.get("market_return")),
        "flag": as_str(r.get("flag")),
        "reason": as_str(r.get("reason")),
    }


# ---------------------------------------------------------------------------------------------------
# Attribution
# ---------------------------------------------------------------------------------------------------
def _line_key(line: str, line_type: str | None, order) -> tuple:
    rank = as_int(order)
    return (rank if rank is not None else 10**6, _LINE_TYPE_RANK.get(str(line_type), 0), line)


def _cents_total(values) -> float | None:
    """The sum of money values in whole cents (exact); None when there is none."""
    cents = [round(v * 100) for v in (as_float(x) for x in values) if v is not None]
    return sum(cents) / 100 if cents else None


def _today(a: Anchored) -> tuple[dict | None, str | None]:
    """Today's P&L by line (the stored rows of the anchor date), or why there is none."""
    recs = sorted(a.records("attribution"),
                  key=lambda r: _line_key(str(r.get("line")), r.get("line_type"), r.get("line_order")))
    if not recs:
        snap = a.one_row("snapshot")
        if snap is not None and as_bool(snap.get("is_first_snapshot")):
            return None, ("first snapshot: its P&L is since entry (measured from entry prices), not a one-day P&L, "
                          "so it is not attributed")
        return None, f"no rows in {SECTION_TABLES['attribution']} for {a.anchor_iso}"
    snap = a.one_row("snapshot") if a.ok("snapshot") else None
    return {
        "basis": _ATTRIBUTION_BASIS,
        "previous_date": iso_date(recs[0].get("previous_date")),
        "lines": [
            {
                "line": str(r.get("line")),
                "line_type": as_str(r.get("line_type")),
                "exposure": format_field("exposure", r.get("exposure")),
                "factor_return": format_field("factor_return", r.get("factor_return")),
                "pnl": format_field("pnl", r.get("pnl")),
                "flag": as_str(r.get("flag")),
            }
            for r in recs
        ],
        "total_pnl": format_field("total_pnl", _cents_total(r.get("pnl") for r in recs)),
        "daily_pnl": format_field("daily_pnl", None if snap is None else snap.get("daily_pnl")),
    }, None


def cumulative_lines(history: pd.DataFrame, portfolio_id: str, anchors) -> dict[dt.date, tuple[list[dict], int]]:
    """anchor -> (:func:`cumulative_attribution` up to it as records, the number of distinct dates summed), for
    each of ``anchors`` at once: each line's running sums over its rows by date, read at every anchor.

    (A line's sums are whole cents, so the order they are added in does not matter; its ``line_type`` and
    ``line_order`` are those of its last row in the frame's order, as for a single anchor.)
    """
    anchors = [as_date(d) for d in anchors]
    out: dict[dt.date, tuple[list[dict], int]] = {anchor: ([], 0) for anchor in anchors}
    if not anchors or len(history) == 0 or not {"date", "line", "pnl"} <= set(history.columns):
        return out
    rows, days = rows_upto(history, portfolio_id, max(anchors))
    if not len(rows):
        return out
    codes, lines = pd.factorize(text_values(history["line"])[rows])
    pnl = float_values(history["pnl"])[rows]
    valid = np.isfinite(pnl)
    cents = np.where(valid, np.round(pnl * 100.0), 0.0)
    none = np.full(len(rows), None, dtype=object)
    kinds = history["line_type"].to_numpy(dtype=object)[rows] if "line_type" in history.columns else none
    orders = history["line_order"].to_numpy(dtype=object)[rows] if "line_order" in history.columns else none
    by_line = np.lexsort((days, codes))  # each line's rows by date (a stable sort: frame order within a date)
    bounds = np.searchsorted(codes[by_line], np.arange(len(lines) + 1))
    stamps = np.array([np.datetime64(anchor, "D") for anchor in anchors])
    dates = np.unique(days)
    sessions = np.searchsorted(dates, stamps, side="right")
    per_anchor: list[list[dict]] = [[] for _ in anchors]
    for code, line in enumerate(lines):
        idx = by_line[bounds[code]:bounds[code + 1]]
        line_days = days[idx]
        taken = np.searchsorted(line_days, stamps, side="right")  # the line's rows up to each anchor
        cum_cents, cum_valued = np.cumsum(cents[idx]), np.cumsum(valid[idx])
        last_row = np.maximum.accumulate(idx)  # the line's last row in frame order among its first k by date
        for j in np.flatnonzero(taken).tolist():
            k = int(taken[j]) - 1
            valued = int(cum_valued[k])
            per_anchor[j].append({
                "line": str(line),
                "line_type": kinds[last_row[k]],
                "line_order": orders[last_row[k]],
                "pnl": float(cum_cents[k]) / 100.0 if valued else float("nan"),
                "sessions": k + 1,
                "uncomputed_sessions": k + 1 - valued,
                "first_date": line_days[0].astype(object),
                "last_date": line_days[k].astype(object),
            })
    for j, anchor in enumerate(anchors):
        recs = sorted(per_anchor[j], key=lambda r: _line_key(r["line"], r["line_type"], r["line_order"]))
        out[anchor] = (recs, int(sessions[j]))
    return out


def cumulative_attribution(history: pd.DataFrame, portfolio_id: str, anchor: dt.date) -> pd.DataFrame:
    """Each attribution line's P&L summed over the sessions dated up to ``anchor`` (never past it).

    ``history``: ``pnl_attribution`` rows (``date, line, pnl``, and ``line_type``, ``line_order`` and
    ``portfolio_id`` when present; rows of another portfolio and rows without a date are left out). The
    stored P&L is whole cents; the sums are taken in cents, so they are exact. A NULL line (not computed that
    day: the residual carries it) adds nothing and is counted.

    Columns: ``line, line_type, line_order`` (of the line's latest row), ``pnl`` (the sum; NaN when no
    session has a value), ``sessions`` (rows summed), ``uncomputed_sessions`` (rows with a NULL P&L),
    ``first_date, last_date`` (of the line's rows). Lines in line order (factors, specific, residual).
    """
    cols = ["line", "line_type", "line_order", "pnl", "sessions", "uncomputed_sessions", "first_date", "last_date"]
    anchor = as_date(anchor)
    return pd.DataFrame(cumulative_lines(history, portfolio_id, [anchor])[anchor][0], columns=cols)


def _attribution_history(a: Anchored) -> pd.DataFrame:
    """The attribution history up to the anchor, with the anchor's rows added when it lacks them."""
    hist = a.inp.section("attribution_history")
    today = a.frames["attribution"]
    if len(today) and not (len(hist) and "date" in hist.columns and on_date(hist["date"], a.anchor).any()):
        hist = pd.concat([hist, today], ignore_index=True) if len(hist) else today
    return hist


#: the cache entry of an input's cumulative attribution (:func:`.ranges.prepare_range` fills a range's)
CUMULATIVE_KEY = "cumulative_attribution"
#: the cache entry of an input's drawdown path (:func:`.ranges.prepare_range` fills a range's)
DRAWDOWN_KEY = "drawdown_path"


def _cumulative(a: Anchored) -> tuple[dict | None, str | None]:
    recs, sessions = a.inp.cache.get(
        a.inp.section("attribution_history"), (CUMULATIVE_KEY, a.inp.portfolio_id, a.anchor),
        lambda _: cumulative_lines(_attribution_history(a), a.inp.portfolio_id, [a.anchor])[a.anchor],
    )
    if not recs:
        return None, f"no rows in {SECTION_TABLES['attribution']} up to {a.anchor_iso}"
    return {
        "basis": _CUMULATIVE_BASIS,
        "first_date": min(r["first_date"] for r in recs).isoformat(),
        "last_date": max(r["last_date"] for r in recs).isoformat(),
        "sessions": sessions,
        "lines": [
            {
                "line": r["line"],
                "line_type": as_str(r["line_type"]),
                "pnl": format_field("pnl", r["pnl"]),
                "sessions": r["sessions"],
                "uncomputed_sessions": r["uncomputed_sessions"],
            }
            for r in recs
        ],
        "total_pnl": format_field("total_pnl", _cents_total(r["pnl"] for r in recs)),
    }, None


# ---------------------------------------------------------------------------------------------------
# Returns and drawdown
# ---------------------------------------------------------------------------------------------------
def returns_upto(history: pd.DataFrame, portfolio_id: str, anchor: dt.date) -> pd.DataFrame:
    """``date, daily_return`` of ``history`` (``portfolio_snapshots`` rows) up to ``anchor``, by date.

    Rows of another portfolio (when the frame says) and rows without a date are left out; a date given twice
    keeps its last row; an unreadable return is NaN. Never past the anchor.
    """
    if len(history) and {"date", "daily_return"} <= set(history.columns):
        rows, days = rows_upto(history, portfolio_id, anchor)
        days, (returns,) = last_per_day(days, float_values(history["daily_return"])[rows])
    else:
        days, returns = np.zeros(0, dtype="datetime64[D]"), np.zeros(0)
    return pd.DataFrame({"date": days.astype("datetime64[ns]"), "daily_return": returns})


def drawdown_path(returns: pd.DataFrame) -> pd.DataFrame:
    """The cumulative-return index and its drawdown, by date, from ``date, daily_return`` rows (by date).

    The index is 1 at the close before the first daily return (the date of the row before it: a first
    snapshot, whose P&L since entry has no daily return) and ``I_t = I_(t-1) (1 + r_t)`` on every later date
    with a return; a date without a return (a gap) is left out. ``drawdown_t = I_t / max_(s <= t) I_s - 1``
    (<= 0): the convention of the performance engine's ``max_drawdown`` / ``current_drawdown`` of the
    inception window. Columns ``date, index, drawdown``; empty without a return.

    The path of the rows up to a date is this path's rows up to that date (each value depends on earlier
    rows only), as long as those rows hold a return: a range's path is cut at every anchor (:mod:`.ranges`).
    """
    if not len(returns):
        dates = np.zeros(0, dtype="datetime64[ns]")
    elif returns["date"].dtype == "datetime64[ns]":  # as returns_upto gives them: no conversion
        dates = returns["date"].to_numpy()
    else:
        dates = pd.to_datetime(returns["date"]).to_numpy(dtype="datetime64[ns]")
    r = float_values(returns["daily_return"]) if len(returns) else np.zeros(0)
    has = np.isfinite(r)
    if not has.any():
        return pd.DataFrame({"date": dates[:0], "index": np.zeros(0), "drawdown": np.zeros(0)})
    first = int(np.argmax(has))
    take = np.flatnonzero(has)
    if first > 0:  # the base close: the row before the first return
        take = np.r_[first - 1, take]
    growth = np.where(has[take], 1.0 + r[take], 1.0)  # the base row (no return) stays at 1
    level = np.cumprod(growth)
    peak = np.maximum.accumulate(np.maximum(level, 1.0))  # the base close (1) counts as a high
    return pd.DataFrame({"date": dates[take], "index": level, "drawdown": level / peak - 1.0})


def return_history(a: Anchored) -> pd.DataFrame:
    """``date, daily_return`` of the snapshots up to the anchor date, by date (:func:`returns_upto`), the anchor's
    snapshot added when the history lacks it."""
    if "return_history" in a._memo:
        return a._memo["return_history"]
    out = returns_upto(a.inp.section("snapshot_history"), a.inp.portfolio_id, a.anchor)
    anchor = np.datetime64(a.anchor, "ns")
    snap = a.one_row("snapshot")
    if snap is not None and not (out["date"].to_numpy() == anchor).any():  # every row is before the anchor
        r = as_float(snap.get("daily_return"))
        out = pd.DataFrame({"date": np.append(out["date"].to_numpy(), anchor),
                            "daily_return": np.append(out["daily_return"].to_numpy(), np.nan if r is None else r)})
    a._memo["return_history"] = out
    return out


def drawdown_history(a: Anchored) -> pd.DataFrame:
    """:func:`drawdown_path` of :func:`return_history`: the drawdown chart's data (``date, index, drawdown``).

    For the inputs of a range, :func:`.ranges.prepare_range` puts each anchor's in the cache, cut from the
    range's path."""
    key = (DRAWDOWN_KEY, a.inp.portfolio_id, a.anchor)
    return a.inp.cache.get(a.inp.section("snapshot_history"), key, lambda _: drawdown_path(return_history(a)))


def drawdown_paths(history: pd.DataFrame, portfolio_id: str, anchors) -> list[pd.DataFrame]:
    """``drawdown_path(returns_upto(history, portfolio_id, anchor))`` for each of ``anchors``, cut from the path
    of the last one: its rows up to each anchor, or none while those rows hold no return (a base close only)."""
    stamps = pd.DatetimeIndex([as_date(d) for d in anchors])
    returns = returns_upto(history, portfolio_id, max(stamps).date())
    path = drawdown_path(returns)
    return_ends = pd.DatetimeIndex(returns["date"]).searchsorted(stamps, side="right")
    path_ends = pd.DatetimeIndex(path["date"]).searchsorted(stamps, side="right")
    returns_so_far = np.cumsum(np.isfinite(returns["daily_return"].to_numpy()))  # returns up to each row
    return [path.iloc[:p if r and returns_so_far[r - 1] else 0] for r, p in zip(return_ends.tolist(), path_ends.tolist())]


# ---------------------------------------------------------------------------------------------------
# The section
# ---------------------------------------------------------------------------------------------------
def performance_section(a: Anchored) -> dict | None:
    if not a.ok("performance"):
        return None
    windows = [_window(r) for r in sorted(a.records("performance"), key=_window_key)]
    today, today_reason = _today(a)
    cumulative, cumulative_reason = _cumulative(a)
    return {
        "return_basis": _RETURN_BASIS,
        "windows": windows,
        "attribution": today,
        "attribution_reason": today_reason,
        "cumulative_attribution": cumulative,
        "cumulative_attribution_reason": cumulative_reason,
    }


def performance_quality_notes(a: Anchored) -> list[str]:
    """The performance windows that rest on fewer returns than sessions, or have none, in one line."""
    if not a.ok("performance"):
        return []
    recs = sorted(a.records("performance"), key=_window_key)
    limited = [f"{r.get('window_name')} ({as_str(r.get('reason')) or as_str(r.get('flag'))})"
               for r in recs if as_str(r.get("flag")) not in (None, "ok")]
    return [f"performance windows with fewer returns than sessions: {'; '.join(limited)}"] if limited else []
