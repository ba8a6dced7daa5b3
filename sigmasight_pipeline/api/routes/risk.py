"""Risk (api.md [3.0.4-3.0.6]): Greeks, factor exposures and definitions, correlations, VaR / ES with their
contributions and backtest, P&L attribution over a range.

Every figure is a stored row of one as-of date (``?as_of=``, default the latest date of the table the route
is about; a date without rows is a 404 naming the latest one), formatted as the report JSON formats it:

* ``/greeks``: the snapshot's portfolio Greeks (``portfolio_snapshots``) and each position's ``position_greeks``;
* ``/factors``: ``portfolio_factor_exposures``, each position's ``position_factor_exposures`` and the
  regression window (``factor_regression_windows``); ``/factors`` (no portfolio): ``factor_definitions``;
* ``/correlations``: ``factor_correlations`` (the stored upper triangle, mirrored into a square matrix),
  ``correlation_summaries``, ``correlation_clusters`` and ``position_correlations`` (pairs a < b as stored;
  the matrix mirrors them and puts the definitional 1 on its diagonal);
* ``/risk``: ``portfolio_risk_measures`` (every method, measure, level, horizon), ``position_risk_contributions``,
  ``factor_risk_contributions`` and ``risk_backtest``;
* ``/attribution``: ``pnl_attribution`` lines of a date range and the range's cumulative lines from the mart
  ``mart_pnl_attribution_cumulative``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of, visible_day
from sigmasight_pipeline.api.common import (
    AsOf, Cursor, FromDate, Limit, check_range, correlation, money, page_frame, ratio, read_rows, relation,
    shape, shape_frame, ToDate,
)
from sigmasight_pipeline.api.errors import ERROR_RESPONSES
from sigmasight_pipeline.api.routes.portfolios import Greeks as PortfolioGreeks
from sigmasight_pipeline.api.routes.positions import PositionGreeks
from sigmasight_pipeline.warehouse import schema

router = APIRouter(tags=["risk"], responses=ERROR_RESPONSES)

CUMULATIVE = "mart_pnl_attribution_cumulative"

#: unit of each stored risk measure's value: dollars (money, 2 decimals), a fraction (ratio, 6) or a count
MEASURE_UNITS = {
    "var": "dollars", "es": "dollars", "volatility": "dollars", "tracking_error": "dollars",
    "volatility_of_equity": "fraction", "tracking_error_of_equity": "fraction", "factor_share": "fraction",
    "specific_share": "fraction", "scenarios": "count", "filled_returns": "count",
}
TRADING_DAYS = 252


# --- models --------------------------------------------------------------------------------------------------

class PositionGreeksItem(PositionGreeks):
    """A position's stored ``position_greeks`` row of the date (the Greeks of ``/positions/{id}``, with the id)."""

    position_id: int
    symbol: str
    position_type: str


class GreeksOut(BaseModel):
    portfolio_id: str
    as_of: dt.date
    portfolio: PortfolioGreeks | None  # None when the date has no snapshot
    positions: list[PositionGreeksItem]


class PortfolioFactor(BaseModel):
    factor_name: str
    dollar_exposure: str | None
    beta_net: str | None
    beta_gross: str | None
    positions_with_beta: int | None
    positions_without_beta: int | None


class FactorBeta(BaseModel):
    factor_name: str
    beta: str | None
    t_stat: str | None
    r_squared: str | None
    n_obs: int | None
    flag: str | None
    exact_fit: bool | None
    dollar_exposure: str | None


class PositionFactors(BaseModel):
    position_id: int
    symbol: str
    window_start: dt.date | None
    window_end: dt.date | None
    residual_std: str | None  # daily residual standard deviation (ratio, 6 decimals)
    factors: list[FactorBeta]


class RegressionWindow(BaseModel):
    window_start: dt.date | None
    window_end: dt.date | None
    n_obs: int | None
    condition_number: str | None
    max_vif: str | None


class FactorsOut(BaseModel):
    portfolio_id: str
    as_of: dt.date
    window: RegressionWindow | None
    portfolio: list[PortfolioFactor]
    positions: list[PositionFactors]


class FactorDefinition(BaseModel):
    factor_name: str
    proxy_symbol: str
    description: str | None
    display_order: int


class FactorPair(BaseModel):
    factor_a: str
    factor_b: str
    correlation: str | None
    high_correlation: bool | None


class FactorMatrix(BaseModel):
    factors: list[str]
    matrix: list[list[str | None]]
    pairs: list[FactorPair]


class CorrelationSummary(BaseModel):
    positions_included: int | None
    overall_correlation: str | None
    concentration_score: str | None
    effective_positions: str | None
    clusters: int | None


class Cluster(BaseModel):
    cluster_id: int
    cluster_name: str
    position_ids: list[int]
    symbols: list[str]


class PositionPair(BaseModel):
    position_a: int
    position_b: int
    symbol_a: str | None
    symbol_b: str | None
    correlation: str | None
    n_obs: int | None


class PositionMatrix(BaseModel):
    position_ids: list[int]
    symbols: list[str | None]
    matrix: list[list[str | None]]
    pairs: list[PositionPair]


class CorrelationsOut(BaseModel):
    portfolio_id: str
    as_of: dt.date
    factors: FactorMatrix
    summary: CorrelationSummary | None
    clusters: list[Cluster]
    positions: PositionMatrix


class Measure(BaseModel):
    method: str
    measure: str
    level: str | None  # confidence level (ratio); "0.000000" for a measure without one
    horizon_days: int
    unit: str  # dollars | fraction | count
    value: str | None  # dollars 2 decimals (VaR / ES positive losses), fractions 6, counts as integers
    flag: str | None


class Volatility(BaseModel):
    """The parametric figures of the report's risk section (dollars; of-equity and shares as fractions)."""

    volatility_1d: str | None
    volatility_annual: str | None
    volatility_of_equity: str | None
    tracking_error_1d: str | None
    tracking_error_annual: str | None
    tracking_error_of_equity: str | None
    factor_share: str | None
    specific_share: str | None


class PositionContribution(BaseModel):
    position_id: int
    symbol: str | None
    method: str
    measure: str
    level: str | None
    contribution: str | None
    marginal: str | None
    share: str | None


class FactorContribution(BaseModel):
    factor_name: str
    dollar_exposure: str | None
    contribution: str | None
    marginal: str | None
    share: str | None


class Backtest(BaseModel):
    var_date: dt.date
    var_99: str | None
    realized_pnl: str | None
    exception: bool | None
    window_sessions: int | None
    exceptions: int | None
    kupiec_lr: str | None
    kupiec_p_value: str | None
    zone: str | None


class RiskOut(BaseModel):
    portfolio_id: str
    as_of: dt.date
    measures: list[Measure]
    volatility: Volatility
    position_contributions: list[PositionContribution]
    factor_contributions: list[FactorContribution]
    backtest: Backtest | None  # None when the date has no backtest row (no VaR of the previous session)


class AttributionLine(BaseModel):
    as_of: dt.date
    line: str
    line_type: str
    line_order: int
    previous_date: dt.date | None
    exposure: str | None
    factor_return: str | None
    pnl: str | None
    flag: str | None


class CumulativeLine(BaseModel):
    line: str
    line_type: str
    line_order: int
    first_date: dt.date  # the first attributed date of the line within the range
    last_date: dt.date  # the last one
    pnl: str | None  # the line's P&L summed over the range (a NULL day counts 0)


class AttributionOut(BaseModel):
    portfolio_id: str
    start: dt.date | None = Field(alias="from")  # the range asked for (null: from the first attributed date)
    end: dt.date | None = Field(alias="to")  # (null: up to the latest)
    cumulative: list[CumulativeLine]
    items: list[AttributionLine]  # the daily lines, oldest first, paginated
    next_cursor: str | None
    total: int


# --- helpers -------------------------------------------------------------------------------------------------

def _of_date(t, portfolio_id: str, day: dt.date):
    return (t.c.portfolio_id == portfolio_id) & (t.c.date == day)


def _symbols(engine, portfolio_id: str) -> dict[int, str]:
    p = schema.positions
    rows = read_rows(engine, sa.select(p.c.position_id, p.c.symbol).where(p.c.portfolio_id == portfolio_id))
    return dict(zip(rows["position_id"].astype(int).tolist(), rows["symbol"].tolist()))


def _factor_order(engine) -> dict[str, int]:
    fd = schema.factor_definitions
    rows = read_rows(engine, sa.select(fd.c.factor_name, fd.c.display_order))
    return dict(zip(rows["factor_name"].tolist(), rows["display_order"].astype(int).tolist()))


def _measure_value(measure: str, value) -> str | None:
    unit = MEASURE_UNITS.get(measure, "dollars")
    if unit == "count":
        return None if value is None or value != value else str(int(round(float(value))))
    return ratio(value) if unit == "fraction" else money(value)


# --- routes --------------------------------------------------------------------------------------------------

@router.get("/portfolios/{portfolio_id}/greeks", response_model=GreeksOut,
            summary="Portfolio Greeks (the snapshot's) and each position's Greeks on a date")
def greeks(request: Request, portfolio_id: str, as_of: AsOf = None, who: Caller = Depends(caller)):
    g, p, s = schema.position_greeks, schema.positions, schema.portfolio_snapshots
    engine, day = visible_day(request, portfolio_id, who, g, as_of, what="position Greeks")
    rows = read_rows(engine, sa.select(g, p.c.symbol, p.c.position_type)
                     .select_from(g.join(p, (p.c.portfolio_id == g.c.portfolio_id) & (p.c.position_id == g.c.position_id)))
                     .where(_of_date(g, portfolio_id, day)).order_by(g.c.position_id))
    snap = read_rows(engine, sa.select(s).where(_of_date(s, portfolio_id, day)))
    return {"portfolio_id": portfolio_id, "as_of": day,
            "portfolio": shape(PortfolioGreeks, snap.iloc[0].to_dict()) if len(snap) else None,
            "positions": shape_frame(PositionGreeksItem, rows)}


@router.get("/portfolios/{portfolio_id}/factors", response_model=FactorsOut,
            summary="Portfolio and position factor exposures and betas on a date, with the regression window")
def factors(request: Request, portfolio_id: str, as_of: AsOf = None, who: Caller = Depends(caller)):
    pf, f, w = schema.portfolio_factor_exposures, schema.position_factor_exposures, schema.factor_regression_windows
    engine, day = visible_day(request, portfolio_id, who, pf, as_of, what="portfolio factor exposures")
    order = _factor_order(engine)

    def by_factor(frame):
        return frame.sort_values("factor_name", key=lambda c: c.map(order).fillna(len(order)), kind="mergesort")

    portfolio = by_factor(read_rows(engine, sa.select(pf).where(_of_date(pf, portfolio_id, day))
                                    .order_by(pf.c.factor_name)))
    rows = by_factor(read_rows(engine, sa.select(f).where(_of_date(f, portfolio_id, day))
                               .order_by(f.c.position_id, f.c.factor_name)))
    window = read_rows(engine, sa.select(w).where(_of_date(w, portfolio_id, day)))
    symbols = _symbols(engine, portfolio_id)
    positions = []
    for pid, part in rows.groupby("position_id", sort=True):
        first = part.iloc[0].to_dict()
        positions.append({
            "position_id": int(pid), "symbol": symbols.get(int(pid), ""),
            **shape(PositionFactors, first, factors=shape_frame(FactorBeta, part)),
            "residual_std": ratio(first["residual_std"]),
        })
    win = None
    if len(window):
        row = window.iloc[0].to_dict()
        win = shape(RegressionWindow, row)
    return {"portfolio_id": portfolio_id, "as_of": day, "window": win,
            "portfolio": shape_frame(PortfolioFactor, portfolio), "positions": positions}


@router.get("/factors", response_model=list[FactorDefinition], summary="The factor definitions (name, proxy ETF)")
def factor_definitions(request: Request, who: Caller = Depends(caller)):
    fd = schema.factor_definitions
    rows = read_rows(request.app.state.engine, sa.select(fd).order_by(fd.c.display_order, fd.c.factor_name))
    return shape_frame(FactorDefinition, rows)


@router.get("/portfolios/{portfolio_id}/correlations", response_model=CorrelationsOut,
            summary="Factor correlation matrix, position correlation metrics, clusters and matrix on a date")
def correlations(request: Request, portfolio_id: str, as_of: AsOf = None, who: Caller = Depends(caller)):
    fc, cs, cc, pc = (schema.factor_correlations, schema.correlation_summaries, schema.correlation_clusters,
                      schema.position_correlations)
    engine, day = visible_day(request, portfolio_id, who, fc, as_of, what="factor correlations")
    order = _factor_order(engine)
    pairs = read_rows(engine, sa.select(fc).where(_of_date(fc, portfolio_id, day)).order_by(fc.c.factor_a, fc.c.factor_b))
    names = sorted(set(pairs["factor_a"]) | set(pairs["factor_b"]), key=lambda n: (order.get(n, len(order)), n))
    where = {n: i for i, n in enumerate(names)}
    fmatrix: list[list[str | None]] = [[None] * len(names) for _ in names]
    for a, b, c in zip(pairs["factor_a"], pairs["factor_b"], pairs["correlation"]):
        fmatrix[where[a]][where[b]] = fmatrix[where[b]][where[a]] = correlation(c)
    summary = read_rows(engine, sa.select(cs).where(_of_date(cs, portfolio_id, day)))
    clusters = read_rows(engine, sa.select(cc).where(_of_date(cc, portfolio_id, day))
                         .order_by(cc.c.cluster_id, cc.c.position_id))
    ppairs = read_rows(engine, sa.select(pc).where(_of_date(pc, portfolio_id, day)).order_by(pc.c.position_a, pc.c.position_b))
    symbols = _symbols(engine, portfolio_id)
    ids = sorted({int(x) for x in ppairs["position_a"]} | {int(x) for x in ppairs["position_b"]})
    at = {p: i for i, p in enumerate(ids)}
    pmatrix: list[list[str | None]] = [[correlation(1.0) if i == j else None for j in ids] for i in ids]
    for a, b, c in zip(ppairs["position_a"].astype(int), ppairs["position_b"].astype(int), ppairs["correlation"]):
        pmatrix[at[a]][at[b]] = pmatrix[at[b]][at[a]] = correlation(c)
    cluster_items = [
        {"cluster_id": int(cid), "cluster_name": str(part["cluster_name"].iloc[0]),
         "position_ids": [int(x) for x in part["position_id"]],
         "symbols": [symbols.get(int(x), "") for x in part["position_id"]]}
        for cid, part in clusters.groupby("cluster_id", sort=True)
    ]
    return {
        "portfolio_id": portfolio_id, "as_of": day,
        "factors": {"factors": names, "matrix": fmatrix,
                    "pairs": shape_frame(FactorPair, pairs.sort_values(
                        ["factor_a", "factor_b"], key=lambda c: c.map(where), kind="mergesort"))},
        "summary": shape(CorrelationSummary, summary.iloc[0].to_dict()) if len(summary) else None,
        "clusters": cluster_items,
        "positions": {"position_ids": ids, "symbols": [symbols.get(p) for p in ids], "matrix": pmatrix,
                      "pairs": shape_frame(PositionPair, ppairs.assign(
                          symbol_a=ppairs["position_a"].map(lambda x: symbols.get(int(x))),
                          symbol_b=ppairs["position_b"].map(lambda x: symbols.get(int(x)))))},
    }


@router.get("/portfolios/{portfolio_id}/risk", response_model=RiskOut,
            summary="VaR / ES (every method, level, horizon), contributions, volatility and the backtest on a date")
def risk(request: Request, portfolio_id: str, as_of: AsOf = None, who: Caller = Depends(caller)):
    m, pr, fr, bt = (schema.portfolio_risk_measures, schema.position_risk_contributions,
                     schema.factor_risk_contributions, schema.risk_backtest)
    engine, day = visible_day(request, portfolio_id, who, m, as_of, what="risk measures")
    measures = read_rows(engine, sa.select(m).where(_of_date(m, portfolio_id, day))
                         .order_by(m.c.method, m.c.measure, m.c.level, m.c.horizon_days))
    values = {(r["method"], r["measure"], int(r["horizon_days"])): r["value"]
              for r in measures.to_dict("records") if float(r["level"]) == 0.0}

    def parametric(measure: str, horizon: int = 1):
        return values.get(("parametric", measure, horizon))

    by_position = read_rows(engine, sa.select(pr).where(_of_date(pr, portfolio_id, day))
                            .order_by(pr.c.position_id, pr.c.method, pr.c.measure, pr.c.level))
    symbols = _symbols(engine, portfolio_id)
    by_factor = read_rows(engine, sa.select(fr).where(_of_date(fr, portfolio_id, day)))
    order = _factor_order(engine)
    by_factor = by_factor.sort_values(  # factors in display order, then Specific (not a defined factor)
        "factor_name", key=lambda c: c.map(order).fillna(len(order)), kind="mergesort")
    backtest = read_rows(engine, sa.select(bt).where(_of_date(bt, portfolio_id, day)))
    return {
        "portfolio_id": portfolio_id, "as_of": day,
        "measures": [{**shape(Measure, r), "unit": MEASURE_UNITS.get(r["measure"], "dollars"),
                      "value": _measure_value(r["measure"], r["value"])} for r in measures.to_dict("records")],
        "volatility": {
            "volatility_1d": money(parametric("volatility")),
            "volatility_annual": money(parametric("volatility", TRADING_DAYS)),
            "volatility_of_equity": ratio(parametric("volatility_of_equity", TRADING_DAYS)),
            "tracking_error_1d": money(parametric("tracking_error")),
            "tracking_error_annual": money(parametric("tracking_error", TRADING_DAYS)),
            "tracking_error_of_equity": ratio(parametric("tracking_error_of_equity", TRADING_DAYS)),
            "factor_share": ratio(parametric("factor_share")),
            "specific_share": ratio(parametric("specific_share")),
        },
        "position_contributions": shape_frame(PositionContribution, by_position.assign(
            symbol=by_position["position_id"].map(lambda x: symbols.get(int(x))))),
        "factor_contributions": shape_frame(FactorContribution, by_factor),
        "backtest": shape(Backtest, backtest.iloc[0].to_dict()) if len(backtest) else None,
    }


@router.get("/portfolios/{portfolio_id}/attribution", response_model=AttributionOut,
            summary="Daily P&L attribution lines over a range and the range's cumulative attribution")
def attribution(
    request: Request, portfolio_id: str,
    start: FromDate = None, end: ToDate = None,
    limit: Limit = 100, cursor: Cursor = None, who: Caller = Depends(caller),
):
    """The daily lines are the stored ``pnl_attribution`` rows of the range (oldest first, lines in model order).

    The cumulative lines come from the mart ``mart_pnl_attribution_cumulative``, which answers any range: it holds
    each line's running sum since the first attributed date (a NULL day counts 0), so the range's sum is the
    running sum on the line's last date in the range minus the running sum on its last date before ``from``.
    Both are read in one SQL query; nothing is re-summed here."""
    portfolio_of(request, portfolio_id, who)
    check_range(start, end)
    engine = request.app.state.engine
    a = schema.pnl_attribution
    mine = a.c.portfolio_id == portfolio_id
    query = sa.select(a).where(mine).order_by(a.c.date, a.c.line_order, a.c.line)
    if start is not None:
        query = query.where(a.c.date >= start)
    if end is not None:
        query = query.where(a.c.date <= end)
    lines, nxt, total = page_frame(read_rows(engine, query).rename(columns={"date": "as_of"}), limit=limit, cursor=cursor)
    return {"portfolio_id": portfolio_id, "from": start, "to": end,
            "cumulative": _cumulative(request, portfolio_id, start, end),
            "items": shape_frame(AttributionLine, lines), "next_cursor": nxt, "total": total}


def _cumulative(request: Request, portfolio_id: str, start: dt.date | None, end: dt.date | None) -> list[dict]:
    """Per line: the mart's running sum on its last date in [start, end] minus that on its last date before
    start (0 when none), in one query."""
    mart = relation(request, CUMULATIVE)
    mine = mart.c.portfolio_id == portfolio_id
    inside = mine
    if start is not None:
        inside = inside & (mart.c.as_of_date >= start)
    if end is not None:
        inside = inside & (mart.c.as_of_date <= end)
    span = (sa.select(mart.c.line, sa.func.min(mart.c.as_of_date).label("first_date"),
                      sa.func.max(mart.c.as_of_date).label("last_date"))
            .where(inside).group_by(mart.c.line).subquery("span"))
    before = (sa.select(mart.c.line, sa.func.max(mart.c.as_of_date).label("before_date"))
              .where(mine & (mart.c.as_of_date < start if start is not None else sa.false()))
              .group_by(mart.c.line).subquery("before"))
    last, prior = mart.alias("last_row"), mart.alias("prior_row")
    query = (
        sa.select(span.c.line, last.c.line_type, last.c.line_order, span.c.first_date, span.c.last_date,
                  (last.c.cumulative_pnl - sa.func.coalesce(prior.c.cumulative_pnl, 0)).label("pnl"))
        .select_from(
            span.join(last, (last.c.portfolio_id == portfolio_id) & (last.c.line == span.c.line)
                      & (last.c.as_of_date == span.c.last_date))
            .outerjoin(before, before.c.line == span.c.line)
            .outerjoin(prior, (prior.c.portfolio_id == portfolio_id) & (prior.c.line == before.c.line)
                       & (prior.c.as_of_date == before.c.before_date))
        )
        .order_by(last.c.line_order, span.c.line)
    )
    return shape_frame(CumulativeLine, read_rows(request.app.state.engine, query))
