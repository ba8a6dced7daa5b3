"""Exposures grouped by tag (strategy) and by underlying: the stored ``group_exposures`` rows of the anchor date
(``engines.valuation.group_exposures``, written by ``position_valuations``), each with its share of the
portfolio's gross exposure.
"""

from __future__ import annotations

from sigmasight_pipeline.engines.valuation import UNTAGGED

from ..formatting import as_float, as_int, format_field
from ..inputs import SECTION_TABLES
from .anchored import Anchored

__all__ = ["GROUP_KEYS", "GROUP_MONEY", "GROUP_NOTE", "groups_section"]

#: stored ``group_type`` -> the key of its list in the report
GROUP_KEYS = {"tag": "by_tag", "underlying": "by_underlying"}
#: money figures of a group, in the JSON's order (``net_exposure`` is the signed market value)
GROUP_MONEY = ("market_value", "gross_exposure", "net_exposure", "delta_adjusted_exposure", "volatility_delta_exposure")
GROUP_NOTE = (
    "A position with several tags counts fully in each of its tag groups, so the tag groups can add up to more than "
    "the portfolio; positions without a tag form the group (untagged). By underlying, an option counts with its "
    "underlying (a stock and the options on it together): those groups add up to the portfolio. Tags are those in "
    "force on the anchor date. Net exposure is the group's signed market value; share_of_gross = the group's gross "
    "exposure / the portfolio's gross exposure. delta_adjusted_exposure is equity exposure; the delta-adjusted "
    "exposure of VIX options is volatility_delta_exposure."
)


def _group(row: dict, portfolio_gross: float | None) -> dict:
    gross = as_float(row.get("gross_exposure"))
    share = gross / portfolio_gross if gross is not None and portfolio_gross else None
    return {
        "group": str(row.get("group_name")),
        "position_count": as_int(row.get("position_count")),
        "market_value": format_field("market_value", row.get("market_value")),
        "gross_exposure": format_field("gross_exposure", gross),
        "net_exposure": format_field("net_exposure", row.get("market_value")),
        "delta_adjusted_exposure": format_field("delta_adjusted_exposure", row.get("delta_adjusted_exposure")),
        "volatility_delta_exposure": format_field("volatility_delta_exposure", row.get("volatility_delta_exposure")),
        "share_of_gross": format_field("share_of_gross", share),
    }


def groups_section(a: Anchored) -> dict:
    """``{"note", "reason", "by_tag", "by_underlying"}``: each list a group per stored row, largest gross
    exposure first (then by name; "(untagged)" last among the tags); ``reason`` says why both are empty
    (no stored rows for the anchor date), else None."""
    recs = a.records("group_exposures")
    portfolio_gross = as_float((a.one_row("exposures") or {}).get("gross_exposure"))
    out: dict = {"note": GROUP_NOTE, "reason": None}
    for group_type, key in GROUP_KEYS.items():
        rows = [r for r in recs if r.get("group_type") == group_type]
        rows.sort(key=lambda r: (str(r.get("group_name")) == UNTAGGED, -(as_float(r.get("gross_exposure")) or 0.0),
                                 str(r.get("group_name"))))
        out[key] = [_group(r, portfolio_gross) for r in rows]
    if not recs:
        out["reason"] = f"no rows in {SECTION_TABLES['group_exposures']} for {a.anchor_iso}"
    return out
