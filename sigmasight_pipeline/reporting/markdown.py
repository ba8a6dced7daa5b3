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

from .formatting import as_bool, as_str, md_inline, md_int, md_money, md_num, md_pct
from .sections import (
    CHARTS,
    ENGINE_LABELS,
    ENGINES,
    EXPOSURE_COUNTS,
    EXPOSURE_MONEY,
    GREEK_NAMES,
    ReportSections,
)
from .sections.risk import option_pricing_note

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
