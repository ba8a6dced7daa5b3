"""Plumbing shared by the date x portfolio assets: which (portfolio, sessions) a run covers, and writes.

A run covers a range of partitions (single-run backfill policy): several dates of one portfolio, or one
date of several portfolios. Each asset computes each portfolio's dates in one vectorised engine call.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.market.assets import split_sessions
from sigmasight_pipeline.defs.partitions import date_portfolio, partition_dates, partition_portfolios, single_run
from sigmasight_pipeline.warehouse.io import read_table, write_partition
from sigmasight_pipeline.warehouse.portfolios import read_positions


@dataclass
class PortfolioBatch:
    portfolio_id: str
    dates: pd.DatetimeIndex  # every partition date of the run (holidays included: their rows are cleared)
    sessions: pd.DatetimeIndex  # the XNYS sessions among them: the dates computed
    closed: dict[str, str]  # holiday -> reason
    positions: pd.DataFrame

    def stored(self, engine: Engine, table: sa.Table) -> pd.DataFrame:
        """This batch's rows of ``table`` as stored: its portfolio, its sessions."""
        return read_table(engine, table, dates=self.sessions, portfolio_id=self.portfolio_id)


def date_portfolio_asset(*, group_name: str, kinds: tuple[str, ...] = ("python", "sql"), **asset_kwargs):
    """``dg.asset`` for an engine asset: partitioned by date x portfolio with the single-run backfill policy, so
    a backfill launches one run per key of the smaller dimension and the asset computes its range in one pass."""
    return dg.asset(
        partitions_def=date_portfolio, backfill_policy=single_run, group_name=group_name, kinds=set(kinds), **asset_kwargs
    )


def portfolio_batches(context: dg.AssetExecutionContext, engine: Engine) -> Iterator[PortfolioBatch]:
    """One batch per portfolio of the run, with its positions read from the warehouse."""
    dates = partition_dates(context)
    sessions, closed = split_sessions(dates)
    for pid in partition_portfolios(context):
        positions = read_positions(engine, pid)
        if positions.empty:
            raise dg.Failure(
                f"portfolio {pid!r} has no positions: materialize portfolio_positions for it first",
                metadata={"portfolio": pid},
            )
        yield PortfolioBatch(pid, dates, sessions, closed, positions)


def write_tables(engine: Engine, batch: PortfolioBatch, frames: Mapping[sa.Table, pd.DataFrame]) -> dict[str, int]:
    """Replace the batch's partitions of several tables in ONE transaction; returns rows per table."""
    rows = {}
    with engine.begin() as conn:
        for table, frame in frames.items():
            frame = frame.assign(portfolio_id=batch.portfolio_id) if len(frame) else frame
            rows[table.name] = write_partition(
                engine, table, frame, dates=batch.dates, portfolio_ids=[batch.portfolio_id], connection=conn
            )
    return rows


def md_table(frame: pd.DataFrame, floatfmt: str = ",.2f") -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.to_markdown(index=False, floatfmt=floatfmt) if len(frame) else "_no rows_")


def run_metadata(batches: list[PortfolioBatch], rows: dict[str, int], **extra) -> dict:
    """Metadata every date x portfolio asset reports: rows written, dates, portfolios, holidays."""
    sessions = batches[0].sessions if batches else pd.DatetimeIndex([])
    meta = {
        "dagster/row_count": int(sum(rows.values())),
        "rows_by_table": dg.MetadataValue.json(rows),
        "portfolios": ", ".join(b.portfolio_id for b in batches),
        "sessions": len(sessions),
        "date_range": f"{sessions.min():%Y-%m-%d} .. {sessions.max():%Y-%m-%d}" if len(sessions) else "none",
    }
    if batches and batches[0].closed:
        meta["holidays_skipped"] = "; ".join(f"{d}: {r}" for d, r in batches[0].closed.items())
    meta.update(extra)
    return meta


def add_rows(total: dict[str, int], rows: dict[str, int]) -> None:
    for k, v in rows.items():
        total[k] = total.get(k, 0) + v


def last_date_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the latest date in ``frame`` (for previews)."""
    if frame.empty:
        return frame
    return frame[frame["date"] == frame["date"].max()]


def latest_preview(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Each portfolio's rows of its latest date, in ``columns``: the table an asset's metadata previews."""
    latest = [last_date_rows(frame) for frame in frames if len(frame)]
    return pd.concat(latest)[columns] if latest else pd.DataFrame(columns=columns)
