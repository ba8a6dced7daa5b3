"""`sigmasight status`: per portfolio and engine, the latest computed date, coverage and failed checks.

Replaces the earlier system's ``verify_demo_portfolios`` and ``validate-historical``: coverage is read from
the warehouse (what is actually stored), failed checks from the Dagster instance (their latest evaluation).
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.check_history import failed_checks_by_portfolio
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import get_engine
from sigmasight_pipeline.warehouse.portfolios import list_portfolios
from sigmasight_pipeline.warehouse.reads import stored_dates

#: The table that shows an engine's output for a (date, portfolio), by engine asset.
ENGINE_TABLES = {
    "position_greeks": schema.position_greeks,
    "position_valuations": schema.portfolio_exposures,
    "factor_exposures": schema.portfolio_factor_exposures,
    "rate_sensitivity": schema.portfolio_rate_sensitivity,
    "position_correlations": schema.correlation_summaries,
    "stress_results": schema.stress_results,
    "portfolio_snapshots": schema.portfolio_snapshots,
    "portfolio_reports": schema.portfolio_reports,
}


def failed_checks(
    instance: dg.DagsterInstance, portfolio_ids, defs: dg.Definitions | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Portfolio -> asset -> names of its checks whose latest evaluation for that portfolio failed
    (``defs/check_history.py``: another book's later run neither adds nor hides a failure)."""
    from sigmasight_pipeline.runner import load_definitions

    defs = defs or load_definitions()
    keys = sorted(defs.resolve_asset_graph().asset_check_keys, key=str)
    out: dict[str, dict[str, list[str]]] = {}
    for pid, failed in failed_checks_by_portfolio(instance, keys, list(portfolio_ids)).items():
        for key in failed:
            out.setdefault(pid, {}).setdefault(key.asset_key.to_user_string(), []).append(key.name)
    return out


def portfolio_status(instance: dg.DagsterInstance, *, start=None, end=None, engine=None) -> pd.DataFrame:
    """One row per (portfolio, engine): first and latest stored date, sessions covered, gaps, failed checks.

    Coverage is over the XNYS sessions of [start, end] (default: the portfolio's first and latest snapshot
    dates); ``gaps`` counts sessions of that window without rows, ``missing`` lists the first few.
    """
    engine = engine or get_engine()
    books = list_portfolios(engine)
    failures = failed_checks(instance, books.portfolio_id)
    rows = []
    stored = {name: stored_dates(engine, table) for name, table in ENGINE_TABLES.items()}
    anchor = stored["portfolio_snapshots"]
    for pid in books.portfolio_id:
        own = pd.DatetimeIndex(anchor.loc[anchor.portfolio_id == pid, "date"])
        lo = pd.Timestamp(start) if start else (own.min() if len(own) else None)
        hi = pd.Timestamp(end) if end else (own.max() if len(own) else None)
        sessions = xcal.sessions_in_range(lo, hi) if lo is not None and hi is not None else pd.DatetimeIndex([])
        for name, dates in stored.items():
            have = pd.DatetimeIndex(dates.loc[dates.portfolio_id == pid, "date"])
            missing = sessions.difference(have)
            rows.append(
                {
                    "portfolio": pid,
                    "engine": name,
                    "first": have.min() if len(have) else pd.NaT,
                    "latest": have.max() if len(have) else pd.NaT,
                    "covered": int(len(sessions.intersection(have))),
                    "sessions": int(len(sessions)),
                    "gaps": int(len(missing)),
                    "missing": ", ".join(f"{d:%Y-%m-%d}" for d in missing[:5]) + (" ..." if len(missing) > 5 else ""),
                    "failed_checks": ", ".join(failures.get(pid, {}).get(name, [])),
                }
            )
    return pd.DataFrame(rows, columns=["portfolio", "engine", "first", "latest", "covered", "sessions", "gaps", "missing", "failed_checks"])


def render_status(table: pd.DataFrame) -> str:
    if table.empty:
        return "no portfolio imported yet (sigmasight onboard FILE.csv --name NAME, or make demo)"
    shown = table.assign(
        first=table["first"].dt.strftime("%Y-%m-%d").fillna("-"),
        latest=table["latest"].dt.strftime("%Y-%m-%d").fillna("-"),
        coverage=[f"{c}/{s}" for c, s in zip(table.covered, table.sessions)],
    )[["portfolio", "engine", "first", "latest", "coverage", "gaps", "missing", "failed_checks"]]
    return shown.to_markdown(index=False)
