"""What an asset's materialization metadata says, and about what: a partition's own figures, the run's, a
dated preview. Shared by every domain (a defs-level helper, no assets here).

A ranged run (single-run backfill policy) materializes many partitions at once and Dagster records one
materialization per partition; ``MaterializeResult(metadata=...)`` goes to every one of them, so a figure put
there is shown on each partition's page as if it were that partition's. Hence:

* **The run's figures** (sessions, date range, portfolios, rows per table, downloads, flags) are named
  ``run_*``: every partition of the run shows them, and the name says whose they are.
* **Previews** (a table of the latest date) carry their date in the label: ``preview_label``.
* **A partition's own figures** (its rows, ``dagster/row_count``, which the UI shows as the partition's row
  count; why a holiday wrote nothing) go to that partition alone through Dagster's public
  ``context.add_asset_metadata(metadata, partition_key=key)`` (``attach_partition_metadata``), merged over the
  run's metadata in that partition's event only. We do it where it is cheap: the date-partitioned market
  assets (0.1-0.25 ms a partition) and ``portfolio_positions`` (a few portfolios a run). Not for the
  date x portfolio assets: each call re-validates the key against the run's range and looks both ends of the
  dynamic ``portfolio`` dimension up in the instance, measured at ~6.6 ms per partition and asset on a SQLite
  instance (the demo's engine runs: 52.6 s -> 69.2 s, +32%) and ~24 ms on PostgreSQL. There
  ``dagster/row_count`` appears only when the run is a single partition (``date_portfolio.run_metadata``).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandas as pd

#: Prefix of metadata keys that describe the whole run, not the partition they are shown on.
RUN = "run_"


def md_table(frame: pd.DataFrame, floatfmt: str = ",.2f") -> dg.MetadataValue:
    """A Markdown table of ``frame`` (or "_no rows_")."""
    return dg.MetadataValue.md(frame.to_markdown(index=False, floatfmt=floatfmt) if len(frame) else "_no rows_")


def date_range_text(dates: pd.DatetimeIndex) -> str:
    """``"first .. last"`` of ``dates`` (or "none")."""
    return f"{dates.min():%Y-%m-%d} .. {dates.max():%Y-%m-%d}" if len(dates) else "none"


def holidays_text(closed: Mapping[str, str]) -> str:
    """``"date: reason; ..."`` of the weekdays without a session (or "none")."""
    return "; ".join(f"{d}: {r}" for d, r in closed.items()) or "none"


def preview_label(name: str, date: pd.Timestamp | None) -> str:
    """The label of a preview table: its name and the date it shows, e.g.
    ``"exposures (2025-06-30, latest date of this run)"``."""
    if date is None or pd.isna(date):
        return f"{name} (no session in this run)"
    return f"{name} ({pd.Timestamp(date):%Y-%m-%d}, latest date of this run)"


def rows_per_date(frame: pd.DataFrame) -> dict[pd.Timestamp, int]:
    """Rows of ``frame`` per (normalized) ``date``: what each date partition of a write holds."""
    if frame is None or frame.empty:
        return {}
    counts = pd.to_datetime(frame["date"]).dt.normalize().value_counts()
    return {pd.Timestamp(d): int(n) for d, n in counts.items()}


def partition_rows_metadata(rows_by_table: Mapping[str, int], no_session_reason: str | None = None) -> dict:
    """A partition's own metadata: its rows (``dagster/row_count``, and per table when there are several) and,
    for a weekday without a session, that it is an explicit no-op and why."""
    meta: dict = {"dagster/row_count": int(sum(rows_by_table.values()))}
    if len(rows_by_table) > 1:
        meta["rows_by_table"] = dg.MetadataValue.json({k: int(v) for k, v in rows_by_table.items()})
    if no_session_reason is not None:
        meta["no_op"] = True
        meta["reason"] = no_session_reason
    return meta


def attach_partition_metadata(context: dg.AssetExecutionContext, partition_key: str, metadata: Mapping) -> None:
    """Attach ``metadata`` to the materialization of ``partition_key`` only (Dagster's public
    ``add_asset_metadata``); it takes precedence over the run's ``MaterializeResult`` metadata there."""
    context.add_asset_metadata(dict(metadata), partition_key=partition_key)


def attach_date_partitions(
    context: dg.AssetExecutionContext, rows_by_date: Mapping[pd.Timestamp, int], closed: Mapping[str, str], table: str
) -> None:
    """For a date-partitioned asset writing one table: each date partition of the run gets its own row count
    (and, on a weekday without a session, ``no_op`` and the reason)."""
    for key in context.partition_keys:
        rows = {table: int(rows_by_date.get(pd.Timestamp(key), 0))}
        attach_partition_metadata(context, key, partition_rows_metadata(rows, closed.get(str(key))))


def no_session_result(closed: Mapping[str, str]) -> dg.MaterializeResult:
    """An explicit no-op for a run without an exchange session (weekday holidays): every partition of it wrote
    0 rows; each partition's own reason is attached by ``attach_date_partitions``."""
    return dg.MaterializeResult(
        metadata={"no_op": True, "reason": holidays_text(closed), "dagster/row_count": 0}
    )


def problems_result(
    spec: dg.AssetCheckSpec,
    problems: list[str],
    *,
    key: str = "problems",
    limit: int | None = 20,
    severity: dg.AssetCheckSeverity | None = None,
    **metadata,
) -> dg.AssetCheckResult:
    """The result of check ``spec``: passed when ``problems`` is empty; the first ``limit`` problems (all with
    None) under ``key``, one a line, or "none"; then ``metadata``. ``severity`` None: Dagster's default (ERROR)."""
    shown = problems if limit is None else problems[:limit]
    kwargs = {} if severity is None else {"severity": severity}
    return dg.AssetCheckResult(
        check_name=spec.name, passed=not problems, metadata={key: "\n".join(shown) or "none", **metadata}, **kwargs
    )
