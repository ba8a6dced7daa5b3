"""The engine sections: each engine's JSON ``data`` (None when the engine is not available).

Exposures and valuations, Greeks, factor exposures, interest-rate sensitivity, correlations and the
snapshot; the stress tests are in :mod:`.stress`.
"""

from __future__ import annotations

from ..formatting import as_bool, as_int, as_str, format_field, iso_date, is_missing, md_pct
from ..inputs import SECTION_TABLES, records
from .anchored import Anchored, formatted, int_keys
from .groups import groups_section
from .layout import (
    EXPOSURE_COUNTS,
    EXPOSURE_MONEY,
    GREEK_NAMES,
    PORTFOLIO_GREEKS,
    RATE_MONEY,
    SNAPSHOT_COUNTS,
    SNAPSHOT_MONEY,
    factor_key,
)

__all__ = [
    "exposures_section",
    "portfolio_greeks",
    "greeks_section",
    "option_pricing_note",
    "factor_rows",
    "factor_section",
    "rate_section",
    "cluster_rows",
    "correlation_section",
    "snapshot_section",
]


def exposures_section(a: Anchored) -> dict | None:
    if not a.ok("exposures"):
        return None
    row = a.one_row("exposures") or {}
    data = formatted(row, EXPOSURE_MONEY)
    data.update({c: as_int(row.get(c)) for c in EXPOSURE_COUNTS})
    data["positions"] = [
        {
            **a.position_ref(r),
            "price_source": as_str(r.get("price_source")),
            **formatted(r, ("price", "underlying_price", "notional", "delta_adjusted_exposure")),
            "is_long": as_bool(r.get("is_long")),
        }
        for r in a.records("valuations", by_position=True)
    ]
    data["groups"] = groups_section(a)  # by tag (strategy) and by underlying
    return data


def portfolio_greeks(a: Anchored) -> tuple[dict | None, str | None]:
    """Portfolio Greek totals as stored in portfolio_snapshots (the snapshot engine sums them)."""
    snap = a.one_row("snapshot")
    if snap is None:
        return None, f"no rows in {SECTION_TABLES['snapshot']} for {a.anchor_iso}"
    out = {g: format_field(f"portfolio_{g}", snap.get(f"portfolio_{g}")) for g in GREEK_NAMES}
    out.update(formatted(snap, ("dollar_delta", "dollar_gamma")))
    return out, None


_VOL_SOURCE_WORDS = {"implied": "implied", "realized": "realized"}


def option_pricing_note(greeks_row: dict) -> str | None:
    """How an option was priced, in words: which volatility (the uploaded implied vol or the underlying's
    realised vol, with its value), the dividend yield when not 0, and the engine's ``pricing_note`` (a VIX
    option is priced off spot), joined by "; ". E.g. ``"volatility: implied 32.00%"``, ``"volatility:
    realized 95.12%; priced off VIX spot; futures curve not modelled"``. ``greeks_row`` is a
    ``position_greeks`` row (stored values or the report's formatted strings). None without a vol_source.
    """
    source = as_str(greeks_row.get("vol_source"))
    if source is None:
        return None
    if source in _VOL_SOURCE_WORDS:
        parts = [f"volatility: {_VOL_SOURCE_WORDS[source]} {md_pct(greeks_row.get('implied_vol'))}"]
    else:
        parts = ["volatility: none (no implied vol uploaded and no realised history)"]
    q = greeks_row.get("dividend_yield")
    if not is_missing(q) and float(q) != 0.0:
        parts.append(f"dividend yield {md_pct(q)}")
    note = as_str(greeks_row.get("pricing_note"))
    if note:
        parts.append(note)
    return "; ".join(parts)


_POSITION_GREEKS = (*GREEK_NAMES, *(f"position_{g}" for g in GREEK_NAMES), "dollar_delta", "dollar_gamma")


def greeks_section(a: Anchored) -> dict | None:
    if not a.ok("greeks"):
        return None
    totals, reason = portfolio_greeks(a)
    positions = []
    for r in a.records("greeks", by_position=True):
        item = {
            **a.position_ref(r),
            **formatted(r, ("underlying_price", "implied_vol")),
            "vol_source": as_str(r.get("vol_source")),  # implied | realized | none: the sigma implied_vol holds
            "dividend_yield": format_field("dividend_yield", r.get("dividend_yield")),
            "days_to_expiry": as_int(r.get("days_to_expiry")),
            "model_price": format_field("model_price", r.get("model_price")),
        }
        item.update(formatted(r, _POSITION_GREEKS))
        item["flag"] = as_str(r.get("flag"))
        item["pricing_note"] = as_str(r.get("pricing_note"))  # e.g. a VIX option priced off spot
        positions.append(item)
    return {
        "portfolio": totals,
        "portfolio_source": SECTION_TABLES["snapshot"],
        "portfolio_reason": reason,
        "positions": positions,
    }


def factor_rows(a: Anchored) -> list[dict]:
    """The portfolio factor rows in the canonical factor order."""
    return sorted(a.records("portfolio_factors"), key=lambda r: factor_key(str(r.get("factor_name"))))


_BETA_BASIS = (
    "beta_net = portfolio dollar exposure / net delta-adjusted exposure; "
    "beta_gross = portfolio dollar exposure / gross delta-adjusted exposure; "
    "dollar exposure = sum over positions of delta-adjusted exposure x beta"
)


def factor_section(a: Anchored) -> dict | None:
    if not a.ok("factor_exposures"):
        return None
    factors = [
        {
            "factor_name": str(r.get("factor_name")),
            **formatted(r, ("beta_net", "beta_gross", "dollar_exposure")),
            "positions_with_beta": as_int(r.get("positions_with_beta")),
            "positions_without_beta": as_int(r.get("positions_without_beta")),
        }
        for r in factor_rows(a)
    ]
    win = a.one_row("factor_window")
    window = None
    if win is not None:
        window = {
            "window_start": iso_date(win.get("window_start")),
            "window_end": iso_date(win.get("window_end")),
            "n_obs": as_int(win.get("n_obs")),
            **formatted(win, ("condition_number", "max_vif")),
        }
    recs = sorted(
        a.records("position_factors"),
        key=lambda r: (as_int(r.get("position_id")) or 0, factor_key(str(r.get("factor_name")))),
    )
    positions = [  # one literal per row (the longest list of a report): the layout of position_ref + ...
        {
            "position_id": as_int(r.get("position_id")),
            "symbol": a.symbol(r.get("position_id")),
            "factor_name": str(r.get("factor_name")),
            "beta": format_field("beta", r.get("beta")),
            "t_stat": format_field("t_stat", r.get("t_stat")),
            "r_squared": format_field("r_squared", r.get("r_squared")),
            "n_obs": as_int(r.get("n_obs")),
            "flag": as_str(r.get("flag")),
            "exact_fit": as_bool(r.get("exact_fit")),  # t_stat null: an exact fit has no t-statistic
            "dollar_exposure": format_field("dollar_exposure", r.get("dollar_exposure")),
        }
        for r in recs
    ]
    return {"beta_basis": _BETA_BASIS, "factors": factors, "window": window, "positions": positions}


def rate_section(a: Anchored) -> dict | None:
    if not a.ok("rate_sensitivity"):
        return None
    row = a.one_row("portfolio_rates") or {}
    positions = [
        {
            **a.position_ref(r),
            **formatted(r, ("rate_beta", "t_stat", "r_squared")),
            "n_obs": as_int(r.get("n_obs")),
            "flag": as_str(r.get("flag")),
            "dollar_per_bp": format_field("dollar_per_bp", r.get("dollar_per_bp")),
        }
        for r in a.records("position_rates", by_position=True)
    ]
    return {"portfolio": formatted(row, RATE_MONEY), "positions": positions}


def cluster_rows(a: Anchored) -> list[dict]:
    """Correlation clusters by id, their members by position id."""
    recs = a.records("correlation_clusters")
    if not recs:
        return []
    if not int_keys(recs, "cluster_id", "position_id"):  # pandas' order for other keys
        frame = a.frames["correlation_clusters"].sort_values(["cluster_id", "position_id"], kind="stable")
        groups = [(cid, records(grp)) for cid, grp in frame.groupby("cluster_id", sort=True)]
    else:
        grouped: dict[int, list[dict]] = {}
        for r in sorted(recs, key=lambda r: (r["cluster_id"], r["position_id"])):
            grouped.setdefault(r["cluster_id"], []).append(r)
        groups = list(grouped.items())
    out = []
    for cid, members in groups:
        ids = [as_int(r["position_id"]) for r in members]
        out.append(
            {
                "cluster_id": as_int(cid),
                "cluster_name": str(members[0]["cluster_name"]),
                "position_ids": ids,
                "symbols": [a.symbol(i) for i in ids],
            }
        )
    return out


def correlation_section(a: Anchored) -> dict | None:
    if not a.ok("correlations"):
        return None
    row = a.one_row("correlation_summary") or {}
    return {
        "summary": {
            "positions_included": as_int(row.get("positions_included")),
            **formatted(row, ("overall_correlation", "concentration_score", "effective_positions")),
            "clusters": as_int(row.get("clusters")),
        },
        "clusters": cluster_rows(a),
    }


def snapshot_section(a: Anchored) -> dict | None:
    if not a.ok("snapshot"):
        return None
    row = a.one_row("snapshot") or {}
    data = formatted(row, SNAPSHOT_MONEY)
    data["daily_return"] = format_field("daily_return", row.get("daily_return"))
    data.update({c: as_int(row.get(c)) for c in SNAPSHOT_COUNTS})
    data.update(formatted(row, PORTFOLIO_GREEKS))
    data["is_first_snapshot"] = as_bool(row.get("is_first_snapshot"))
    data["pnl_basis"] = as_str(row.get("pnl_basis"))
    hist = a.history()
    data["history_points"] = len(hist)
    data["history_start"] = iso_date(hist["date"].iloc[0]) if len(hist) else None
    return data
