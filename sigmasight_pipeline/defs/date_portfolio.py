"""The date x portfolio asset loop, shared by every domain: which (portfolio, sessions) a run covers, the
writes, and the metadata that says what it describes.

A run covers a range of partitions (single-run backfill policy): several dates of one portfolio, or one
date of several portfolios. An asset iterates ``portfolio_batches`` (one batch per portfolio and period over
which its book does not change: ``engines.book.book_periods`` on the ledger read from the warehouse), computes
each batch's dates in one vectorised engine call, writes with ``write_tables`` (every table of the batch in
one transaction) and returns ``run_metadata``. A book without trades inside the run is one batch.

Every partition of a ranged run shows the run's ``MaterializeResult`` metadata, so ``run_metadata`` names the
run's figures ``run_*`` and gives ``dagster/row_count`` (which the UI shows as the partition's row count) only
when the run IS one partition; previews carry their date in the label. Attaching each partition's own rows
(``context.add_asset_metadata(..., partition_key=...)``) works in Dagster 1.13 but costs ~6.6 ms per partition
and asset on a SQLite instance and ~24 ms on PostgreSQL (each call re-validates the key and looks the dynamic
``portfolio`` dimension up in the instance): +30% on the engines' part of a backfill. See ``defs/metadata.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.automation import engine_condition
from sigmasight_pipeline.defs.metadata import RUN, date_range_text, holidays_text, md_table, preview_label
from sigmasight_pipeline.defs.partitions import date_portfolio, partition_dates, partition_portfolios, single_run
from sigmasight_pipeline.marketdata.calendar import split_sessions
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame, read_table, stored_form, write_partition
from sigmasight_pipeline.engines.book import Ledger, book_periods
from sigmasight_pipeline.warehouse.book import engine_positions, read_ledger

__all__ = [
    "InMemoryBatch",
    "PortfolioBatch",
    "add_rows",
    "date_portfolio_asset",
    "last_date_rows",
    "latest_date",
    "latest_preview",
    "md_table",
    "portfolio_batches",
    "preview_label",
    "preview_metadata",
    "run_metadata",
    "write_tables",
]


@dataclass
class PortfolioBatch:
    portfolio_id: str
    dates: pd.DatetimeIndex  # every partition date of the run (holidays included: their rows are cleared)
    sessions: pd.DatetimeIndex  # the XNYS sessions among them: the dates computed
    closed: dict[str, str]  # holiday -> reason
    positions: pd.DataFrame  # the book held over these dates (engines.book.positions_on), engines' columns
    ledger: Ledger  # the portfolio's whole ledger: trades, states, lots
    flat: bool = False  # every position closed: the book holds nothing over these dates

    def stored(self, engine: Engine, table: sa.Table) -> pd.DataFrame:
        """This batch's rows of ``table`` as stored: its portfolio, its sessions."""
        return read_table(engine, table, dates=self.sessions, portfolio_id=self.portfolio_id)

    def stored_columns(self, engine: Engine, table: sa.Table, columns: list[str]) -> pd.DataFrame:
        """``columns`` of this batch's stored rows of ``table``: ``stored`` narrowed to what an engine reads (the
        wide upstream tables cost their unused columns per row)."""
        query = (sa.select(*[table.c[c] for c in columns])
                 .where(table.c.portfolio_id == self.portfolio_id, table.c.date.in_([d.date() for d in self.sessions]))
                 .order_by(*table.primary_key.columns))
        return read_frame(engine, query)

    def stored_betas(self, engine: Engine, factors: list[str]) -> pd.DataFrame:
        """This batch's stored position betas, one row per (date, position): ``date, position_id, residual_std``
        and a beta column per factor of ``factors``, pivoted by the database (``position_factor_exposures`` holds
        a row per factor: reading them long costs seven Python rows per position and date). ``residual_std`` is
        the same on a position's rows of a date (its symbol's regression): the pivot takes it once."""
        t = schema.position_factor_exposures
        query = (sa.select(t.c.date, t.c.position_id, sa.func.max(t.c.residual_std).label("residual_std"),
                           *[sa.func.max(sa.case((t.c.factor_name == f, t.c.beta))).label(f) for f in factors])
                 .where(t.c.portfolio_id == self.portfolio_id, t.c.date.in_([d.date() for d in self.sessions]))
                 .group_by(t.c.date, t.c.position_id)
                 .order_by(t.c.date, t.c.position_id))
        return read_frame(engine, query)


@dataclass
class InMemoryBatch(PortfolioBatch):
    """A batch whose upstream rows are frames in memory instead of warehouse rows: a hypothetical book (a
    what-if) run through the assets' own compute functions, which read their upstream through ``stored``,
    ``stored_columns`` and ``stored_betas``. ``keep`` puts an asset's output where the next one reads it, shaped
    as the warehouse would return it (the table's columns, this portfolio, key order); nothing is written."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def keep(self, frames: Mapping[sa.Table, pd.DataFrame]) -> None:
        for table, frame in frames.items():
            columns = [c.name for c in table.columns]
            frame = stored_form(table, frame.assign(portfolio_id=self.portfolio_id)).reindex(columns=columns)
            for c in table.columns:  # read_frame gives dates as Timestamps
                if isinstance(c.type, sa.Date):
                    frame[c.name] = pd.to_datetime(frame[c.name])
            keys = [c.name for c in table.primary_key.columns]
            self.frames[table.name] = frame.sort_values(keys, kind="stable").reset_index(drop=True)

    def stored(self, engine: Engine, table: sa.Table) -> pd.DataFrame:
        frame = self.frames.get(table.name)
        if frame is None:
            return pd.DataFrame(columns=[c.name for c in table.columns])
        return frame[frame["date"].isin(self.sessions)].reset_index(drop=True)

    def stored_columns(self, engine: Engine, table: sa.Table, columns: list[str]) -> pd.DataFrame:
        return self.stored(engine, table)[columns]

    def stored_betas(self, engine: Engine, factors: list[str]) -> pd.DataFrame:
        long = self.stored(engine, schema.position_factor_exposures)
        keys = ["date", "position_id"]
        wide = long.pivot_table(index=keys, columns="factor_name", values="beta", aggfunc="max", dropna=False)
        residual = long.groupby(keys)["residual_std"].max()
        out = pd.concat([residual, wide.reindex(columns=factors)], axis=1).reset_index()
        return out[[*keys, "residual_std", *factors]]


def date_portfolio_asset(*, group_name: str, kinds: tuple[str, ...] = ("python", "sql"), **asset_kwargs):
    """``dg.asset`` for an engine asset: partitioned by date x portfolio with the single-run backfill policy, so
    a backfill launches one run per key of the smaller dimension and the asset computes its range in one pass;
    materialized by declarative automation as its upstream updates (``automation.engine_condition``)."""
    return dg.asset(
        partitions_def=date_portfolio, backfill_policy=single_run, group_name=group_name, kinds=set(kinds),
        automation_condition=engine_condition(), **asset_kwargs
    )


def portfolio_batches(
    context: dg.AssetExecutionContext, engine: Engine, *, flat_sessions: bool = False
) -> Iterator[PortfolioBatch]:
    """One batch per portfolio of the run and period of an unchanged book, in date order, with the positions
    held over it (from the portfolio's ledger: upload, trades, splits).

    A flat period (every position closed) has nothing to value, regress or stress: its batch has no sessions,
    so an engine clears its dates and computes nothing, unless the asset asks for ``flat_sessions``: the
    valuations (zero exposures) and the snapshots (the closing trades' P&L, a zero value) do."""
    dates = partition_dates(context)
    for pid in partition_portfolios(context):
        try:
            ledger = read_ledger(engine, pid)
        except ValueError as exc:  # a stored book that no longer parses, or trades that no longer apply
            raise dg.Failure(f"portfolio {pid!r}: its book cannot be read: {exc}", metadata={"portfolio": pid}) from exc
        if ledger.states.empty:
            raise dg.Failure(
                f"portfolio {pid!r} has no positions: materialize portfolio_positions for it first",
                metadata={"portfolio": pid},
            )
        for period_dates, book in book_periods(ledger, dates):
            sessions, closed = split_sessions(period_dates)
            flat = book.empty
            if flat and not flat_sessions:
                sessions = sessions[:0]
            yield PortfolioBatch(pid, period_dates, sessions, closed, engine_positions(engine, book), ledger, flat)


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


def add_rows(total: dict[str, int], rows: dict[str, int]) -> None:
    """Add ``rows`` (rows per table) into ``total``."""
    for k, v in rows.items():
        total[k] = total.get(k, 0) + v


def run_metadata(batches: list[PortfolioBatch], rows: dict[str, int], **extra) -> dict:
    """The run's figures, under ``run_*`` keys since every partition of the run shows them: rows written per
    table, portfolios, sessions, date range, holidays. ``dagster/row_count`` only when the run is one
    (date, portfolio) partition, the one case where the run's rows are the partition's."""
    sessions = pd.DatetimeIndex(sorted({d for b in batches for d in b.sessions}))
    dates = {d for b in batches for d in b.dates}
    closed = {k: v for b in batches for k, v in b.closed.items()}
    portfolios = list(dict.fromkeys(b.portfolio_id for b in batches))
    meta = {}
    if len(portfolios) == 1 and len(dates) == 1:
        meta["dagster/row_count"] = int(sum(rows.values()))
    meta.update({
        f"{RUN}rows_by_table": dg.MetadataValue.json(rows),
        f"{RUN}portfolios": ", ".join(portfolios),
        f"{RUN}sessions": len(sessions),
        f"{RUN}date_range": date_range_text(sessions),
    })
    periods = len(batches) - len(portfolios)
    if periods:
        meta[f"{RUN}book_changes"] = periods  # trade days inside the run: each starts a new book period
    if closed:
        meta[f"{RUN}holidays_skipped"] = holidays_text(closed)
    meta.update(extra)
    return meta


def last_date_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the latest date in ``frame`` (for previews)."""
    if frame.empty:
        return frame
    return frame[frame["date"] == frame["date"].max()]


def latest_date(frames: list[pd.DataFrame]) -> pd.Timestamp | None:
    """The latest ``date`` over ``frames`` (None when they hold no row): the date a preview shows."""
    dates = [frame["date"].max() for frame in frames if len(frame)]
    return pd.Timestamp(max(dates)) if dates else None


def latest_preview(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Each portfolio's rows of its latest date, in ``columns``: the table an asset's metadata previews."""
    latest = [last_date_rows(frame) for frame in frames if len(frame)]
    return pd.concat(latest)[columns] if latest else pd.DataFrame(columns=columns)


def preview_metadata(name: str, frames: list[pd.DataFrame], table: pd.DataFrame, floatfmt: str = ",.2f") -> dict:
    """``{"<name> (<date>, latest date of this run)": table}``: a preview labelled with the date it shows."""
    return {preview_label(name, latest_date(frames)): md_table(table, floatfmt)}
