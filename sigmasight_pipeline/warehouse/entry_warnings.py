"""The ``entry_warnings`` table: entry sanity warnings of a portfolio's upload and trades files (``quality.entries``).

One set per (portfolio, source): ``source`` is "upload" or a trades file's name. A set is replaced whole, in the
caller's transaction, so it is written together with the file it judges (both or neither) and a re-upload
leaves no stale warning.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import _records, read_frame

__all__ = ["replace_entry_warnings", "read_entry_warnings"]


def replace_entry_warnings(conn: sa.Connection, portfolio_id: str, source: str, warnings: pd.DataFrame) -> int:
    """Replace the warnings of (``portfolio_id``, ``source``) with ``warnings``
    (``quality.entries.WARNING_COLUMNS``) on ``conn``, inside the caller's transaction; returns rows written."""
    t = schema.entry_warnings
    conn.execute(t.delete().where((t.c.portfolio_id == portfolio_id) & (t.c.source == source)))
    if len(warnings) == 0:
        return 0
    frame = warnings.assign(portfolio_id=portfolio_id, source=source)
    records = _records(t, frame)
    conn.execute(t.insert(), records)
    return len(records)


def read_entry_warnings(engine: Engine, portfolio_id: str) -> pd.DataFrame:
    """A portfolio's stored warnings, by entry date, source and row: ``source, source_row, symbol, entry_date,
    kind, message, reference_price``."""
    t = schema.entry_warnings
    return read_frame(
        engine,
        sa.select(t.c.source, t.c.source_row, t.c.symbol, t.c.entry_date, t.c.kind, t.c.message, t.c.reference_price)
        .where(t.c.portfolio_id == portfolio_id)
        .order_by(t.c.entry_date, t.c.source, t.c.source_row, t.c.kind),
    )
