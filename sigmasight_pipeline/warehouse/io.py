"""Warehouse access: one engine per URL, idempotent partition writes, typed reads.

Every asset writes through :func:`write_partition`, which replaces exactly the rows of the partition
(the given dates, and the given portfolio where the table has one) inside ONE transaction: a rerun gives
the same rows, never duplicates, and a failure midway rolls back to the previous rows.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse.migrate import migrate

DATABASE_URL_ENV = "SIGMASIGHT_DATABASE_URL"
HOME_ENV = "SIGMASIGHT_HOME"
REPORTS_DIR_ENV = "SIGMASIGHT_REPORTS_DIR"

# Rows per INSERT statement: keeps executemany batches inside SQLite's and psycopg's parameter limits.
_INSERT_CHUNK = 5_000


def project_home() -> Path:
    """Folder for local state (the embedded warehouse, reports): ``$SIGMASIGHT_HOME`` or ``./.sigmasight``."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".sigmasight").resolve()


def env_positive_int(name: str, default: int) -> int:
    """The whole number >= 1 in environment variable ``name`` (``default`` when unset or blank); ValueError naming
    the variable otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def reports_root(output_root: str = "") -> Path:
    """Folder of the reports: ``output_root``, else ``$SIGMASIGHT_REPORTS_DIR``, else ``$SIGMASIGHT_HOME/reports``
    (created; the report asset writes there and the API serves files only from inside it)."""
    path = Path(output_root or os.environ.get(REPORTS_DIR_ENV) or project_home() / "reports").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """``$SIGMASIGHT_DATABASE_URL``, else an embedded SQLite file under :func:`project_home`."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    home = project_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'warehouse.db'}"


def _normalise_url(url: str) -> str:
    # PostgreSQL goes through psycopg 3; a bare postgresql:// URL would pick psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default :func:`database_url`, read now), created once per URL, schema ensured."""
    return _engine_for(_normalise_url(url or database_url()))


def dispose_engines() -> None:
    """Close every cached engine's connections and forget them (tests, before dropping a database)."""
    while _ENGINES:
        _ENGINES.pop().dispose()
    _engine_for.cache_clear()


_ENGINES: list[Engine] = []


@lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            # WAL lets readers (the UI, status) proceed while a run writes; FKs are off by default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    # The schema through its migrations (warehouse/migrate.py): one query when it is at head already; an empty
    # or pre-migration warehouse is upgraded in place, never dropped.
    migrate(engine)
    _ENGINES.append(engine)
    return engine


def _as_date(value) -> dt.date:
    return pd.Timestamp(value).date()


def _records(table: sa.Table, frame: pd.DataFrame) -> list[dict]:
    """Rows of ``frame`` as dicts for ``table``: exact scale for NUMERIC, None for NaN, dates as dates.

    Built column by column: each column becomes one object array of Python scalars (psycopg does not adapt
    numpy types) with None for NULL, and the rows are zipped from those lists (``DataFrame.to_dict("records")``
    boxes every value on its own, several times slower)."""
    out = stored_form(table, frame)
    columns = []
    for name in out.columns:
        values = out[name].to_numpy(dtype=object, copy=True)  # float64/Int64/boolean: float/int/bool; NaN/NA/NaT kept
        values[pd.isna(values)] = None
        columns.append(values.tolist())
    names = list(out.columns)
    return [dict(zip(names, row)) for row in zip(*columns)]


def stored_form(table: sa.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s columns of ``table`` as the warehouse stores them: NUMERIC rounded to its scale, integers as
    nullable Int64, booleans as nullable boolean, dates as ``datetime.date``. Raises ValueError when a required
    column is missing."""
    missing = [c.name for c in table.columns if c.name not in frame.columns and not c.nullable and c.default is None
               and c.server_default is None]
    if missing:
        raise ValueError(f"{table.name}: frame lacks required columns {missing}")
    cols = [c for c in table.columns if c.name in frame.columns]
    out = pd.DataFrame(index=frame.index)
    for col in cols:
        values = frame[col.name]
        if isinstance(col.type, sa.Date):
            out[col.name] = pd.to_datetime(values).dt.date
        elif isinstance(col.type, sa.Numeric) and not isinstance(col.type, sa.Float) and col.type.scale is not None:
            out[col.name] = pd.to_numeric(values).astype("float64").round(col.type.scale)
        elif isinstance(col.type, sa.Float):
            out[col.name] = pd.to_numeric(values).astype("float64")
        elif isinstance(col.type, sa.Integer):
            out[col.name] = pd.to_numeric(values).round().astype("Int64")  # NaN -> NULL, never 30.0
        elif isinstance(col.type, sa.Boolean):
            out[col.name] = values.astype("boolean")
        else:
            out[col.name] = values
    return out


def _partition_filter(table: sa.Table, dates: Sequence | None, portfolio_ids: Sequence[str] | None):
    clauses = []
    if dates is not None:
        clauses.append(table.c.date.in_(sorted({_as_date(d) for d in dates})))
    if portfolio_ids is not None:
        clauses.append(table.c.portfolio_id.in_(sorted(set(portfolio_ids))))
    if not clauses:
        raise ValueError(f"{table.name}: a partition write needs dates and/or portfolio ids")
    return sa.and_(*clauses)


def write_partition(
    engine: Engine,
    table: sa.Table,
    frame: pd.DataFrame,
    *,
    dates: Iterable | None = None,
    portfolio_ids: Iterable[str] | None = None,
    connection: sa.Connection | None = None,
) -> int:
    """Replace the rows of one partition (or a range of them) with ``frame``, atomically.

    The partition is every row of ``table`` whose ``date`` is in ``dates`` and (if given) whose
    ``portfolio_id`` is in ``portfolio_ids``. Rows of ``frame`` outside that partition are refused,
    so a write can never touch another partition. Pass ``connection`` to join a caller's transaction
    (several tables written together); otherwise a transaction is opened here. Returns rows written.
    """
    dates = list(dates) if dates is not None else None
    portfolio_ids = list(portfolio_ids) if portfolio_ids is not None else None
    where = _partition_filter(table, dates, portfolio_ids)
    if len(frame):
        if dates is not None:
            outside = ~pd.to_datetime(frame["date"]).dt.date.isin({_as_date(d) for d in dates})
            if outside.any():
                raise ValueError(f"{table.name}: {int(outside.sum())} rows lie outside the partition dates")
        if portfolio_ids is not None and (~frame["portfolio_id"].isin(portfolio_ids)).any():
            raise ValueError(f"{table.name}: rows for portfolios outside the partition")
    records = _records(table, frame) if len(frame) else []

    def _write(conn: sa.Connection) -> None:
        conn.execute(table.delete().where(where))
        for start in range(0, len(records), _INSERT_CHUNK):
            conn.execute(table.insert(), records[start : start + _INSERT_CHUNK])

    if connection is not None:
        _write(connection)
    else:
        with engine.begin() as conn:
            _write(conn)
    return len(records)


def upsert(engine_or_conn, table: sa.Table, rows: Sequence[dict]) -> int:
    """Insert or update ``rows`` by primary key with the dialect's own ``ON CONFLICT`` upsert."""
    if not rows:
        return 0
    dialect = engine_or_conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported dialects
        raise NotImplementedError(dialect)
    stmt = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys and c.name in rows[0]}
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_=updates) if updates else stmt.on_conflict_do_nothing(index_elements=keys)

    def _run(conn):
        conn.execute(stmt, list(rows))

    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.begin() as conn:
            _run(conn)
    else:
        _run(engine_or_conn)
    return len(rows)


def read_frame(engine: Engine, query: sa.Select) -> pd.DataFrame:
    """Run a Core select and return a DataFrame (date columns as datetime64)."""
    with engine.connect() as conn:
        result = conn.execute(query)
        # Plain tuples: pandas probes SQLAlchemy Row objects attribute by attribute (~4x slower).
        frame = pd.DataFrame([tuple(row) for row in result.fetchall()], columns=list(result.keys()))
    for col in query.selected_columns:
        if isinstance(col.type, sa.Date) and col.name in frame:
            frame[col.name] = pd.to_datetime(frame[col.name])
    return frame


def read_table(
    engine: Engine,
    table: sa.Table,
    *,
    start=None,
    end=None,
    dates: Iterable | None = None,
    portfolio_id: str | None = None,
    symbols: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Rows of ``table`` filtered by date range/set, portfolio and symbols, ordered by primary key."""
    q = sa.select(table)
    if start is not None:
        q = q.where(table.c.date >= _as_date(start))
    if end is not None:
        q = q.where(table.c.date <= _as_date(end))
    if dates is not None:
        q = q.where(table.c.date.in_(sorted({_as_date(d) for d in dates})))
    if portfolio_id is not None:
        q = q.where(table.c.portfolio_id == portfolio_id)
    if symbols is not None:
        q = q.where(table.c.symbol.in_(sorted(set(symbols))))
    q = q.order_by(*table.primary_key.columns)
    return read_frame(engine, q)


def pivot_wide(long: pd.DataFrame, value: str, symbols: Sequence[str] | None = None) -> pd.DataFrame:
    """A long ``date, symbol, <value>`` frame as (date x symbol) float64, columns in ``symbols`` order if given."""
    if long.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), columns=list(symbols or []), dtype="float64")
    wide = long.pivot(index="date", columns="symbol", values=value).astype("float64").sort_index()
    wide.columns.name = None
    return wide.reindex(columns=list(symbols)) if symbols is not None else wide


def read_wide(engine: Engine, table: sa.Table, value: str, *, symbols: Iterable[str] | None = None, start=None, end=None) -> pd.DataFrame:
    """A (date x symbol) frame of one value column of ``market_prices`` or ``security_returns``."""
    return pivot_wide(read_table(engine, table, start=start, end=end, symbols=symbols), value)
