"""The chart plan: which of the five charts a report draws (or why not), and the data of each.

Every chart's data stops at the anchor date: the factor and stress charts are the anchor date's rows, the
cumulative P&L and drawdown charts the snapshots up to it, the VaR chart the backtest sessions up to it (the
last 250: the window whose exceptions the report counts)."""

from __future__ import annotations

import pandas as pd

from ..formatting import as_float
from .anchored import Anchored
from .performance import drawdown_history
from .risk import factor_rows
from .risk_measures import backtest_history

__all__ = ["chart_plan"]


def chart_plan(a: Anchored, stress: list[dict]) -> tuple[dict[str, tuple[bool, str | None]], dict[str, pd.DataFrame]]:
    """chart file -> (drawn, reason when not), and the data of each chart drawn."""
    plan: dict[str, tuple[bool, str | None]] = {}
    data: dict[str, pd.DataFrame] = {}
    if a.ok("factor_exposures"):
        rows = factor_rows(a)
        data["factor_exposures.png"] = pd.DataFrame(
            {
                "factor_name": [str(r.get("factor_name")) for r in rows],
                "dollar_exposure": [as_float(r.get("dollar_exposure")) or 0.0 for r in rows],
            }
        )
        plan["factor_exposures.png"] = (True, None)
    else:
        plan["factor_exposures.png"] = (False, "factor exposures not available: " + a.availability["factor_exposures"][1])
    if a.ok("stress_tests") and stress:
        data["stress_pnl.png"] = pd.DataFrame(
            {
                "name": [r["name"] for r in stress],
                "direct_pnl": [r["_direct"] or 0.0 for r in stress],
                "correlated_pnl": [r["_correlated"] or 0.0 for r in stress],
            }
        )
        plan["stress_pnl.png"] = (True, None)
    else:
        plan["stress_pnl.png"] = (False, "stress tests not available: " + (a.availability["stress_tests"][1] or "no rows"))
    hist = a.history()
    if a.ok("snapshot") and len(hist):
        if hist["cumulative_pnl"].dtype != "float64":  # as read from the warehouse it is: plotted as it is
            hist = hist.assign(cumulative_pnl=pd.to_numeric(hist["cumulative_pnl"], errors="coerce"))
        data["cumulative_pnl.png"] = hist
        plan["cumulative_pnl.png"] = (True, None)
    else:
        plan["cumulative_pnl.png"] = (False, "snapshot not available: " + (a.availability["snapshot"][1] or "no history"))
    if not a.ok("snapshot"):
        plan["drawdown.png"] = (False, "snapshot not available: " + a.availability["snapshot"][1])
    else:
        path = drawdown_history(a)
        if len(path):
            data["drawdown.png"] = path
            plan["drawdown.png"] = (True, None)
        else:
            plan["drawdown.png"] = (False, f"no daily return in the snapshots up to {a.anchor_iso} (a first snapshot has none)")
    if not a.ok("risk_measures"):
        plan["var_backtest.png"] = (False, "risk measures not available: " + a.availability["risk_measures"][1])
    else:
        backtest, reason = backtest_history(a)
        if backtest is not None:
            data["var_backtest.png"] = backtest
            plan["var_backtest.png"] = (True, None)
        else:
            plan["var_backtest.png"] = (False, reason)
    return plan, data
