"""Stress results: the loss cap, losses against equity, one result per scenario and date, zero shock gives zero P&L."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sigmasight_pipeline.engines.stress import equity_loss_rows, loss_cap_violations

#: A zero-shock P&L beyond this (in dollars) is not zero.
ZERO_TOLERANCE = 1e-9


def loss_cap_problems(results: pd.DataFrame, exposures: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Scenarios in which an unlevered long-only book loses more than its gross exposure, or whose loss was
    capped (``engines.stress.loss_cap_violations``: such rows are flagged, never silent)."""
    v = loss_cap_violations(results, exposures)
    return [
        f"{portfolio_id} {r.date:%Y-%m-%d} {r.scenario_id}: loss {min(r.direct_pnl, r.correlated_pnl):,.2f} > gross {r.book_gross_exposure:,.2f}"
        for r in v.itertuples()
    ]


def equity_loss_problems(results: pd.DataFrame, exposures: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Every (date, scenario) in which the book loses more than its equity (net liquidation value =
    ``portfolio_exposures.net_exposure``; no cash is modelled), found by ``engines.stress.equity_loss_rows``
    on the stored rows; one line each, naming the loss, the equity and the loss as a share of it (or that
    the equity is not positive). A levered or long/short book can do this: a warning, not a model error."""
    v = equity_loss_rows(results, exposures)
    out = []
    for r in v.itertuples():
        loss = min(r.direct_pnl, r.correlated_pnl)
        base = (f"equity {r.book_equity:,.2f} (not positive: any loss exceeds it)" if r.book_equity <= 0
                else f"equity {r.book_equity:,.2f} ({-loss / r.book_equity:.1%} of equity)")
        out.append(f"{portfolio_id} {r.date:%Y-%m-%d} {r.scenario_id}: loss {loss:,.2f} beyond {base}")
    return out


def scenario_count_problems(results: pd.DataFrame, sessions: Sequence, expected: int, portfolio_id: str) -> list[str]:
    """Sessions of ``sessions`` without exactly ``expected`` distinct scenarios in ``results`` (none counts as 0)."""
    per_date = results.groupby("date").scenario_id.nunique().reindex(sessions).fillna(0)
    return [f"{portfolio_id} {d:%Y-%m-%d}: {int(n)} scenarios, file has {expected}" for d, n in per_date.items() if n != expected]


def zero_shock_problems(results: pd.DataFrame, portfolio_id: str, tol: float = ZERO_TOLERANCE) -> list[str]:
    """A scenario whose shocks are all zero must give zero direct and correlated P&L: ``results`` are the
    stress results of such a scenario; one problem (naming the first row's P&L) if any row is not zero."""
    if (results[["direct_pnl", "correlated_pnl"]].abs().to_numpy() > tol).any():
        return [f"{portfolio_id}: zero shock gave {results.direct_pnl.iloc[0]:.6f} / {results.correlated_pnl.iloc[0]:.6f}"]
    return []
