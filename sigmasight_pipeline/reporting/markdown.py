"""The Markdown report: ``templates/portfolio_report.md.j2`` rendered (Jinja2) from a report's sections.

Every value reaches the template pre-formatted (money as ``$1,234.50``, ratios as percentages) and
table cells pipe-escaped. An engine without data for the anchor date shows its "not available" marker
(:func:`not_available_marker`) with the reason. The Jinja2 environment and template are built once per
process.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from .formatting import (
    as_bool,
    as_str,
    format_decimal,
    format_field,
    md_inline,
    md_int,
    md_money,
    md_num,
    md_pct,
    to_decimal,
)
from .sections import (
    CHARTS,
    ENGINE_LABELS,
    ENGINES,
    EXPOSURE_COUNTS,
    EXPOSURE_MONEY,
    GREEK_NAMES,
    ReportSections,
)
from .sections.performance import WINDOW_LABELS
from .sections.risk import option_pricing_note
from .sections.risk_measures import (
    CONTRIBUTION_LEVEL,
    HORIZONS,
    METHODS,
    RISK_WINDOW,
    SCALED_HORIZON,
    TAIL_LEVELS,
    TRADING_DAYS,
    flag_words,
    level_label,
)

__all__ = ["TEMPLATE_DIR", "TEMPLATE", "not_available_marker", "markdown_context", "render_markdown"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "portfolio_report.md.j2"
_MARKER = "**Not available** (engine: {engine}): {reason}"

_RATE_LABELS = {
    "pnl_rates_up_100bp": "Rates +100 bp", "pnl_rates_down_100bp": "Rates -100 bp",
    "pnl_rates_up_200bp": "Rates +200 bp", "pnl_rates_down_200bp": "Rates -200 bp",
    "pnl_market_up_5": "Market +5%", "pnl_market_down_5": "Market -5%",
    "pnl_market_up_10": "Market +10%", "pnl_market_down_10": "Market -10%",
    "pnl_market_up_20": "Market +20%", "pnl_market_down_20": "Market -20%",
}


def not_available_marker(engine: str, reason: str) -> str:
    """The exact Markdown line that marks an engine's section as not available."""
    return _MARKER.format(engine=engine, reason=md_inline(reason))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )


@lru_cache(maxsize=1)
def _template() -> Template:
    return _environment().get_template(TEMPLATE)


# ---------------------------------------------------------------------------------------------------
# The template's context, part by part
# ---------------------------------------------------------------------------------------------------
def _value(snap: dict) -> dict:
    return {
        "total_value": md_money("total_value", snap.get("total_value")),
        "daily_pnl": md_money("daily_pnl", snap.get("daily_pnl")),
        "daily_return": md_pct(snap.get("daily_return")),
        "cumulative_pnl": md_money("cumulative_pnl", snap.get("cumulative_pnl")),
        "realized_pnl": md_money("realized_pnl", snap.get("realized_pnl")),
        "cumulative_realized_pnl": md_money("cumulative_realized_pnl", snap.get("cumulative_realized_pnl")),
        "pnl_basis": md_inline(as_str(snap.get("pnl_basis")) or "n/a"),
        "first": as_bool(snap.get("is_first_snapshot")),
    }


_GROUP_TITLES = {"by_tag": "Tag (strategy)", "by_underlying": "Underlying"}


def _groups(data: dict) -> dict:
    """The exposures-by-group tables (``sections.groups``): one per grouping, its rows as Markdown cells."""
    tables = [
        {
            "title": title,
            "rows": [
                {
                    "group": md_inline(g["group"]),
                    "count": md_int(g["position_count"]),
                    **{f: md_money(f, g[f]) for f in ("gross_exposure", "net_exposure", "delta_adjusted_exposure")},
                    "share": md_pct(g["share_of_gross"]),
                }
                for g in data[key]
            ],
        }
        for key, title in _GROUP_TITLES.items()
    ]
    return {"tables": tables, "reason": md_inline(data["reason"]) if data["reason"] else None}


def _correlations(corr: dict, data: dict) -> tuple[dict, list[dict]]:
    summary = {
        "positions_included": md_int(corr.get("positions_included")),
        "overall_correlation": md_num("overall_correlation", corr.get("overall_correlation")),
        "concentration_score": md_num("concentration_score", corr.get("concentration_score")),
        "effective_positions": md_num("effective_positions", corr.get("effective_positions")),
        "clusters": md_int(corr.get("clusters")),
    }
    clusters = [
        {"name": md_inline(c["cluster_name"]), "symbols": md_inline(", ".join(c["symbols"]))} for c in data["clusters"]
    ]
    return summary, clusters


def _greeks(sec: ReportSections, data: dict) -> tuple[dict, list[dict]]:
    if data["portfolio"] is None:
        totals = {"totals": None, "reason": md_inline(data["portfolio_reason"])}
    else:
        snap = sec.rows["snapshot"] or {}
        totals = {
            "totals": {
                **{g: md_num(f"portfolio_{g}", snap.get(f"portfolio_{g}")) for g in GREEK_NAMES},
                "dollar_delta": md_money("dollar_delta", snap.get("dollar_delta")),
                "dollar_gamma": md_money("dollar_gamma", snap.get("dollar_gamma")),
            },
            "reason": None,
        }
    is_option = sec.anchored.is_option
    options = [
        {
            "symbol": md_inline(p["symbol"]),
            "days": "n/a" if p["days_to_expiry"] is None else str(p["days_to_expiry"]),
            **{g: p[f"position_{g}"] or "n/a" for g in GREEK_NAMES},
            "dollar_delta": md_money("dollar_delta", p["dollar_delta"]),
            "pricing": md_inline(option_pricing_note(p) or "n/a"),
        }
        for p in data["positions"]
        if is_option(p["position_id"])
    ]
    return totals, options


def _factors(data: dict) -> dict:
    factors = [
        {
            "name": md_inline(f["factor_name"]),
            "beta_net": f["beta_net"] or "n/a",
            "beta_gross": f["beta_gross"] or "n/a",
            "dollar_exposure": md_money("dollar_exposure", f["dollar_exposure"]),
            "with": "n/a" if f["positions_with_beta"] is None else str(f["positions_with_beta"]),
            "without": "n/a" if f["positions_without_beta"] is None else str(f["positions_without_beta"]),
        }
        for f in data["factors"]
    ]
    names = [f["factor_name"] for f in data["factors"]]
    for p in data["positions"]:
        if p["factor_name"] not in names:
            names.append(p["factor_name"])
    cells: dict[int, dict] = {}
    labels: dict[int, str] = {}
    for p in data["positions"]:
        pid = p["position_id"]
        labels[pid] = f"{p['symbol']} (#{pid})"
        beta = p["beta"] or "n/a"
        tstat = "n/a, exact fit" if p["exact_fit"] else (p["t_stat"] or "n/a")
        cells.setdefault(pid, {})[p["factor_name"]] = f"{beta} (t {tstat})" if p["beta"] else "n/a"
    w = data["window"]
    window = None if w is None else {
        "start": w["window_start"] or "n/a", "end": w["window_end"] or "n/a",
        "n_obs": "n/a" if w["n_obs"] is None else str(w["n_obs"]),
        "condition_number": w["condition_number"] or "n/a", "max_vif": w["max_vif"] or "n/a",
    }
    return {
        "factors": factors,
        "factor_names": [md_inline(n) for n in names],
        "position_betas": [
            {"label": md_inline(labels[pid]), "cells": [cells[pid].get(n, "n/a") for n in names]} for pid in sorted(cells)
        ],
        "factor_window": window,
    }


def _rates(row: dict) -> dict:
    return {
        "dollar_per_bp": md_money("dollar_per_bp", row.get("dollar_per_bp")),
        "scenarios": [{"label": label, "pnl": md_money(f, row.get(f))} for f, label in _RATE_LABELS.items()],
    }


#: The stress table's mark of a scenario whose loss is larger than the book's equity (``exceeds_equity``).
BEYOND_EQUITY = "beyond equity"


def _pct_of_equity_cell(r: dict) -> str:
    """% of equity, "n/a (equity <= 0)" when the book has no positive equity, marked when the loss is beyond it."""
    cell = md_pct(r["_pct"])
    if r["_pct"] is None and "equity_nonpositive" in r["flag"].split(";"):
        cell = "n/a (equity <= 0)"
    return f"{cell} **{BEYOND_EQUITY}**" if r["exceeds_equity"] else cell


def _stress_table(rows: list[dict]) -> list[dict]:
    return [
        {
            "rank": i + 1,
            "name": md_inline(r["name"] + (" (loss cap applied)" if r["loss_cap_applied"] else "")),
            "category": md_inline(r["category"]),
            "direct": md_money("direct_pnl", r["_direct"]),
            "correlated": md_money("correlated_pnl", r["_correlated"]),
            "pct_gross": md_pct(r["_pct_gross"]),
            "pct": _pct_of_equity_cell(r),
        }
        for i, r in enumerate(rows)
    ]


# ---------------------------------------------------------------------------------------------------
# Risk measures
# ---------------------------------------------------------------------------------------------------
_MEASURE_LABELS = {"var": "VaR", "es": "ES"}
_METHOD_LABELS = {"historical": "Historical", "parametric": "Parametric"}
_ZONE_WORDS = {"green": "green", "yellow": "yellow", "red": "red"}


def _loss_cell(value) -> str:
    """A VaR / ES figure (a positive loss); a negative one is a gain and says so."""
    cell = md_money("loss", value)
    d = to_decimal(value)
    return f"{cell} (gain)" if d is not None and d < 0 else cell


def _ratio2(value) -> str:
    """A ratio such as Sharpe shown with 2 decimals (display only; the JSON has 6)."""
    d = to_decimal(value)
    return "n/a" if d is None else format_decimal(d, 2)


def _risk_measures(sec: ReportSections) -> dict:
    data = sec.engines["risk_measures"]
    tail = {(r["method"], r["measure"], r["level"], r["horizon_days"]): r for r in data["tail"]}
    table = []
    for measure, level in TAIL_LEVELS:
        key_level = format_field("level", level)
        table.append({
            "measure": _MEASURE_LABELS[measure],
            "level": level_label(level),
            "cells": [_loss_cell(tail[(m, measure, key_level, h)]["loss"]) if (m, measure, key_level, h) in tail
                      else "n/a" for m in METHODS for h in HORIZONS],
        })
    hist, par = data["historical"], data["parametric"]
    scenarios = hist["scenarios"]
    notes = [f"{_METHOD_LABELS['historical']}: {flag_words(t, scenarios)}" for t in hist["flags"]]
    notes += [f"{_METHOD_LABELS['parametric']}: {flag_words(t, scenarios)}" for t in par["flags"]]
    negative = sorted({t for r in data["tail"] for t in (r["flag"] or "").split(";") if t in ("negative_var", "negative_es")})
    notes += [flag_words(t) for t in negative]
    factors = [
        {
            "name": md_inline(f["factor_name"]),
            "exposure": "" if f["dollar_exposure"] is None and f["factor_name"] == "Specific"
            else md_money("dollar_exposure", f["dollar_exposure"]),
            "contribution": md_money("contribution", f["contribution"]),
            "share": md_pct(f["share"]),
        }
        for f in data["factor_contributions"]
    ]
    top = []
    for i, p in enumerate(sec.top_contributors):
        es = next((e for e in p["historical_es"] if to_decimal(e["level"]) == to_decimal(CONTRIBUTION_LEVEL)), None)
        vol = p["volatility"]
        top.append({
            "rank": i + 1,
            "position": md_inline(f"{p['symbol']} (#{p['position_id']})"),
            "es": "n/a" if es is None else md_money("contribution", es["contribution"]),
            "es_share": "n/a" if es is None else md_pct(es["share"]),
            "vol": "n/a" if vol is None else md_money("contribution", vol["contribution"]),
            "vol_share": "n/a" if vol is None else md_pct(vol["share"]),
        })
    bt = data["backtest"]
    backtest = None if bt is None else {
        "zone": _ZONE_WORDS.get(bt["zone"] or "", md_inline(bt["zone"] or "n/a")),
        "exceptions": md_int(bt["exceptions"]),
        "sessions": md_int(bt["window_sessions"]),
        "short_window": (bt["window_sessions"] or 0) < RISK_WINDOW,
        "kupiec_lr": md_num("kupiec_lr", bt["kupiec_lr"]),
        "kupiec_p_value": md_num("kupiec_p_value", bt["kupiec_p_value"]),
        "pnl": md_money("realized_pnl", bt["realized_pnl"]),
        "var": md_money("var_99", bt["var_99"]),
        "var_date": bt["var_date"] or "n/a",
        "exception": "yes" if bt["exception"] else "no",
    }
    return {
        "headers": [f"{_METHOD_LABELS[m]} {h}-day" for m in METHODS for h in HORIZONS],
        "table": table,
        "scaled_horizon": SCALED_HORIZON,
        "window": RISK_WINDOW,
        "scenarios": md_int(scenarios),
        "filled": md_int(hist["filled_returns"]),
        "annual_days": TRADING_DAYS,
        "volatility": {
            "day": md_money("volatility_1d", par["volatility_1d"]),
            "annual": md_money("volatility_annual", par["volatility_annual"]),
            "of_equity": md_pct(par["volatility_of_equity"]),
        },
        "tracking_error": {
            "day": md_money("tracking_error_1d", par["tracking_error_1d"]),
            "annual": md_money("tracking_error_annual", par["tracking_error_annual"]),
            "of_equity": md_pct(par["tracking_error_of_equity"]),
        },
        "factor_share": md_pct(par["factor_share"]),
        "specific_share": md_pct(par["specific_share"]),
        "factors": factors,
        "top": top,
        "top_level": level_label(CONTRIBUTION_LEVEL),
        "backtest": backtest,
        "backtest_reason": md_inline(data["backtest_reason"]) if data["backtest_reason"] else None,
        "notes": [md_inline(n) for n in notes],
    }


# ---------------------------------------------------------------------------------------------------
# Performance and attribution
# ---------------------------------------------------------------------------------------------------
def _day_cell(value, date) -> str:
    return "n/a" if value is None else f"{md_pct(value)} ({date or 'n/a'})"


def _performance(sec: ReportSections) -> dict:
    data = sec.engines["performance"]
    windows, notes = [], []
    for w in data["windows"]:
        label = WINDOW_LABELS.get(w["window_name"], w["window_name"])
        peak, trough = w["peak_date"], w["trough_date"]
        windows.append({
            "label": md_inline(label),
            "start": w["window_start"] or "n/a",
            "returns": f"{md_int(w['n_returns'])} / {md_int(w['window_sessions'])}",
            "cumulative": md_pct(w["cumulative_return"]),
            "annualized": md_pct(w["annualized_return"]),
            "volatility": md_pct(w["annual_volatility"]),
            "sharpe": _ratio2(w["sharpe_ratio"]),
            "sortino": _ratio2(w["sortino_ratio"]),
            "max_drawdown": md_pct(w["max_drawdown"]),
            "peak_trough": f"{peak} → {trough}" if peak and trough else "n/a",
            "current_drawdown": md_pct(w["current_drawdown"]),
            "calmar": _ratio2(w["calmar_ratio"]),
            "best": _day_cell(w["best_day"], w["best_day_date"]),
            "worst": _day_cell(w["worst_day"], w["worst_day_date"]),
            "positive": md_pct(w["positive_days_share"]),
            "beta": md_num("beta", w["beta"]),
            "alpha": md_pct(w["alpha"]),
            "correlation": md_num("correlation", w["correlation"]),
            "tracking_error": md_pct(w["tracking_error"]),
            "market": md_pct(w["market_return"]),
        })
        if w["reason"]:
            prefix = "no figure: " if w["flag"] == "insufficient_returns" else ""
            notes.append(f"**{md_inline(label)}**: {prefix}{md_inline(w['reason'])}")
    today, cumulative = data["attribution"], data["cumulative_attribution"]
    cum_by_line = {c["line"]: c for c in cumulative["lines"]} if cumulative else {}
    lines = []
    names = [l["line"] for l in today["lines"]] if today else []
    names += [c["line"] for c in (cumulative["lines"] if cumulative else []) if c["line"] not in names]
    today_by_line = {l["line"]: l for l in today["lines"]} if today else {}
    for name in names:
        t, c = today_by_line.get(name), cum_by_line.get(name)
        kind = (t or c)["line_type"]
        label = name.capitalize() if kind in ("specific", "residual") else name
        lines.append({
            "line": md_inline(label),
            "exposure": md_money("exposure", t["exposure"]) if t and kind == "factor" else "",
            "factor_return": md_pct(t["factor_return"]) if t and kind == "factor" else "",
            "today": (md_money("pnl", t["pnl"]) + (f" ({md_inline(t['flag'])})" if t["pnl"] is None and t["flag"] else ""))
            if t else "n/a",
            "cumulative": md_money("pnl", c["pnl"]) if c else "n/a",
        })
    mismatch = None
    if today and today["daily_pnl"] is not None and today["total_pnl"] != today["daily_pnl"]:
        mismatch = (f"the lines add up to {md_money('total_pnl', today['total_pnl'])}, not the snapshot's "
                    f"{md_money('daily_pnl', today['daily_pnl'])}")
    uncomputed = [f"{md_inline(c['line'])} ({c['uncomputed_sessions']})" for c in (cumulative["lines"] if cumulative else [])
                  if c["uncomputed_sessions"]]
    return {
        "windows": windows,
        "notes": notes,
        "attribution": {
            "today": today is not None,
            "today_reason": md_inline(data["attribution_reason"]) if data["attribution_reason"] else None,
            "previous_date": today["previous_date"] if today else None,
            "cumulative": cumulative is not None,
            "first_date": cumulative["first_date"] if cumulative else None,
            "last_date": cumulative["last_date"] if cumulative else None,
            "sessions": cumulative["sessions"] if cumulative else 0,
            "lines": lines,
            "total_today": md_money("daily_pnl", today["daily_pnl"] if today["daily_pnl"] is not None else today["total_pnl"])
            if today else "n/a",
            "total_cumulative": md_money("total_pnl", cumulative["total_pnl"]) if cumulative else "n/a",
            "mismatch": mismatch,
            "uncomputed": ", ".join(uncomputed),
        },
    }


def markdown_context(sec: ReportSections) -> dict:
    """The template's variables for one report."""
    inp, ok = sec.inp, {e: avail for e, (avail, _) in sec.availability.items()}
    ctx: dict = {
        "name": inp.portfolio_name,
        "portfolio_id": inp.portfolio_id,
        "owner": as_str(inp.portfolio.get("owner")),
        "report_date": sec.anchor_iso,
        "anchor_date": sec.anchor_iso,
        "generated_at": sec.generated_iso,
        "marker": {e: None if sec.availability[e][0] else not_available_marker(e, sec.availability[e][1]) for e in ENGINES},
    }
    snap = sec.rows["snapshot"] if ok["snapshot"] else None
    if snap is not None:
        ctx["value"] = _value(snap)
    expo = sec.rows["exposures"] if ok["exposures"] else None
    if expo is not None:
        ctx["counts"] = {c: md_int(expo.get(c)) for c in EXPOSURE_COUNTS}
        ctx["expo"] = {c: md_money(c, expo.get(c)) for c in EXPOSURE_MONEY}
        ctx["groups"] = _groups(sec.engines["exposures"]["groups"])
    corr = sec.rows["correlation_summary"] if ok["correlations"] else None
    if corr is not None:
        ctx["corr"], ctx["clusters"] = _correlations(corr, sec.engines["correlations"])
    if ok["greeks"]:
        ctx["greeks"], ctx["option_greeks"] = _greeks(sec, sec.engines["greeks"])
    if ok["factor_exposures"]:
        ctx.update(_factors(sec.engines["factor_exposures"]))
    if ok["rate_sensitivity"]:
        ctx["rates"] = _rates(sec.rows["portfolio_rates"] or {})
    if ok["stress_tests"]:
        data = sec.engines["stress_tests"]
        ctx["stress"] = {
            "count": len(sec.stress), "worst": _stress_table(sec.worst), "best": _stress_table(sec.best),
            "gross_exposure": md_money("gross_exposure", data["gross_exposure"]),
            "equity": md_money("equity", data["equity"]),
            "beyond_equity": sum(1 for r in sec.stress if r["exceeds_equity"]),
        }
    if ok["risk_measures"]:
        ctx["risk"] = _risk_measures(sec)
    if ok["performance"]:
        ctx["perf"] = _performance(sec)
    ctx["charts"] = [
        {"file": f, "title": CHARTS[f], "available": drawn, "reason": md_inline(reason)}
        for f, (drawn, reason) in sec.charts.items()
    ]
    ctx["dq"] = {
        "engines": [
            {
                "engine": e,
                "label": ENGINE_LABELS[e],
                "status": "available" if avail else "not available",
                "reason": md_inline(reason or ""),
            }
            for e, (avail, reason) in sec.availability.items()
        ],
        "limited_history": list(sec.flags.limited_history),
        "missing_prices": list(sec.flags.missing_prices),
        "other_flags": list(sec.flags.other),
        "entry_warnings": [md_inline(w) for w in sec.flags.entry_warnings],
        "failed_checks": list(inp.failed_checks),
    }
    return ctx


def render_markdown(sec: ReportSections) -> str:
    """The report's Markdown text."""
    return _template().render(**markdown_context(sec))
