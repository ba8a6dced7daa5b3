"""Portfolios (api.md [3.0.2]): the list a key may see, a summary, exposures over time, performance windows.

The summary and the exposure series read the mart ``mart_portfolio_daily`` (snapshot + exposures + name, one row
per portfolio and date); performance reads ``portfolio_performance``. The upload lives in ``uploads.py``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of, visible_day, visible_portfolios
from sigmasight_pipeline.api.common import (
    AsOf, Cursor, FromDate, Limit, Page, check_range, database, page_frame, read_rows, relation, resolve_as_of, shape, shape_frame,
    ToDate,
)
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError
from sigmasight_pipeline.engines.performance import WINDOWS
from sigmasight_pipeline.warehouse import schema

router = APIRouter(tags=["portfolios"], responses=ERROR_RESPONSES)

DAILY = "mart_portfolio_daily"


class PortfolioItem(BaseModel):
    portfolio_id: str
    name: str
    owner: str | None
    uploaded_at: dt.datetime
    latest_date: dt.date | None  # latest date with a snapshot


class Exposures(BaseModel):
    long_exposure: str | None
    short_exposure: str | None
    gross_exposure: str | None
    net_exposure: str | None
    delta_adjusted_exposure: str | None
    delta_adjusted_long: str | None
    delta_adjusted_short: str | None
    volatility_delta_exposure: str | None
    options_exposure: str | None
    stock_exposure: str | None


class Counts(BaseModel):
    position_count: int | None
    long_count: int | None
    short_count: int | None
    option_count: int | None
    stock_count: int | None
    missing_price_count: int | None


class Greeks(BaseModel):
    dollar_delta: str | None
    dollar_gamma: str | None
    portfolio_delta: str | None
    portfolio_gamma: str | None
    portfolio_theta: str | None
    portfolio_vega: str | None
    portfolio_rho: str | None


class Summary(BaseModel):
    """A portfolio on one date: value, P&L, exposures, Greeks and counts (``mart_portfolio_daily``)."""

    portfolio_id: str
    name: str
    owner: str | None
    as_of: dt.date
    total_value: str | None
    daily_pnl: str | None
    cumulative_pnl: str | None
    daily_return: str | None
    total_cost_basis: str | None
    total_unrealized_pnl: str | None
    pnl_basis: str | None
    is_first_snapshot: bool | None
    exposures: Exposures
    greeks: Greeks
    counts: Counts


class ExposurePoint(Exposures):
    as_of: dt.date
    total_value: str | None
    daily_pnl: str | None


class PerformanceWindow(BaseModel):
    window_name: str
    window_start: dt.date | None
    first_return_date: dt.date | None
    window_sessions: int
    n_returns: int
    cumulative_return: str | None
    annualized_return: str | None
    annual_volatility: str | None
    sharpe_ratio: str | None
    sortino_ratio: str | None
    max_drawdown: str | None
    peak_date: dt.date | None
    trough_date: dt.date | None
    current_drawdown: str | None
    calmar_ratio: str | None
    best_day: str | None
    best_day_date: dt.date | None
    worst_day: str | None
    worst_day_date: dt.date | None
    positive_days_share: str | None
    beta: str | None
    alpha: str | None
    correlation: str | None
    tracking_error: str | None
    market_return: str | None
    flag: str
    reason: str | None


class Performance(BaseModel):
    portfolio_id: str
    as_of: dt.date
    windows: list[PerformanceWindow]


@router.get("/portfolios", response_model=Page[PortfolioItem], summary="The portfolios this key may see")
def list_portfolios(request: Request, limit: Limit = 100, cursor: Cursor = None, who: Caller = Depends(caller)):
    engine = request.app.state.engine
    s = schema.portfolio_snapshots
    latest = sa.select(s.c.portfolio_id, sa.func.max(s.c.date).label("latest_date")).group_by(s.c.portfolio_id).subquery()
    visible = visible_portfolios(engine, who).subquery()
    query = (sa.select(visible, latest.c.latest_date)
             .select_from(visible.outerjoin(latest, latest.c.portfolio_id == visible.c.portfolio_id))
             .order_by(visible.c.portfolio_id))
    rows, nxt, total = page_frame(read_rows(engine, query), limit=limit, cursor=cursor)
    return {"items": shape_frame(PortfolioItem, rows), "next_cursor": nxt, "total": total}


@router.get("/portfolios/{portfolio_id}", response_model=Summary, summary="Value, P&L, exposures, Greeks and counts on a date")
async def summary(request: Request, portfolio_id: str, as_of: AsOf = None, who: Caller = Depends(caller)):
    portfolio = portfolio_of(request, portfolio_id, who)
    engine, mart = database(request), relation(request, DAILY)
    mine = mart.c.portfolio_id == portfolio_id
    day = (as_of if as_of is not None
           else sa.select(sa.func.max(mart.c.as_of_date)).where(mine).scalar_subquery())
    with engine.connect() as conn:  # the hot path: one query when the date has a snapshot
        row = conn.execute(sa.select(mart).where(mine & (mart.c.as_of_date == day))).mappings().first()
    if row is None:  # 404 naming the latest date
        resolve_as_of(engine, mart, portfolio_id, as_of, what="snapshot", date_column="as_of_date")
        raise ApiError(404, "as_of", f"no snapshot for portfolio {portfolio_id!r} on {day}")  # written meanwhile
    return {
        **shape(Summary, row, portfolio_id=portfolio_id, name=portfolio["name"], owner=portfolio["owner"],
                as_of=row["as_of_date"]),
        "exposures": shape(Exposures, row), "greeks": shape(Greeks, row), "counts": shape(Counts, row),
    }


@router.get("/portfolios/{portfolio_id}/exposures", response_model=Page[ExposurePoint],
            summary="Exposures, value and P&L per date (oldest first)")
def exposures(
    request: Request, portfolio_id: str,
    start: FromDate = None, end: ToDate = None,
    limit: Limit = 100, cursor: Cursor = None, who: Caller = Depends(caller),
):
    portfolio_of(request, portfolio_id, who)
    check_range(start, end)
    mart = relation(request, DAILY)
    query = sa.select(mart).where(mart.c.portfolio_id == portfolio_id).order_by(mart.c.as_of_date)
    if start is not None:
        query = query.where(mart.c.as_of_date >= start)
    if end is not None:
        query = query.where(mart.c.as_of_date <= end)
    rows = read_rows(request.app.state.engine, query)
    rows, nxt, total = page_frame(rows.rename(columns={"as_of_date": "as_of"}), limit=limit, cursor=cursor)
    return {"items": shape_frame(ExposurePoint, rows), "next_cursor": nxt, "total": total}


@router.get("/portfolios/{portfolio_id}/performance", response_model=Performance,
            summary="Performance windows ending on a date (mtd, ytd, 21d ... inception)")
def performance(request: Request, portfolio_id: str, as_of: AsOf = None, who: Caller = Depends(caller)):
    t = schema.portfolio_performance
    engine, day = visible_day(request, portfolio_id, who, t, as_of, what="performance")
    rows = read_rows(engine, sa.select(t).where((t.c.portfolio_id == portfolio_id) & (t.c.date == day)))
    order = {w.name: i for i, w in enumerate(WINDOWS)}
    rows = rows.sort_values("window_name", key=lambda s: s.map(order).fillna(len(order)), kind="mergesort")
    return {"portfolio_id": portfolio_id, "as_of": day, "windows": shape_frame(PerformanceWindow, rows)}

