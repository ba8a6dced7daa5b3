"""The stress-test section: results joined with the stored scenarios, ranked worst and best five."""

from __future__ import annotations

import pandas as pd

from ..formatting import as_bool, as_float, as_str, format_field, is_missing
from ..inputs import records
from .anchored import Anchored, formatted
from .layout import factor_key

__all__ = ["stress_rows", "ranked", "stress_section"]


def _scenario_meta(scen: pd.DataFrame) -> tuple[dict[str, dict], dict[str, int]]:
    """scenario id -> its first stored row, and -> its place in display order."""
    meta: dict[str, dict] = {}
    order: dict[str, int] = {}
    if len(scen):
        if "display_order" in scen.columns:
            scen = scen.sort_values(["display_order"], kind="stable")
        for i, rec in enumerate(records(scen)):
            sid = str(rec.get("scenario_id"))
            meta.setdefault(sid, rec)
            order.setdefault(sid, i)
    return meta, order


def stress_rows(a: Anchored) -> list[dict]:
    """Stress results joined with the scenario metadata, in the scenarios' order (display order).

    Keys starting with "_" are for ranking and display (raw floats, order) and stay out of the JSON.
    """
    if not a.ok("stress_tests") or len(a.frames["stress_results"]) == 0:
        return []
    scen = a.inp.scenarios if isinstance(a.inp.scenarios, pd.DataFrame) else pd.DataFrame()
    meta, order = a.inp.cache.get(scen, "scenario_meta", _scenario_meta)
    breakdown: dict[str, list[dict]] = {}
    for rec in a.records("stress_breakdown"):
        breakdown.setdefault(str(rec.get("scenario_id")), []).append(rec)
    rows = []
    for rec in a.records("stress_results"):
        sid = str(rec.get("scenario_id"))
        m = meta.get(sid, {})
        parts = sorted(breakdown.get(sid, []), key=lambda r: factor_key(str(r.get("factor_name"))))
        rows.append(
            {
                "scenario_id": sid,
                "name": str(m.get("name") if not is_missing(m.get("name")) else sid),
                "category": as_str(m.get("category")) or "unknown",
                "severity": as_str(m.get("severity")) or "unknown",
                "_direct": as_float(rec.get("direct_pnl")),
                "_correlated": as_float(rec.get("correlated_pnl")),
                "_pct": as_float(rec.get("pct_of_equity")),
                "_pct_gross": as_float(rec.get("pct_of_gross_exposure")),
                **formatted(rec, ("direct_pnl", "correlated_pnl", "correlation_effect", "pct_of_gross_exposure",
                                  "pct_of_equity")),
                "exceeds_equity": as_bool(rec.get("exceeds_equity")),
                "loss_cap_applied": as_bool(rec.get("loss_cap_applied")),
                "flag": as_str(rec.get("flag")) or "",
                "factor_breakdown": [
                    {
                        "factor_name": str(p.get("factor_name")),
                        "shock": format_field("shock", p.get("shock")),
                        "implied_move": format_field("implied_move", p.get("implied_move")),
                        "direct_pnl": format_field("direct_pnl", p.get("direct_pnl")),
                        "correlated_pnl": format_field("correlated_pnl", p.get("correlated_pnl")),
                    }
                    for p in parts
                ],
                "_known": sid in meta,
                "_order": order.get(sid, len(order)),
            }
        )
    rows.sort(key=lambda r: (r["_order"], r["scenario_id"]))
    return rows


def ranked(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Worst five (lowest correlated P&L first) and best five (highest first); ties by direct P&L, id."""
    big = float("inf")

    def key(r):
        c = r["_correlated"] if r["_correlated"] is not None else big
        d = r["_direct"] if r["_direct"] is not None else big
        return (c, d, r["scenario_id"])

    worst = sorted(rows, key=key)[:5]
    best = sorted(
        [r for r in rows if r["_correlated"] is not None],
        key=lambda r: (-r["_correlated"], -(r["_direct"] or 0.0), r["scenario_id"]),
    )[:5]
    return worst, best


def _stress_base(a: Anchored, column: str):
    """A base of the stress percentages as stored with the results (``gross_exposure`` or ``equity``)."""
    if column not in a.frames["stress_results"].columns:
        return None
    values = [r[column] for r in a.records("stress_results") if not is_missing(r[column])]
    return values[0] if values else None


def stress_section(a: Anchored, rows: list[dict], worst: list[dict], best: list[dict]) -> dict | None:
    if not a.ok("stress_tests"):
        return None
    return {
        "scenario_count": len(rows),
        "ranking": "correlated_pnl",
        "pct_of_gross_exposure_basis": "correlated_pnl / gross exposure (ratio)",
        "pct_of_equity_basis": (
            "correlated_pnl / equity (ratio); equity = net liquidation value = net exposure, no cash modelled; "
            "null when equity <= 0"
        ),
        "gross_exposure": format_field("gross_exposure", _stress_base(a, "gross_exposure")),
        "equity": format_field("equity", _stress_base(a, "equity")),
        "scenarios": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "worst_five": [r["scenario_id"] for r in worst],
        "best_five": [r["scenario_id"] for r in best],
    }
