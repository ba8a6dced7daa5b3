"""Which asset checks failed for a portfolio: the latest evaluation of each check in a run that covered it.

A date x portfolio asset's checks are evaluated once per run, and a run covers one portfolio (the single-run
backfill policy launches one run per portfolio). So "the latest evaluation" of a check is another portfolio's
as soon as that portfolio runs later: a failure of one book must not show in another's report or status row,
and a book's own failure must not be hidden by another book passing the check since. Runs of date-only and
unpartitioned assets (market data, SQL models) serve every portfolio, so their evaluations count for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from sigmasight_pipeline.run_tags import portfolios_of_run

#: Check execution statuses that are an evaluation (a planned check of a running or crashed run, or a skipped
#: one, says nothing about the data).
EVALUATED = frozenset({"SUCCEEDED", "FAILED"})
#: Records read per page while looking back for a portfolio's latest evaluation.
PAGE = 200


def failed_checks_by_portfolio(
    instance: dg.DagsterInstance, keys: Iterable[dg.AssetCheckKey], portfolio_ids: Sequence[str],
) -> dict[str, list[dg.AssetCheckKey]]:
    """``portfolio_id -> the checks among keys whose latest evaluation covering that portfolio failed``, in
    ``keys`` order; every portfolio of ``portfolio_ids`` is in the answer (an empty list: nothing failed)."""
    out: dict[str, list[dg.AssetCheckKey]] = {pid: [] for pid in portfolio_ids}
    run_portfolios: dict[str, set[str]] = {}  # run id -> the portfolios its tags name (cached across checks)
    for key in keys:
        unresolved, cursor = set(out), None
        while unresolved:
            records = instance.event_log_storage.get_asset_check_execution_history(key, limit=PAGE, cursor=cursor)
            if not records:
                break
            new = list({r.run_id for r in records} - run_portfolios.keys())
            if new:
                for run in instance.get_run_records(filters=dg.RunsFilter(run_ids=new)):
                    run_portfolios[run.dagster_run.run_id] = portfolios_of_run(run.dagster_run.tags)
            for record in records:  # newest first
                if record.status.value not in EVALUATED:
                    continue
                covered = run_portfolios.get(record.run_id) or set(out)  # no portfolio named: every one
                for pid in unresolved & covered:
                    if record.status.value == "FAILED":
                        out[pid].append(key)
                unresolved -= covered
            cursor = records[-1].id
    return out


def check_name(key: dg.AssetCheckKey) -> str:
    """``asset.check``, as reports and the CLI name a check."""
    return f"{key.asset_key.to_user_string()}.{key.name}"
