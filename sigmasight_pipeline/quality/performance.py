"""Performance and P&L attribution: the attribution lines add up to the snapshot's P&L; windows and lines that
rest on less history than they should (risk_measures.md, "Storage, checks, report")."""

from __future__ import annotations

import pandas as pd

from sigmasight_pipeline.engines.performance import FLAG_OK

#: Allowed difference between a date's attribution lines and its snapshot P&L: a cent.
CENT = 0.01


def attribution_sum_problems(attribution: pd.DataFrame, snapshots: pd.DataFrame, portfolio_id: str,
                             tol: float = CENT) -> list[str]:
    """Dates whose attribution lines do not add up to the snapshot's daily P&L (within ``tol``).

    ``attribution``: stored ``date, line, pnl`` (NULL lines count 0: the residual carries them);
    ``snapshots``: stored ``date, daily_pnl, is_first_snapshot``. Every snapshot with a one-day P&L (not a first
    snapshot) must have lines that sum to its P&L; a first snapshot (P&L since entry) must have none; a date
    with lines but no snapshot is a problem too.
    """
    snaps = snapshots.assign(date=pd.to_datetime(snapshots["date"])).set_index("date")
    lines = attribution.assign(date=pd.to_datetime(attribution["date"]))
    sums = lines.groupby("date")["pnl"].sum(min_count=0)
    first = snaps["is_first_snapshot"].astype(bool)
    attributed = snaps.index[~first]
    out = [f"{portfolio_id} {d:%Y-%m-%d}: no attribution lines for a snapshot P&L of {snaps.daily_pnl[d]:,.2f}"
           for d in attributed.difference(sums.index)]
    both = attributed.intersection(sums.index)
    diff = (sums.reindex(both) - snaps["daily_pnl"].reindex(both)).abs()
    out += [f"{portfolio_id} {d:%Y-%m-%d}: lines sum to {sums[d]:,.2f}, snapshot P&L {snaps.daily_pnl[d]:,.2f}"
            for d in both[(diff > tol).to_numpy()]]
    out += [f"{portfolio_id} {d:%Y-%m-%d}: first snapshot (P&L since entry) has attribution lines"
            for d in snaps.index[first].intersection(sums.index)]
    out += [f"{portfolio_id} {d:%Y-%m-%d}: attribution lines without a snapshot"
            for d in sums.index.difference(snaps.index)]
    return sorted(out)


def attribution_coverage_problems(attribution: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Dates on which part of the P&L went to the residual for want of inputs: a factor line or the specific line
    not computed (no previous-session exposures, a factor without a return), or positions left out of the
    specific line (no betas yet: too short a history; no return). One line per date, naming the flags."""
    flagged = attribution[attribution["flag"].notna() & (attribution["line_type"] != "residual")]
    if flagged.empty:
        return []
    flagged = flagged.assign(date=pd.to_datetime(flagged["date"]), note=flagged["line"] + ": " + flagged["flag"])
    per_date = flagged.groupby("date")["note"].agg("; ".join)
    return [f"{portfolio_id} {d:%Y-%m-%d}: {note}" for d, note in per_date.items()]


def limited_history_problems(performance: pd.DataFrame, portfolio_id: str) -> list[str]:
    """The windows of the latest date in ``performance`` (stored ``portfolio_performance`` rows) computed on fewer
    returns than sessions (``limited_history``) or without a figure (``insufficient_returns``), with their
    reason; by window name (the order of the stored rows), whatever the order of ``performance``."""
    if performance.empty:
        return []
    perf = performance.assign(date=pd.to_datetime(performance["date"]))
    latest = perf[(perf["date"] == perf["date"].max()) & (perf["flag"] != FLAG_OK)].sort_values("window_name")
    return [f"{portfolio_id} {r.date:%Y-%m-%d} {r.window_name}: {r.flag} ({r.reason})" for r in latest.itertuples()]
