"""Positions (api.md [3.0.3]): the book of one date with filters, one position in full, exposures by group.

Every figure is a stored row of the as-of date (``?as_of=``, default the latest date with position valuations):

* ``position_valuations`` (quantity held that date, price, market value, notional, delta-adjusted exposure,
  unrealised / realised P&L), joined with ``positions`` (symbol, type, underlying, option terms, entry),
  ``position_daily_pnl`` (the day's P&L) and ``position_greeks`` (delta, dollar delta);
* a position's type (its side that day) and tags are those in force on the as-of date: the stored ``positions``
  type and ``position_tags`` rows (the book as of its latest change) when no trade and no tag change is dated
  after it (the hot path: they are part of the one query), else the book's ledger replayed to that date
  (``engines.book.positions_on``, the function the engines get their book from);
* one position adds its ``position_greeks`` row, its ``position_factor_exposures`` rows (betas and dollar
  exposures by factor, in the factors' display order) and its ``position_daily_pnl`` row.

Filters are exact matches on bound parameters: ``symbol`` and ``underlying`` (a ticker or OCC symbol, case
folded to upper; any other shape is a 422), ``position_type`` (LONG SHORT LC SC LP SP) and ``tag`` (one of the
book's tags or ``(untagged)``; an unknown tag is a 422 listing them).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of
from sigmasight_pipeline.api.common import (
    AsOf, Cursor, Limit, Page, database, money, page, ratio, read_dicts, read_rows, resolve_as_of, shape, shape_frame, shape_rows,
    sort_dicts,
)
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError
from sigmasight_pipeline.engines.book import positions_on
from sigmasight_pipeline.engines.valuation import UNTAGGED
from sigmasight_pipeline.engines.valuation import group_exposures as engine_group_exposures
from sigmasight_pipeline.reporting.formatting import POSITION_TYPES
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import read_ledger

router = APIRouter(tags=["positions"], responses=ERROR_RESPONSES)

#: A ticker, an OCC option symbol or an index (^VIX): what a symbol / underlying filter may look like.
SYMBOL_PATTERN = r"^\^?[A-Za-z0-9][A-Za-z0-9.\-]{0,31}$"
SymbolFilter = Annotated[str | None, Query(max_length=33, pattern=SYMBOL_PATTERN,
                                           description="exact symbol (ticker or OCC option symbol)")]
UnderlyingFilter = Annotated[str | None, Query(max_length=33, pattern=SYMBOL_PATTERN,
                                               description="exact underlying symbol (an option's underlying, or the stock)")]
TypeFilter = Annotated[str | None, Query(max_length=5, description="LONG, SHORT, LC, SC, LP or SP")]
TagFilter = Annotated[str | None, Query(max_length=40, description=f"one of the book's tags, or {UNTAGGED}")]
PositionId = Annotated[int, Path(gt=0, le=2_147_483_647, description="the book's position id (1-based)")]

#: ``sort`` keys of the position list (``-`` prefix: descending)
SORTS = ("position_id", "symbol", "position_type", "underlying_symbol", "quantity", "market_value", "notional",
         "delta_adjusted_exposure", "unrealized_pnl", "daily_pnl", "dollar_delta")


class PositionItem(BaseModel):
    """A position on the as-of date (``position_valuations`` + ``positions`` + ``position_daily_pnl`` + tags)."""

    position_id: int
    symbol: str
    position_type: str
    underlying_symbol: str
    option_type: str | None
    strike_price: str | None  # positions.strike (money, 2 decimals)
    expiration: dt.date | None
    multiplier: str | None
    quantity: str | None  # held that date, split-adjusted
    entry_price: str | None
    entry_date: dt.date | None
    exit_date: dt.date | None
    price: str | None
    price_source: str | None  # market | model | missing
    underlying_price: str | None
    market_value: str | None
    cost_basis: str | None
    unrealized_pnl: str | None
    realized_pnl: str | None  # realised up to and including the date
    daily_pnl: str | None
    pnl_basis: str | None
    notional: str | None
    delta_adjusted_exposure: str | None
    is_long: bool | None
    delta: str | None
    dollar_delta: str | None
    tags: list[str]


class PositionList(Page[PositionItem]):
    portfolio_id: str
    as_of: dt.date


class PositionGreeks(BaseModel):
    underlying_price: str | None
    implied_vol: str | None
    vol_source: str | None
    days_to_expiry: int | None
    model_price: str | None
    dividend_yield: str | None
    delta: str | None
    gamma: str | None
    theta: str | None
    vega: str | None
    rho: str | None
    position_delta: str | None
    position_gamma: str | None
    position_theta: str | None
    position_vega: str | None
    position_rho: str | None
    dollar_delta: str | None
    dollar_gamma: str | None
    flag: str | None
    pricing_note: str | None


class PositionFactor(BaseModel):
    factor_name: str
    beta: str | None
    t_stat: str | None
    r_squared: str | None
    n_obs: int | None
    window_start: dt.date | None
    window_end: dt.date | None
    flag: str | None
    exact_fit: bool | None
    dollar_exposure: str | None
    residual_std: str | None  # daily residual standard deviation (ratio, 6 decimals)


class PositionPnl(BaseModel):
    """The day's ``position_daily_pnl`` row."""

    daily_pnl: str | None
    pnl_basis: str | None
    quantity: str | None  # held at the end of the day
    trade_cash: str | None  # net cash paid for the day's trades (money)
    realized_pnl: str | None  # realised that day


class PositionDetail(PositionItem):
    portfolio_id: str
    as_of: dt.date
    greeks: PositionGreeks | None
    factors: list[PositionFactor]
    pnl: PositionPnl | None


class GroupItem(BaseModel):
    group_name: str
    market_value: str | None  # signed sum of the group's market values
    gross_exposure: str | None
    delta_adjusted_exposure: str | None
    volatility_delta_exposure: str | None
    position_count: int


class Groups(BaseModel):
    portfolio_id: str
    as_of: dt.date
    by: str
    source: str  # where the figures come from
    groups: list[GroupItem]


# --- queries -------------------------------------------------------------------------------------------------

def _book_query(portfolio_id, day) -> sa.Select:
    """The positions of ``day``: valuations joined with the position, the day's P&L and Greeks (values, or
    ``sa.bindparam``s as in :data:`_BOOK`)."""
    v, p, d, g, t = (schema.position_valuations, schema.positions, schema.position_daily_pnl, schema.position_greeks,
                     schema.position_tags)
    # the position's tags in one column (a tag has no comma: warehouse.book.check_tag); split by _tag_list
    tags = (sa.select(sa.func.aggregate_strings(t.c.tag, ","))
            .where((t.c.portfolio_id == v.c.portfolio_id) & (t.c.position_id == v.c.position_id))
            .scalar_subquery().label("tag_list"))

    def same(t):
        return (t.c.date == v.c.date) & (t.c.portfolio_id == v.c.portfolio_id) & (t.c.position_id == v.c.position_id)

    return (
        sa.select(
            v.c.position_id, p.c.symbol, p.c.position_type, p.c.underlying_symbol, p.c.option_type,
            p.c.strike.label("strike_price"), p.c.expiration, p.c.multiplier, v.c.quantity, p.c.entry_price,
            p.c.entry_date, p.c.exit_date, v.c.price, v.c.price_source, v.c.underlying_price, v.c.market_value,
            v.c.cost_basis, v.c.unrealized_pnl, v.c.realized_pnl, d.c.daily_pnl, d.c.pnl_basis, v.c.notional,
            v.c.delta_adjusted_exposure, v.c.is_long, g.c.delta, g.c.dollar_delta, tags,
        )
        .select_from(
            v.join(p, (p.c.portfolio_id == v.c.portfolio_id) & (p.c.position_id == v.c.position_id))
            .outerjoin(d, same(d)).outerjoin(g, same(g))
        )
        .where((v.c.portfolio_id == portfolio_id) & (v.c.date == day))
        .order_by(v.c.position_id)
    )


#: the unfiltered position list, built once: executed with ``{"portfolio_id", "day"}``
_BOOK = _book_query(sa.bindparam("portfolio_id"), sa.bindparam("day", type_=sa.Date()))
#: the same, for a key that sees only its owner's portfolios (``{"owner"}`` too): no row for another owner's book
_OWNED_BOOK = _BOOK.where(sa.exists().where(
    (schema.portfolios.c.portfolio_id == schema.position_valuations.c.portfolio_id)
    & (schema.portfolios.c.owner == sa.bindparam("owner"))))


def _tag_list(row: dict) -> list[str]:
    value = row.get("tag_list")
    return sorted(value.split(",")) if isinstance(value, str) and value else []


_DAY = sa.bindparam("day", type_=sa.Date())
#: whether a trade or a tag change of the book is dated after ``day`` (then the stored current type and tags of a
#: position may not be that day's)
_CHANGED_AFTER = sa.select(sa.or_(
    sa.exists().where((schema.tag_changes.c.portfolio_id == sa.bindparam("portfolio_id"))
                      & (schema.tag_changes.c.effective_date > _DAY)),
    sa.exists().where((schema.trades.c.portfolio_id == sa.bindparam("portfolio_id"))
                      & (schema.trades.c.trade_date > _DAY)),
))


def _sides_and_tags_of_day(engine, portfolio_id: str, day: dt.date) -> dict[int, tuple[str | None, list[str]]] | None:
    """``position_id -> (position type, tags)`` in force on ``day``, from the ledger replayed to that day; None
    when nothing of the book is dated after it (the stored type and tags are that day's). A position closed by
    ``day`` has no side that day: its type is None (the stored one is kept)."""
    with engine.connect() as conn:
        if not conn.execute(_CHANGED_AFTER, {"portfolio_id": portfolio_id, "day": day}).scalar():
            return None
    book = positions_on(read_ledger(engine, portfolio_id), day, include_closed=True)
    held = book["quantity"].to_numpy(float) != 0
    return {int(pid): (ptype if open_ else None, sorted(tags) if isinstance(tags, (tuple, list)) else [])
            for pid, ptype, tags, open_ in zip(book["position_id"], book["position_type"], book["tags"], held)}


def _apply_day(row: dict, of_day: dict[int, tuple[str | None, list[str]]] | None) -> dict:
    """``row`` with the type and tags of its day (:func:`_sides_and_tags_of_day`; the stored ones without it)."""
    if of_day is None or row["position_id"] not in of_day:
        row["tags"] = _tag_list(row)
        return row
    side, row["tags"] = of_day[row["position_id"]]
    row["position_type"] = side or row["position_type"]
    return row


def _valuation_date(request: Request, portfolio_id: str, as_of: dt.date | None) -> dt.date:
    return resolve_as_of(request.app.state.engine, schema.position_valuations, portfolio_id, as_of,
                         what="position valuations")


# --- routes --------------------------------------------------------------------------------------------------

@router.get("/portfolios/{portfolio_id}/positions", response_model=PositionList,
            summary="The positions of a date: quantity, prices, value, exposure, P&L, tags (filters, sort, pages)")
async def list_positions(
    request: Request, portfolio_id: str, as_of: AsOf = None,
    symbol: SymbolFilter = None, position_type: TypeFilter = None, tag: TagFilter = None,
    underlying: UnderlyingFilter = None,
    sort: Annotated[str | None, Query(max_length=40, description=f"one of {', '.join(SORTS)}; '-' for descending "
                                                                 "(default position_id)")] = None,
    limit: Limit = 100, cursor: Cursor = None, who: Caller = Depends(caller),
):
    engine = database(request)

    def valuation_date() -> dt.date:  # the date asked for when it has valuations; else 404 naming the latest
        return resolve_as_of(engine, schema.position_valuations, portfolio_id, as_of, what="position valuations")

    # With a date given, the rows the key may see are read first; only an empty answer asks whether the portfolio
    # and the date exist (a flat book and a filter that matches nothing are empty too). The hot path is one query.
    if as_of is None:
        portfolio_of(request, portfolio_id, who)  # before the latest date is looked up (its 404 names the book)
    day = as_of if as_of is not None else valuation_date()
    query, p = (_BOOK if who.is_operator else _OWNED_BOOK), schema.positions
    if symbol is not None:
        query = query.where(p.c.symbol == symbol.upper())
    if underlying is not None:
        query = query.where(p.c.underlying_symbol == underlying.upper())
    if position_type is not None and position_type.upper() not in POSITION_TYPES:
        raise ApiError(422, "position_type", f"unknown position_type {position_type!r}; one of: "
                                             f"{', '.join(POSITION_TYPES)}")
    rows = read_dicts(engine, query, {"portfolio_id": portfolio_id, "day": day, "owner": who.key.owner})
    if not rows:  # an unknown or another owner's portfolio (404 as unknown), a date without valuations, or empty
        portfolio_of(request, portfolio_id, who)
        valuation_date()
    of_day = _sides_and_tags_of_day(engine, portfolio_id, day) if rows else None
    rows = [_apply_day(row, of_day) for row in rows]
    if position_type is not None:  # the type of the day (known once the rows are read, as the tags)
        rows = [row for row in rows if row["position_type"] == position_type.upper()]
    if tag is not None:  # in Python: the book's tags of the day are known only once its rows are read
        known = sorted({x for row in rows for x in row["tags"]})
        if tag != UNTAGGED and tag not in known:
            raise ApiError(422, "tag", f"portfolio {portfolio_id!r} has no tag {tag!r}; its tags: "
                                       f"{', '.join([*known, UNTAGGED])}")
        rows = [row for row in rows if (tag in row["tags"] if tag != UNTAGGED else not row["tags"])]
    if sort not in (None, "position_id"):  # the query's own order otherwise
        rows = sort_dicts(rows, sort, SORTS, "position_id")
    rows = page(rows, limit=limit, cursor=cursor)
    items = shape_rows(PositionItem, rows["items"])
    return {"portfolio_id": portfolio_id, "as_of": day, **rows, "items": items}


@router.get("/portfolios/{portfolio_id}/positions/groups", response_model=Groups,
            summary="Exposures of a date grouped by tag, underlying or position type")
def position_groups(
    request: Request, portfolio_id: str,
    by: Annotated[Literal["tag", "underlying", "position_type"], Query(description="the grouping")] = "tag",
    as_of: AsOf = None, who: Caller = Depends(caller),
):
    """By ``tag`` and ``underlying``: the stored ``group_exposures`` rows of the date (written by the valuation
    asset; a position with several tags counts in each of its tag groups, untagged ones form ``(untagged)``).
    By ``position_type``: not stored, so the stored ``position_valuations`` rows of the date are grouped by
    the position's type of the date with the valuation engine's own ``group_exposures`` (the function the asset
    writes the other groupings with; market_value = the signed sum, as the asset stores it)."""
    portfolio_of(request, portfolio_id, who)
    engine = request.app.state.engine
    if by != "position_type":
        ge = schema.group_exposures
        day = resolve_as_of(engine, ge, portfolio_id, as_of, what="group exposures")
        rows = read_rows(engine, sa.select(ge).where((ge.c.portfolio_id == portfolio_id) & (ge.c.date == day)
                                                     & (ge.c.group_type == by)).order_by(ge.c.group_name))
        return {"portfolio_id": portfolio_id, "as_of": day, "by": by, "source": "group_exposures",
                "groups": shape_frame(GroupItem, rows)}
    day = _valuation_date(request, portfolio_id, as_of)
    v, p = schema.position_valuations, schema.positions
    rows = read_rows(engine, sa.select(
        v.c.date, v.c.position_id, v.c.market_value, v.c.cost_basis, v.c.unrealized_pnl, v.c.notional,
        v.c.delta_adjusted_exposure, v.c.is_long, p.c.position_type, p.c.option_type, p.c.underlying_symbol,
    ).select_from(v.join(p, (p.c.portfolio_id == v.c.portfolio_id) & (p.c.position_id == v.c.position_id)))
        .where((v.c.portfolio_id == portfolio_id) & (v.c.date == day)).order_by(v.c.position_id))
    of_day = _sides_and_tags_of_day(engine, portfolio_id, day)
    if of_day is not None:  # the side of the day, not the latest one
        rows["position_type"] = [(of_day.get(pid, (None, []))[0] or stored)
                                 for pid, stored in zip(rows["position_id"], rows["position_type"])]
    money_columns = ["market_value", "cost_basis", "unrealized_pnl", "notional", "delta_adjusted_exposure"]
    valuations = rows[["date", "position_id", *money_columns, "is_long"]].astype({c: float for c in money_columns})
    positions = pd.DataFrame({"position_id": rows["position_id"], "is_option": rows["option_type"].notna(),
                              "underlying_symbol": rows["underlying_symbol"], "tags": rows["position_type"]})
    groups = engine_group_exposures(valuations, positions, by="tag")
    groups = groups.rename(columns={"group": "group_name"}).assign(market_value=groups["net_exposure"])
    return {"portfolio_id": portfolio_id, "as_of": day, "by": by,
            "source": "position_valuations grouped by the position type of the date (engines.valuation.group_exposures)",
            "groups": shape_frame(GroupItem, groups.sort_values("group_name", kind="mergesort"))}


@router.get("/portfolios/{portfolio_id}/positions/{position_id}", response_model=PositionDetail,
            summary="One position of a date with its Greeks, factor betas and exposures, P&L and tags")
def one_position(request: Request, portfolio_id: str, position_id: PositionId, as_of: AsOf = None,
                 who: Caller = Depends(caller)):
    portfolio_of(request, portfolio_id, who)
    engine = request.app.state.engine
    day = _valuation_date(request, portfolio_id, as_of)
    rows = read_rows(engine, _book_query(portfolio_id, day).where(schema.position_valuations.c.position_id == position_id))
    if rows.empty:
        raise ApiError(404, "position_id", f"portfolio {portfolio_id!r} has no position_id {position_id} on "
                                           f"{day:%Y-%m-%d}")
    mine = {"portfolio_id": portfolio_id, "position_id": position_id, "date": day}
    g, f, fd, d = (schema.position_greeks, schema.position_factor_exposures, schema.factor_definitions,
                   schema.position_daily_pnl)

    def of(t):
        return sa.and_(*(t.c[k] == value for k, value in mine.items()))

    greeks = read_rows(engine, sa.select(g).where(of(g)))
    factors = read_rows(engine, sa.select(f, fd.c.display_order)
                        .select_from(f.outerjoin(fd, fd.c.factor_name == f.c.factor_name))
                        .where(of(f)).order_by(fd.c.display_order, f.c.factor_name))
    pnl = read_rows(engine, sa.select(d).where(of(d)))
    book_row = _apply_day(rows.iloc[0].to_dict(), _sides_and_tags_of_day(engine, portfolio_id, day))
    item = shape(PositionItem, book_row)
    factor_items = shape_frame(PositionFactor, factors)
    for out, std in zip(factor_items, factors["residual_std"].tolist()):
        out["residual_std"] = ratio(std)
    pnl_item = None
    if len(pnl):
        row = pnl.iloc[0].to_dict()
        pnl_item = {**shape(PositionPnl, row), "trade_cash": money(row["trade_cash"])}
    return {**item, "portfolio_id": portfolio_id, "as_of": day,
            "greeks": shape(PositionGreeks, greeks.iloc[0].to_dict()) if len(greeks) else None,
            "factors": factor_items, "pnl": pnl_item}
