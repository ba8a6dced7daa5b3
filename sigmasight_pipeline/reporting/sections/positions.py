"""The positions section: one row per position held on the anchor date, then one per position closed by
then (the CSV rows and the JSON ``positions``), and their summary.

The few figures formed here are spelled out: ``total_pnl = unrealized_pnl + realized_pnl`` (realised to
the anchor date, FIFO, fees deducted: ``engines.book``) and ``portfolio_weight = market_value /
gross_exposure`` (a signed ratio, 6 decimals). A closed position has quantity 0, market value, cost basis
and unrealised P&L 0.00, its ``exit_date`` and its realised P&L; it is not counted in ``position_count``.
"""

from __future__ import annotations

from decimal import Decimal

from ..formatting import (
    FIELD_KINDS,
    OPTION_TYPES,
    POSITION_TYPES,
    as_float,
    as_int,
    as_str,
    format_field,
    format_quantity,
    iso_date,
    join_tags,
    plain_position_type,
    to_decimal,
)
from ..inputs import SECTION_TABLES
from .anchored import Anchored, by_position, formatted
from .layout import CSV_COLUMNS, EXPOSURE_COUNTS, GREEK_NAMES
from .risk import option_pricing_note

__all__ = ["position_rows", "positions_summary"]


assert FIELD_KINDS["unrealized_pnl"] == FIELD_KINDS["total_pnl"] == FIELD_KINDS["realized_pnl"]
_ZERO = Decimal("0")


def position_rows(a: Anchored) -> list[dict]:
    """One row per position held on the anchor date, then one per position closed by then, keyed by
    :data:`CSV_COLUMNS`, in their order."""
    vals = by_position(a.records("valuations"))
    greeks = by_position(a.records("greeks"))
    pnl = by_position(a.records("position_pnl"))
    expo = a.one_row("exposures") if a.ok("exposures") else None
    gross = as_float(expo.get("gross_exposure")) if expo else None
    portfolio = formatted(expo, ("gross_exposure", "net_exposure", "notional"))  # None when no exposure row
    rows = []
    for rec in a.held_records:
        pid = as_int(rec.get("position_id"))
        ptype = plain_position_type(rec.get("position_type"))
        is_option = ptype in OPTION_TYPES
        v = vals.get(pid, {})
        g = greeks.get(pid, {})
        p = pnl.get(pid, {})
        unreal, realized, total = _pnl_fields(v.get("unrealized_pnl"), rec.get("realized_pnl"))
        mv = as_float(v.get("market_value"))
        weight = mv / gross if (mv is not None and gross not in (None, 0.0)) else None
        row = {
            "position_id": pid,
            "symbol": str(rec.get("symbol")),
            "position_type": ptype,
            "quantity": format_quantity(rec.get("quantity")),
            "entry_price": format_field("entry_price", rec.get("entry_price")),
            "current_price": format_field("current_price", v.get("price")),
            "market_value": format_field("market_value", v.get("market_value")),
            # of the open lots on the anchor date (quantity x entry price x multiplier: x100 for options)
            "cost_basis": format_field("cost_basis", rec.get("cost_basis")),
            "unrealized_pnl": unreal,
            "realized_pnl": realized,
            "daily_pnl": format_field("daily_pnl", p.get("daily_pnl")),
            "total_pnl": total,
            **{name: format_field(name, g.get(f"position_{name}")) for name in GREEK_NAMES},
            "underlying_symbol": as_str(rec.get("underlying_symbol")) if is_option else None,
            "strike_price": format_field("strike_price", rec.get("strike")) if is_option else None,
            "expiration_date": iso_date(rec.get("expiration")) if is_option else None,
            "days_to_expiry": as_int(g.get("days_to_expiry")) if is_option else None,
            "entry_date": iso_date(rec.get("entry_date")),
            "exit_date": None,
            "sector": as_str(rec.get("sector")),
            "industry": as_str(rec.get("industry")),
            "tags": join_tags(rec.get("tags")),
            # an option's notes say how it was priced: the volatility used (implied or realised), the
            # dividend yield when not 0, and a VIX option's spot-pricing note
            "notes": option_pricing_note(g) if is_option else None,
            "portfolio_name": a.inp.portfolio_name,
            "report_date": a.anchor_iso,
            **portfolio,
            "portfolio_weight": format_field("portfolio_weight", weight),
            "position_exposure": format_field("position_exposure", v.get("delta_adjusted_exposure")),
        }
        assert tuple(row) == CSV_COLUMNS
        rows.append(row)
    return rows + [closed_row(a, rec, pnl.get(as_int(rec.get("position_id")), {})) for rec in a.closed_records]


def _pnl_fields(raw_unreal, raw_realized) -> tuple[str | None, str | None, str | None]:
    """Money texts of unrealised, realised and total (= unrealised + realised) P&L."""
    realized_d = to_decimal(raw_realized) if raw_realized is not None and not _is_nan(raw_realized) else _ZERO
    realized = format_field("realized_pnl", realized_d)
    if type(raw_unreal) is float and realized_d == _ZERO:  # total = unrealized + 0.00: the same money text
        unreal = format_field("unrealized_pnl", raw_unreal)
        return unreal, realized, unreal
    unreal_d = to_decimal(raw_unreal)
    unreal = format_field("unrealized_pnl", unreal_d)
    total = format_field("total_pnl", None if unreal_d is None else unreal_d + realized_d)
    return unreal, realized, total


def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


def closed_row(a: Anchored, rec: dict, pnl: dict) -> dict:
    """The CSV row of a position closed on or before the anchor date: quantity 0, nothing held, its exit date
    and realised P&L (its daily P&L only on its exit day)."""
    zero = format_field("market_value", _ZERO)
    realized = format_field("realized_pnl", rec.get("realized_pnl") or _ZERO)
    ptype = plain_position_type(rec.get("position_type"))
    is_option = ptype in OPTION_TYPES
    expo = a.one_row("exposures") if a.ok("exposures") else None
    row = {
        "position_id": as_int(rec.get("position_id")), "symbol": str(rec.get("symbol")), "position_type": ptype,
        "quantity": "0", "entry_price": format_field("entry_price", rec.get("entry_price")), "current_price": None,
        "market_value": zero, "cost_basis": zero, "unrealized_pnl": zero, "realized_pnl": realized,
        "daily_pnl": format_field("daily_pnl", pnl.get("daily_pnl")), "total_pnl": realized,
        **{name: None for name in GREEK_NAMES},
        "underlying_symbol": as_str(rec.get("underlying_symbol")) if is_option else None,
        "strike_price": format_field("strike_price", rec.get("strike")) if is_option else None,
        "expiration_date": iso_date(rec.get("expiration")) if is_option else None,
        "days_to_expiry": None, "entry_date": iso_date(rec.get("entry_date")), "exit_date": iso_date(rec.get("exit_date")),
        "sector": as_str(rec.get("sector")), "industry": as_str(rec.get("industry")), "tags": join_tags(rec.get("tags")),
        "notes": f"closed on {iso_date(rec.get('exit_date'))}", "portfolio_name": a.inp.portfolio_name,
        "report_date": a.anchor_iso, **formatted(expo, ("gross_exposure", "net_exposure", "notional")),
        "portfolio_weight": None, "position_exposure": None,
    }
    assert tuple(row) == CSV_COLUMNS
    return row


def positions_summary(a: Anchored, rows: list[dict]) -> dict:
    by_type = {t: 0 for t in POSITION_TYPES}
    open_rows = [r for r in rows if r["exit_date"] is None]
    for r in open_rows:
        by_type[r["position_type"]] += 1
    expo = a.one_row("exposures") if a.ok("exposures") else None
    counts = {c: (as_int(expo.get(c)) if expo else None) for c in EXPOSURE_COUNTS}
    return {
        "position_count": len(open_rows),
        "closed_count": len(rows) - len(open_rows),
        "by_type": by_type,
        **{c: counts[c] for c in ("long_count", "short_count", "option_count", "stock_count", "missing_price_count")},
        "counts_source": SECTION_TABLES["exposures"],
        "not_yet_entered": a.not_yet_entered,
    }
