"""The data-quality flags a report derives from its rows (limited history, missing prices, model prices,
Greeks and stress flags, rows left out, ...), then the caller's own flags; and the portfolio's entry sanity
warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..formatting import as_bool, as_int
from ..inputs import SECTION_TABLES, day_values, records
from .anchored import Anchored, int_keys
from .layout import LIMITED_FLAGS, OPTIONAL_SECTIONS
from .performance import performance_quality_notes
from .risk_measures import risk_quality_notes

__all__ = ["QualityFlags", "quality_flags"]


def _first_by_position(a: Anchored, section: str, where) -> list[tuple[object, dict]]:
    """(position id, its first row) of the rows of ``section`` satisfying ``where``, by position id: the
    first row of each group of ``frame[mask].groupby("position_id", sort=True)``."""
    recs = [r for r in a.records(section) if where(r)]
    if not recs:
        return []
    if not int_keys(recs, "position_id"):  # pandas' grouping for other keys
        frame = a.frames[section]
        rows = frame[np.array([where(r) for r in a.records(section)], dtype=bool)]
        return [(pid, records(grp)[0]) for pid, grp in rows.groupby("position_id", sort=True)]
    first: dict[int, dict] = {}
    for r in recs:
        first.setdefault(r["position_id"], r)
    return sorted(first.items(), key=lambda item: item[0])


@dataclass
class QualityFlags:
    limited_history: list[str] = field(default_factory=list)
    missing_prices: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    #: entry sanity (``quality.entries``): entries booked at a price that cannot be right, imported as given
    entry_warnings: list[str] = field(default_factory=list)


def _entry_warnings(a: Anchored) -> list[str]:
    """The stored entry sanity warnings of entries made on or before the anchor date (by date, file, row)."""
    frame = a.inp.section("entry_warnings")
    if len(frame) == 0:
        return []
    made = day_values(frame["entry_date"]) <= np.datetime64(a.anchor, "D")
    shown = frame[made]
    where = np.where(shown["source"].astype(str) == "upload", "upload", "trades file " + shown["source"].astype(str))
    return [f"{w}: {m}" for w, m in zip(where, shown["message"].astype(str))]


def quality_flags(a: Anchored, stress: list[dict]) -> QualityFlags:
    """The data-quality flags derived from the rows themselves, then the caller's ``inp.flags``."""
    flags = QualityFlags()
    lim, miss, other = flags.limited_history, flags.missing_prices, flags.other

    def sym(pid) -> str:
        return f"{a.symbol(pid)} (#{as_int(pid)})"

    pf = a.frames["position_factors"]
    if len(pf) and "flag" in pf.columns:
        with_n = "n_obs" in pf.columns
        for pid, first in _first_by_position(a, "position_factors", lambda r: r["flag"] in LIMITED_FLAGS):
            n = as_int(first["n_obs"]) if with_n else None
            lim.append(f"factor betas of {sym(pid)}: {first['flag']} (n_obs {n})")
        for pid, _ in _first_by_position(a, "position_factors", lambda r: r["flag"] == "singular_design"):
            other.append(f"factor betas of {sym(pid)}: singular_design (no beta)")
    pr = a.frames["position_rates"]
    if len(pr) and "flag" in pr.columns:
        for rec in a.records("position_rates", by_position=True):
            parts = str(rec.get("flag") or "").split(";")
            if parts[0] in LIMITED_FLAGS:
                lim.append(f"rate beta of {sym(rec.get('position_id'))}: {parts[0]} (n_obs {as_int(rec.get('n_obs'))})")
            if "missing_rho" in parts:
                other.append(f"rate sensitivity of {sym(rec.get('position_id'))}: no rho, its rho term counts 0")
    val = a.frames["valuations"]
    if len(val) and "price_source" in val.columns:
        for rec in a.records("valuations", by_position=True):
            src = str(rec.get("price_source"))
            if src == "missing":
                miss.append(f"{sym(rec.get('position_id'))}: no price for {a.anchor_iso}; left out of money totals")
            elif src == "model":
                other.append(f"{sym(rec.get('position_id'))}: marked to model (Black-Scholes), no market price")
    expo = a.one_row("exposures")
    if expo is not None and (as_int(expo.get("missing_price_count")) or 0) > 0 and not miss:
        miss.append(f"{as_int(expo.get('missing_price_count'))} position(s) without a price for {a.anchor_iso}")
    if "pnl_basis" in a.frames["position_pnl"].columns:
        for rec in a.records("position_pnl", by_position=True):
            if rec["pnl_basis"] == "missing_price":
                miss.append(f"{sym(rec.get('position_id'))}: daily P&L not computed (missing price)")
    if "flag" in a.frames["greeks"].columns:
        for rec in a.records("greeks", by_position=True):
            if not (isinstance(rec["flag"], str) and rec["flag"] == "ok"):
                other.append(f"Greeks of {sym(rec.get('position_id'))}: {rec.get('flag')}")
    for r in stress:
        if r["loss_cap_applied"]:
            other.append(f"stress scenario {r['scenario_id']}: loss cap applied for display")
        if r["flag"] and r["flag"] != "ok":
            other.append(f"stress scenario {r['scenario_id']}: {r['flag']}")
        if not r["_known"]:
            other.append(f"stress scenario {r['scenario_id']}: not in the stored scenario list")
    snap = a.one_row("snapshot")
    if snap is not None and as_bool(snap.get("is_first_snapshot")):
        other.append("first snapshot: its daily P&L is the P&L since entry (measured from entry prices)")
    risk_limited, risk_other = risk_quality_notes(a)
    lim.extend(risk_limited)
    lim.extend(performance_quality_notes(a))
    other.extend(risk_other)
    first_snapshot = snap is not None and as_bool(snap.get("is_first_snapshot"))
    for engine, sections in OPTIONAL_SECTIONS.items():  # optional tables of available engines
        if a.ok(engine):
            for s in sections:
                if s == "attribution" and first_snapshot:
                    continue  # a first snapshot's P&L (since entry) is never attributed: said above
                if len(a.frames[s]) == 0:
                    other.append(f"no rows in {SECTION_TABLES[s]} for {a.anchor_iso}")
    summary = a.one_row("correlation_summary")
    if summary is not None and (as_int(summary.get("clusters")) or 0) > 0 and len(a.frames["correlation_clusters"]) == 0:
        other.append(f"no rows in {SECTION_TABLES['correlation_clusters']} for {a.anchor_iso}")
    if a.not_yet_entered:
        other.append(f"{a.not_yet_entered} position(s) entered after {a.anchor_iso} are not in this report")
    for s, n in a.ignored.items():
        if n:
            other.append(f"{n} row(s) of {SECTION_TABLES[s]} dated other than {a.anchor_iso} (or of another portfolio) ignored")
    other.extend(a.inp.flags)
    flags.entry_warnings.extend(_entry_warnings(a))
    return flags
