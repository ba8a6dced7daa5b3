"""What every route shares: the engine, the as-of date, pagination, filters and the report's number formats.

* **As of.** Every figure carries its date. ``?as_of=YYYY-MM-DD`` picks one; without it the latest date the
  portfolio has in the table read. A date without rows is a 404 naming the latest date that has them.
* **Pages.** ``limit`` (1..500, default 100) and ``cursor`` (the ``next_cursor`` of the previous page, opaque);
  a page is ``{"items": [...], "next_cursor": ..., "total": ...}``.
* **Numbers** are formatted as in the report JSON (``reporting.formatting``): money as strings with 2 decimals,
  Greeks and betas 4, correlations 6, ratios 6; a missing value is ``null``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Annotated, Generic, TypeVar, get_args, get_origin

import pandas as pd
import sqlalchemy as sa
from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine

from sigmasight_pipeline.api.errors import ApiError
from sigmasight_pipeline.reporting.formatting import (
    FIELD_KINDS, KIND_DECIMALS, format_decimal, format_quantity, iso_date, is_missing,
)

T = TypeVar("T")

MAX_LIMIT = 500

#: ``?as_of=``: a date; FastAPI answers 422 naming ``as_of`` for anything else.
AsOf = Annotated[dt.date | None, Query(description="as-of date YYYY-MM-DD (default: the latest computed date)")]
#: a range's ``from`` / ``to`` (``check_range`` refuses ``to`` before ``from``)
FromDate = Annotated[dt.date | None, Query(alias="from", description="first date (default: the first stored)")]
ToDate = Annotated[dt.date | None, Query(alias="to", description="last date (default: the latest stored)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"rows per page (1..{MAX_LIMIT})")]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]


class Strict(BaseModel):
    """A request body: unknown fields are refused (422 naming them)."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None
    total: int


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


class RequestDatabase:
    """One warehouse connection for the whole of a request, opened on first use and closed when the answer is
    sent (:class:`CloseRequestDatabase`). It stands in for the engine where a function
    only calls ``.connect()``: a summary or a position list checks its key, the portfolio, the date and reads its
    rows on one pooled connection instead of checking one out four or five times."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: sa.Connection | None = None

    @contextlib.contextmanager
    def connect(self):
        if self._conn is None:
            self._conn = self.engine.connect()
        yield self._conn  # left open: the request's reads share one connection (and one snapshot)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def database(request: Request) -> RequestDatabase:
    """The request's :class:`RequestDatabase`."""
    db = getattr(request.state, "database", None)
    if db is None:
        db = request.state.database = RequestDatabase(request.app.state.engine)
    return db


class CloseRequestDatabase:
    """ASGI middleware: closes the connection a request opened (``database``) once its answer is sent. (A pure ASGI
    wrapper: a dependency with ``yield`` costs each request an exit stack.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        finally:
            db = (scope.get("state") or {}).get("database")
            if db is not None:
                db.close()


# --- numbers ------------------------------------------------------------------------------------------------

def money(value) -> str | None:
    return format_decimal(value, KIND_DECIMALS["money"])


def greek(value) -> str | None:
    """Greeks, betas, regression statistics: 4 decimals."""
    return format_decimal(value, KIND_DECIMALS["greek"])


def correlation(value) -> str | None:
    return format_decimal(value, KIND_DECIMALS["correlation"])


def ratio(value) -> str | None:
    """Weights, returns, shares, confidence levels, p-values: 6 decimals."""
    return format_decimal(value, KIND_DECIMALS["ratio"])


def quantity(value) -> str | None:
    return format_quantity(value)


def day(value) -> str | None:
    return iso_date(value)


def text(value) -> str | None:
    return None if is_missing(value) else str(value)


def integer(value) -> int | None:
    return None if is_missing(value) else int(value)


# --- as of ---------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _date_queries(table, date_column: str, per_portfolio: bool) -> tuple[sa.Select, sa.Select]:
    """(latest date, is there a row of ``:day``) of ``table``, built once (``:portfolio_id`` when per portfolio)."""
    column = table.c[date_column]
    latest = sa.select(sa.func.max(column))
    exists = sa.select(column).where(column == sa.bindparam("day", type_=sa.Date())).limit(1)
    if per_portfolio:
        mine = table.c.portfolio_id == sa.bindparam("portfolio_id")
        latest, exists = latest.where(mine), exists.where(mine)
    return latest, exists


def latest_date(engine: Engine, table, portfolio_id: str | None, *, date_column: str = "date") -> dt.date | None:
    with engine.connect() as conn:
        value = conn.execute(_date_queries(table, date_column, portfolio_id is not None)[0],
                             {"portfolio_id": portfolio_id}).scalar()
    return pd.Timestamp(value).date() if value is not None else None


def resolve_as_of(engine: Engine, table, portfolio_id: str | None, as_of: dt.date | None, *,
                  what: str | None = None, date_column: str = "date") -> dt.date:
    """The date to answer for: ``as_of`` when ``table`` has rows of it (for the portfolio), else 404 naming the
    latest date that has them; without ``as_of``, that latest date. (One query on the way that answers.)"""
    what = what or table.name.replace("_", " ")
    owner = f" for portfolio {portfolio_id!r}" if portfolio_id else ""
    if as_of is not None:
        with engine.connect() as conn:
            found = conn.execute(_date_queries(table, date_column, portfolio_id is not None)[1],
                                 {"portfolio_id": portfolio_id, "day": as_of}).first()
        if found is not None:
            return as_of
    latest = latest_date(engine, table, portfolio_id, date_column=date_column)
    if latest is None:
        raise ApiError(404, "as_of", f"no {what} computed{owner} yet")
    if as_of is None:
        return latest
    raise ApiError(404, "as_of", f"no {what}{owner} on {as_of:%Y-%m-%d}; the latest date with them is {latest:%Y-%m-%d}")


def check_range(start: dt.date | None, end: dt.date | None, *, start_name: str = "from", end_name: str = "to") -> None:
    if start is not None and end is not None and start > end:
        raise ApiError(422, start_name, f"'{start_name}' ({start:%Y-%m-%d}) is after '{end_name}' ({end:%Y-%m-%d})")


# --- pages -----------------------------------------------------------------------------------------------------

def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The row offset a cursor stands for (0 without one); 422 naming ``cursor`` for anything not ours."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if raw[0] != "o" or not raw[1:].isdigit():
            raise ValueError
        return int(raw[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError, IndexError):
        raise ApiError(422, "cursor", "cursor is not one this API gave (use next_cursor of the previous page)") from None


def page(items: Sequence[T], *, limit: int, cursor: str | None) -> dict:
    """One page of ``items`` (already filtered and sorted) as ``{"items", "next_cursor", "total"}``."""
    offset = decode_cursor(cursor)
    chunk = list(items[offset: offset + limit])
    nxt = offset + limit
    return {"items": chunk, "next_cursor": _encode_cursor(nxt) if nxt < len(items) else None, "total": len(items)}


def page_frame(frame: pd.DataFrame, *, limit: int, cursor: str | None) -> tuple[pd.DataFrame, str | None, int]:
    """One page of the rows of ``frame``: (rows, next_cursor, total)."""
    offset = decode_cursor(cursor)
    nxt = offset + limit
    return frame.iloc[offset:nxt], (_encode_cursor(nxt) if nxt < len(frame) else None), len(frame)


def sort_frame(frame: pd.DataFrame, sort: str | None, allowed: Sequence[str], default: str) -> pd.DataFrame:
    """``frame`` sorted by ``sort`` (a column of ``allowed``, ``-`` for descending); 422 naming ``sort`` else."""
    sort = sort or default
    column = sort.lstrip("-")
    if column not in allowed:
        raise ApiError(422, "sort", f"cannot sort by {column!r}; one of: {', '.join(allowed)} (prefix '-' for descending)")
    return frame.sort_values(column, ascending=not sort.startswith("-"), kind="mergesort", na_position="last")


# --- typed rows ------------------------------------------------------------------------------------------------

#: Fields printed as the stored quantity (NUMERIC(24, 8), trailing zeros dropped), not by a precision kind.
QUANTITY_FIELDS = frozenset({"quantity", "multiplier", "contracts"})


def _typed(kind: type, convert: Callable) -> Callable:
    """``convert`` for values not already of ``kind`` (the driver usually hands back the right type: keep it)."""
    def converter(value):
        if type(value) is kind:
            return value
        return None if is_missing(value) else convert(value)
    return converter


def _converter(name: str, annotation) -> Callable:
    if get_origin(annotation) in (list, dict, tuple, set):  # a collection is given as is
        return lambda v: v
    args = set(get_args(annotation)) | {annotation}
    if name in QUANTITY_FIELDS:
        return quantity
    if name in FIELD_KINDS and str in args:
        return partial(format_decimal, places=KIND_DECIMALS[FIELD_KINDS[name]])
    if dt.datetime in args:
        return _typed(dt.datetime, lambda v: pd.Timestamp(v).to_pydatetime())
    if dt.date in args:
        return _typed(dt.date, lambda v: pd.Timestamp(v).date())
    if bool in args:
        return _typed(bool, bool)
    if int in args:
        return _typed(int, int)
    if float in args:
        return _typed(float, float)
    if str in args:
        return _typed(str, str)
    return lambda v: v


@lru_cache(maxsize=None)
def _converters(model: type[BaseModel]) -> tuple[tuple[str, Callable], ...]:
    return tuple((name, _converter(name, f.annotation)) for name, f in model.model_fields.items())


def shape(model: type[BaseModel], row: Mapping, **given) -> dict:
    """The fields of ``model`` taken from ``row`` (or ``given``), each in its report format: a money / Greek /
    correlation / ratio field (``reporting.formatting.FIELD_KINDS``) typed ``str`` becomes its formatted string,
    a quantity its stored digits, a date a date, a missing value None. Fields neither has are left out (their
    model default applies)."""
    out = {}
    for name, convert in _converters(model):
        if name in given:
            out[name] = given[name]
        elif name in row:
            out[name] = convert(row[name])
    return out


def shape_rows(model: type[BaseModel], rows: Sequence[Mapping], **given) -> list[dict]:
    """:func:`shape` of every row of ``rows`` (rows of one query: the same keys), column by column: the fields to
    convert are chosen once, not per row (a position list is 30 rows x 27 fields)."""
    if not rows:
        return []
    first = rows[0]
    columns = [(name, convert) for name, convert in _converters(model) if name not in given and name in first]
    out = [dict(given) for _ in rows]
    for name, convert in columns:
        for item, row in zip(out, rows):
            item[name] = convert(row[name])
    return out


def shape_frame(model: type[BaseModel], frame: pd.DataFrame, **given) -> list[dict]:
    """:func:`shape` of every row of ``frame``."""
    return shape_rows(model, frame.to_dict("records"), **given)


@lru_cache(maxsize=1)
def _column_types() -> dict[str, sa.types.TypeEngine]:
    """Column name -> type of the warehouse tables (the models select their columns under the same names)."""
    from sigmasight_pipeline.warehouse.schema import metadata

    types: dict[str, sa.types.TypeEngine] = {"as_of_date": sa.Date(), "date": sa.Date()}
    for table in metadata.sorted_tables:
        for column in table.c:
            types.setdefault(column.name, column.type)
    return types


def relation(request: Request, name: str) -> sa.TableClause:
    """A mart or staging model of ``dbt_like_sql`` (built by the SQL-model assets) as a typed table, once per app;
    404 naming the model when it has not been built yet. Its columns take the type of the warehouse column of
    the same name (SQLite does not keep the declared types of a ``CREATE TABLE ... AS``)."""
    cache = request.app.state.__dict__.setdefault("relations", {})
    if name not in cache:
        try:
            reflected = sa.Table(name, sa.MetaData(), autoload_with=request.app.state.engine)
        except sa.exc.NoSuchTableError:
            raise ApiError(404, "as_of", f"the SQL model {name} has not been built yet "
                                         "(materialize the sql_models group, or run the demo)") from None
        types = _column_types()
        cache[name] = sa.table(name, *[sa.column(c.name, types.get(c.name, c.type)) for c in reflected.c])
    return cache[name]


def read_dicts(engine: Engine, query, params: Mapping | None = None) -> list[dict]:
    """The rows of ``query`` (with bound ``params``) as dicts: the hot paths (a summary, a position list) skip
    pandas. A statement built once with ``sa.bindparam`` and executed with ``params`` skips SQLAlchemy's cache
    key generation too."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query, dict(params or {})).mappings()]


def sort_dicts(rows: list[dict], sort: str | None, allowed: Sequence[str], default: str) -> list[dict]:
    """:func:`sort_frame` for a list of dicts (missing values last either way)."""
    sort = sort or default
    column = sort.lstrip("-")
    if column not in allowed:
        raise ApiError(422, "sort", f"cannot sort by {column!r}; one of: {', '.join(allowed)} (prefix '-' for descending)")
    present = [r for r in rows if not is_missing(r.get(column))]
    missing = [r for r in rows if is_missing(r.get(column))]
    return sorted(present, key=lambda r: r[column], reverse=sort.startswith("-")) + missing


def read_rows(engine: Engine, query) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
