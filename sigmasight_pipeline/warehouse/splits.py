"""Stock splits in the warehouse: the ``stock_splits`` table written by ``market_prices``, and its typed read.

A split is keyed by (symbol, ex_date), not by a date partition: ``store_splits`` upserts, so a rerun (of any
date range) never duplicates a split and a corrected ratio replaces the stored one. A split the source no
longer reports is kept (it is not deleted by a later run that did not see it).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.engines.splits import SPLIT_COLUMNS, empty_splits
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import _records, read_frame, upsert


def store_splits(connection: sa.Connection | Engine, splits: pd.DataFrame, source: str) -> int:
    """Upsert a splits frame (``SPLIT_COLUMNS``) by (symbol, ex_date) with its ``source`` name; pass the caller's
    connection to join its transaction. Returns the rows written."""
    if splits is None or splits.empty:
        return 0
    frame = splits[SPLIT_COLUMNS].assign(source=source)
    return upsert(connection, schema.stock_splits, _records(schema.stock_splits, frame))


def read_splits(engine: Engine, symbols: Iterable[str] | None = None, *, with_source: bool = False) -> pd.DataFrame:
    """The stored splits (of ``symbols`` if given, upper-cased) as a splits frame: ``SPLIT_COLUMNS`` (``ex_date``
    a Timestamp, ``ratio`` float), sorted by symbol and ex_date; ``empty_splits()`` when none. ``with_source``
    adds the ``source`` column (the market-data source that reported each split)."""
    t = schema.stock_splits
    columns = [t.c.symbol, t.c.ex_date, t.c.ratio] + ([t.c.source] if with_source else [])
    query = sa.select(*columns).order_by(t.c.symbol, t.c.ex_date)
    if symbols is not None:
        wanted = sorted({str(s).strip().upper() for s in symbols})
        query = query.where(t.c.symbol.in_(wanted))
    frame = read_frame(engine, query)
    if frame.empty:
        out = empty_splits()
        return out.assign(source=pd.Series(dtype=object)) if with_source else out
    frame["symbol"] = frame["symbol"].astype(object)
    frame["ex_date"] = pd.to_datetime(frame["ex_date"]).dt.normalize().astype("datetime64[ns]")
    frame["ratio"] = frame["ratio"].astype("float64")
    return frame.reset_index(drop=True)
