"""The risk-measures section: VaR and expected shortfall by method, level and horizon, ex-ante volatility and
tracking error, the factor / specific split, the Euler contributions and the 99% VaR backtest.

Everything here formats the rows of ``portfolio_risk_measures``, ``position_risk_contributions``,
``factor_risk_contributions`` and ``risk_backtest`` of the anchor date (spec/risk_measures.md); nothing is
recomputed. VaR and ES are positive losses; a negative one (the tail scenarios are gains) is shown as stored,
never clipped. The 10-day figures are the stored 1-day figures x sqrt(10) (flag ``scaled_sqrt10``).

Flags are stored as ``;``-joined tokens (``limited_history;filled_returns=3``); :func:`flag_words` says
each in words for the Markdown and the data-quality list, the JSON keeps the tokens.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd

from sigmasight_pipeline.engines.risk_measures import (
    BACKTEST_LEVEL,
    ES_LEVELS,
    HISTORICAL,
    MIN_SCENARIOS,
    NO_LEVEL,
    PARAMETRIC,
    RISK_WINDOW,
    SCALED_HORIZON,
    SPECIFIC,
    TRADING_DAYS,
    VAR_LEVELS,
)

from ..formatting import as_bool, as_float, as_int, as_str, format_field, iso_date, to_decimal
from ..inputs import SECTION_TABLES, as_date, float_values, last_per_day, rows_upto
from .anchored import Anchored
from .layout import factor_key

__all__ = [
    "CONTRIBUTION_LEVEL",
    "METHODS",
    "HORIZONS",
    "TAIL_LEVELS",
    "BACKTEST_COLUMNS",
    "BACKTEST_KEY",
    "backtest_windows",
    "backtest_history",
    "backtest_upto",
    "backtest_window",
    "flag_tokens",
    "flag_words",
    "level_label",
    "measure_lookup",
    "risk_measures_section",
    "risk_quality_notes",
    "top_contributors",
]

METHODS = (HISTORICAL, PARAMETRIC)
HORIZONS = (1, SCALED_HORIZON)
#: (measure, level) of the VaR / ES table, in its order
TAIL_LEVELS: tuple[tuple[str, float], ...] = (
    *(("var", level) for level in VAR_LEVELS),
    *(("es", level) for level in ES_LEVELS),
)
#: the ES level of the contributions a report ranks and shows (the 99% of the spec's "top five")
CONTRIBUTION_LEVEL = 0.99

_BASIS = {
    HISTORICAL: (
        f"historical simulation with full revaluation: today's book under each of the one-day returns of the "
        f"{RISK_WINDOW} XNYS sessions ending on the anchor date (options repriced with Black-Scholes)"
    ),
    PARAMETRIC: (
        "delta-normal factor model, mean zero: sigma^2 = x'Fx + sum_i (e_i s_i)^2 (factor exposures x, factor "
        "covariance F of the beta window, position exposures e_i and residual standard deviations s_i); "
        "VaR = z sigma, ES = sigma phi(z) / (1 - level)"
    ),
}
_SIGN = (
    "VaR and ES are positive losses; a negative value means the tail outcomes are gains (flag negative_var / "
    "negative_es), shown as stored, never clipped"
)
_HORIZON = (
    f"horizon_days 1: one day; horizon_days {SCALED_HORIZON}: the 1-day figure x sqrt({SCALED_HORIZON}) "
    "(scaled, not simulated)"
)
_RANKING = (
    "historical ES 99% contribution, largest first; then the parametric contribution to sigma (positions "
    "without a historical contribution after those with one); then position id"
)


def _key(level) -> float:
    return round(float(level), 6)


def level_label(level) -> str:
    """A confidence level as a percentage without trailing zeros: 0.95 -> "95%", 0.975 -> "97.5%"."""
    d = to_decimal(level)
    if d is None:
        return "n/a"
    pct = (d * 100).quantize(Decimal("0.000001")).normalize()
    return f"{format(pct, 'f')}%"


def flag_tokens(flag) -> list[str]:
    """The notes of a stored flag (``;``-joined; "ok" and blanks dropped), in their order."""
    text = as_str(flag)
    if not text:
        return []
    return [t for t in (part.strip() for part in text.split(";")) if t and t != "ok"]


def _count_words(n: str, one: str, many: str) -> str:
    return f"{n} {one if n == '1' else many}"


def flag_words(token: str, scenarios: int | None = None) -> str:
    """A stored risk-measure flag token in words (an unknown token is returned as it is).

    ``scenarios``: the historical scenario count of the date (for ``limited_history`` /
    ``insufficient_history``).
    """
    name, _, arg = token.partition("=")
    n = "n/a" if scenarios is None else str(scenarios)
    if name == "limited_history":
        return (f"limited history: {n} scenarios in the {RISK_WINDOW}-session window (computed; "
                f"{MIN_SCENARIOS} to {RISK_WINDOW - 1} scenarios are flagged)")
    if name == "insufficient_history":
        return (f"insufficient history: {n} scenarios, fewer than {MIN_SCENARIOS}: historical VaR and ES "
                "not computed")
    if name == "filled_returns":
        return (f"{_count_words(arg, 'missing return', 'missing returns')} (symbol x session) filled with "
                "the symbol's Market beta x the market return")
    if name == "left_out":
        return f"left out of the scenarios (no return and no beta to fill it): {arg.replace(',', ', ')}"
    if name == "unpriced":
        return f"{_count_words(arg, 'position', 'positions')} without a price left out of the scenarios"
    if name == "negative_var":
        return "negative VaR: the VaR quantile is a gain (not clipped)"
    if name == "negative_es":
        return "negative ES: the tail outcomes average a gain (not clipped)"
    if name == "scaled_sqrt10":
        return f"{SCALED_HORIZON}-day figure = 1-day figure x sqrt({SCALED_HORIZON})"
    if name == "positions_without_beta":
        return f"{_count_words(arg, 'position', 'positions')} without factor betas left out of the parametric model"
    if name == "missing_residual_std":
        return (f"{_count_words(arg, 'position', 'positions')} without a residual standard deviation: "
                "no specific risk counted for them")
    if name == "incomplete_covariance":
        return "the factor covariance has missing entries"
    if name == "equity_nonpositive":
        return "equity <= 0: volatility and tracking error as a fraction of equity are not defined"
    return token


def measure_lookup(a: Anchored) -> dict[tuple[str, str, float, int], dict]:
    """(method, measure, level rounded to 6 places, horizon_days) -> the stored row (first one); built once."""
    if "measure_lookup" not in a._memo:
        a._memo["measure_lookup"] = _lookup(a)
    return a._memo["measure_lookup"]


def _lookup(a: Anchored) -> dict[tuple[str, str, float, int], dict]:
    out: dict[tuple[str, str, float, int], dict] = {}
    for r in a.records("risk_measures"):
        level = as_float(r.get("level"))
        horizon = as_int(r.get("horizon_days"))
        key = (str(r.get("method")), str(r.get("measure")), _key(level if level is not None else NO_LEVEL),
               horizon if horizon is not None else 1)
        out.setdefault(key, r)
    return out


def _value(lookup: dict, method: str, measure: str, level: float = NO_LEVEL, horizon: int = 1):
    row = lookup.get((method, measure, _key(level), horizon))
    return None if row is None else row.get("value")


def _row_flag(lookup: dict, method: str, measure: str, level: float = NO_LEVEL, horizon: int = 1) -> str | None:
    row = lookup.get((method, measure, _key(level), horizon))
    return None if row is None else as_str(row.get("flag"))


_ROW_ONLY = ("negative_var", "negative_es", "scaled_sqrt10", "equity_nonpositive")


def _method_flags(lookup: dict, method: str) -> list[str]:
    """The notes of a method as a whole (those every row of the method carries): the flag of its count row
    (historical ``scenarios``, parametric 1-day ``volatility``), else of any of its rows without the
    row-specific notes."""
    base = ("scenarios", NO_LEVEL, 1) if method == HISTORICAL else ("volatility", NO_LEVEL, 1)
    row = lookup.get((method, base[0], _key(base[1]), base[2]))
    if row is None:
        row = next((r for k, r in lookup.items() if k[0] == method), None)
    if row is None:
        return []
    return [t for t in flag_tokens(row.get("flag")) if t.partition("=")[0] not in _ROW_ONLY]


def _parametric_flags(lookup: dict) -> list[str]:
    """The parametric method's notes, and ``equity_nonpositive`` when the fractions of equity carry it."""
    flags = _method_flags(lookup, PARAMETRIC)
    of_equity = flag_tokens(_row_flag(lookup, PARAMETRIC, "volatility_of_equity", horizon=TRADING_DAYS))
    return flags + (["equity_nonpositive"] if "equity_nonpositive" in of_equity else [])


def _tail_rows(lookup: dict) -> list[dict]:
    """Every (method, measure, level, horizon) of the VaR / ES table, as stored (null when not stored)."""
    rows = []
    for method in METHODS:
        for measure, level in TAIL_LEVELS:
            for horizon in HORIZONS:
                flag = _row_flag(lookup, method, measure, level, horizon)
                rows.append({
                    "method": method,
                    "measure": measure,
                    "level": format_field("level", level),
                    "horizon_days": horizon,
                    "loss": format_field("loss", _value(lookup, method, measure, level, horizon)),
                    "scaled": horizon != 1,
                    "flag": flag,
                })
    return rows


def _position_contributions(a: Anchored) -> list[dict]:
    """One entry per position with a stored contribution: historical ES at each level, parametric sigma."""
    hist: dict[int, dict[float, dict]] = {}
    vol: dict[int, dict] = {}
    for r in a.records("position_risk"):
        pid = as_int(r.get("position_id"))
        if pid is None:
            continue
        method, measure = str(r.get("method")), str(r.get("measure"))
        if method == HISTORICAL and measure == "es":
            level = as_float(r.get("level"))
            if level is not None:
                hist.setdefault(pid, {}).setdefault(_key(level), r)
        elif method == PARAMETRIC and measure == "volatility":
            vol.setdefault(pid, r)
    out = []
    for pid in sorted(set(hist) | set(vol)):
        levels = hist.get(pid, {})
        v = vol.get(pid)
        out.append({
            "position_id": pid,
            "symbol": a.symbol(pid),
            "historical_es": [
                {
                    "level": format_field("level", level),
                    "contribution": format_field("contribution", levels[_key(level)].get("contribution")),
                    "share": format_field("share", levels[_key(level)].get("share")),
                }
                for level in ES_LEVELS if _key(level) in levels
            ],
            "volatility": None if v is None else {
                "contribution": format_field("contribution", v.get("contribution")),
                "marginal": format_field("marginal", v.get("marginal")),
                "share": format_field("share", v.get("share")),
            },
            "_es": as_float(levels[_key(CONTRIBUTION_LEVEL)].get("contribution")) if _key(CONTRIBUTION_LEVEL) in levels else None,
            "_vol": None if v is None else as_float(v.get("contribution")),
        })
    return out


def top_contributors(rows: list[dict], n: int = 5) -> list[dict]:
    """The ``n`` largest contributors (see ``_RANKING``)."""
    low = float("-inf")

    def key(r):
        es, vol = r["_es"], r["_vol"]
        return (-(es if es is not None else low), -(vol if vol is not None else low), r["position_id"])

    return sorted(rows, key=key)[:n]


def _factor_contributions(a: Anchored) -> list[dict]:
    """The factor rows in the canonical factor order, then ``Specific``."""
    recs = sorted(
        a.records("factor_risk"),
        key=lambda r: (str(r.get("factor_name")) == SPECIFIC, factor_key(str(r.get("factor_name")))),
    )
    return [
        {
            "factor_name": str(r.get("factor_name")),
            "dollar_exposure": format_field("dollar_exposure", r.get("dollar_exposure")),
            "contribution": format_field("contribution", r.get("contribution")),
            "marginal": format_field("marginal", r.get("marginal")),
            "share": format_field("share", r.get("share")),
        }
        for r in recs
    ]


def _no_backtest(a: Anchored) -> str:
    return (f"no rows in {SECTION_TABLES['risk_backtest']} for {a.anchor_iso} (no {level_label(BACKTEST_LEVEL)} "
            "historical VaR of the previous session, or no realised P&L)")


#: the columns of a backtest history (:func:`backtest_upto`)
BACKTEST_COLUMNS = ("date", "realized_pnl", "var_99", "exception")


def backtest_upto(history: pd.DataFrame, portfolio_id: str, anchor: dt.date,
                  anchor_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """``date, realized_pnl, var_99, exception`` of ``history`` (``risk_backtest`` rows) up to ``anchor``, by date.

    ``anchor_rows``: the anchor date's own rows, added when the history has no row dated the anchor. Rows of
    another portfolio (when the frame says) and rows without a date are left out; a date given twice keeps its
    last row; the P&L and VaR as float64 (unreadable -> NaN), ``exception`` as bool (missing -> False).
    """
    cols = BACKTEST_COLUMNS[1:]
    anchor_day = np.datetime64(anchor, "D")
    parts = []
    if len(history) and set(BACKTEST_COLUMNS) <= set(history.columns):
        rows, days = rows_upto(history, portfolio_id, anchor)
        parts.append((days, *(history[c].to_numpy(dtype=object)[rows] for c in cols)))
    if anchor_rows is not None and len(anchor_rows) and not (parts and (parts[0][0] == anchor_day).any()):
        parts.append((np.full(len(anchor_rows), anchor_day), *(anchor_rows[c].to_numpy(dtype=object) for c in cols)))
    if not parts:
        parts.append((np.zeros(0, dtype="datetime64[D]"), *(np.zeros(0, dtype=object) for _ in cols)))
    days, values = last_per_day(np.concatenate([p[0] for p in parts]),
                                *(np.concatenate([p[i] for p in parts]) for i in range(1, len(cols) + 1)))
    return pd.DataFrame({
        "date": days.astype("datetime64[ns]"),
        "realized_pnl": float_values(values[0]),
        "var_99": float_values(values[1]),
        "exception": np.array([as_bool(v) for v in values[2].tolist()], dtype=bool),
    })


def backtest_window(backtest: pd.DataFrame) -> pd.DataFrame:
    """The last :data:`RISK_WINDOW` rows of a backtest history (the window whose exceptions a date's row
    counts), indexed from 0."""
    start = max(len(backtest) - RISK_WINDOW, 0)
    if start == 0:
        return backtest
    part = backtest.iloc[start:]
    part.index = pd.RangeIndex(len(part))
    return part


def backtest_windows(history: pd.DataFrame, portfolio_id: str, anchors) -> list[pd.DataFrame]:
    """``backtest_window(backtest_upto(history, portfolio_id, anchor))`` for each of ``anchors``, cut from the
    history up to the last one (its rows up to each anchor, then their last :data:`RISK_WINDOW`)."""
    stamps = pd.DatetimeIndex([as_date(d) for d in anchors])
    tested = backtest_upto(history, portfolio_id, max(stamps).date())
    ends = pd.DatetimeIndex(tested["date"]).searchsorted(stamps, side="right")
    return [backtest_window(tested.iloc[:end]) for end in ends.tolist()]


#: the cache entry of an input's backtest window (:func:`.ranges.prepare_range` fills a range's)
BACKTEST_KEY = "backtest_window"


def backtest_history(a: Anchored) -> tuple[pd.DataFrame | None, str | None]:
    """``date, realized_pnl, var_99, exception`` of the last :data:`RISK_WINDOW` backtested sessions up to the
    anchor date (the window whose exceptions the anchor's row counts), by date; or None and why, when the
    anchor date has no backtest row. :func:`backtest_upto` (the anchor's row added when the history
    lacks it) cut by :func:`backtest_window`; for the inputs of a range, :func:`.ranges.prepare_range` puts
    each anchor's in the cache, cut from the range's."""
    today = a.frames["risk_backtest"]
    if len(today) == 0:
        return None, _no_backtest(a)
    key = (BACKTEST_KEY, a.inp.portfolio_id, a.anchor)
    return a.inp.cache.get(
        a.inp.section("backtest_history"), key,
        lambda h: backtest_window(backtest_upto(h, a.inp.portfolio_id, a.anchor, anchor_rows=today)),
    ), None


def _backtest(a: Anchored) -> tuple[dict | None, str | None]:
    row = a.one_row("risk_backtest")
    if row is None:
        return None, _no_backtest(a)
    return {
        "var_date": iso_date(row.get("var_date")),
        "var_99": format_field("var_99", row.get("var_99")),
        "realized_pnl": format_field("realized_pnl", row.get("realized_pnl")),
        "exception": as_bool(row.get("exception")),
        "window_sessions": as_int(row.get("window_sessions")),
        "exceptions": as_int(row.get("exceptions")),
        "kupiec_lr": format_field("kupiec_lr", row.get("kupiec_lr")),
        "kupiec_p_value": format_field("kupiec_p_value", row.get("kupiec_p_value")),
        "zone": as_str(row.get("zone")),
    }, None


def risk_measures_section(a: Anchored) -> tuple[dict | None, list[dict]]:
    """The engine's JSON ``data`` (None when not available) and the five largest contributors (with their
    private ``_`` ranking keys, for the Markdown)."""
    if not a.ok("risk_measures"):
        return None, []
    lookup = measure_lookup(a)
    scenarios = _value(lookup, HISTORICAL, "scenarios")
    filled = _value(lookup, HISTORICAL, "filled_returns")
    positions = _position_contributions(a)
    top = top_contributors(positions)
    backtest, backtest_reason = _backtest(a)
    data = {
        "sign_convention": _SIGN,
        "horizon_basis": _HORIZON,
        "historical": {
            "basis": _BASIS[HISTORICAL],
            "window_sessions": RISK_WINDOW,
            "scenarios": as_int(scenarios),
            "filled_returns": as_int(filled),
            "flags": _method_flags(lookup, HISTORICAL),
        },
        "parametric": {
            "basis": _BASIS[PARAMETRIC],
            "volatility_1d": format_field("volatility_1d", _value(lookup, PARAMETRIC, "volatility")),
            "volatility_annual": format_field(
                "volatility_annual", _value(lookup, PARAMETRIC, "volatility", horizon=TRADING_DAYS)),
            "volatility_of_equity": format_field(
                "volatility_of_equity", _value(lookup, PARAMETRIC, "volatility_of_equity", horizon=TRADING_DAYS)),
            "tracking_error_1d": format_field("tracking_error_1d", _value(lookup, PARAMETRIC, "tracking_error")),
            "tracking_error_annual": format_field(
                "tracking_error_annual", _value(lookup, PARAMETRIC, "tracking_error", horizon=TRADING_DAYS)),
            "tracking_error_of_equity": format_field(
                "tracking_error_of_equity",
                _value(lookup, PARAMETRIC, "tracking_error_of_equity", horizon=TRADING_DAYS)),
            "factor_share": format_field("factor_share", _value(lookup, PARAMETRIC, "factor_share")),
            "specific_share": format_field("specific_share", _value(lookup, PARAMETRIC, "specific_share")),
            "flags": _parametric_flags(lookup),
        },
        "tail": _tail_rows(lookup),
        "factor_contributions": _factor_contributions(a),
        "position_contributions": [{k: v for k, v in p.items() if not k.startswith("_")} for p in positions],
        "top_five": [p["position_id"] for p in top],
        "top_five_ranking": _RANKING,
        "backtest": backtest,
        "backtest_reason": backtest_reason,
    }
    return data, top


def risk_quality_notes(a: Anchored) -> tuple[list[str], list[str]]:
    """(limited-history notes, other notes) of the risk measures for the data-quality list, in words."""
    if not a.ok("risk_measures"):
        return [], []
    lookup = measure_lookup(a)
    scenarios = as_int(_value(lookup, HISTORICAL, "scenarios"))
    limited, other = [], []
    for method, tokens in ((HISTORICAL, _method_flags(lookup, HISTORICAL)), (PARAMETRIC, _parametric_flags(lookup))):
        for token in tokens:
            words = f"risk measures ({method}): {flag_words(token, scenarios)}"
            name = token.partition("=")[0]
            (limited if name in ("limited_history", "insufficient_history") else other).append(words)
    negative = sorted({
        t for r in lookup.values() for t in flag_tokens(r.get("flag")) if t in ("negative_var", "negative_es")
    })
    other += [f"risk measures: {flag_words(t)}" for t in negative]
    back = a.one_row("risk_backtest")
    if back is not None:
        zone = as_str(back.get("zone"))
        if zone and zone != "green":
            other.append(f"VaR backtest: {zone} zone ({as_int(back.get('exceptions'))} exceptions in "
                         f"{as_int(back.get('window_sessions'))} sessions)")
        p = as_float(back.get("kupiec_p_value"))
        if p is not None and p < 0.05:
            other.append(f"VaR backtest: Kupiec p-value {format_field('kupiec_p_value', p)} < 0.05")
    return limited, other
