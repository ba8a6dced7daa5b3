"""Stress (api.md [3.0.5]): the stored scenarios, the stored results of a date, and ad-hoc scenarios.

* ``GET /scenarios``: ``stress_scenarios`` with their ``stress_scenario_shocks`` (any key).
* ``GET /portfolios/{id}/stress``: the stored ``stress_results`` of the date with each scenario's
  ``stress_factor_breakdown``; worst correlated P&L first (``sort``), filterable by ``category``.
* ``POST /portfolios/{id}/stress``: scenarios in the body, in the fields of the scenario file, validated by its one
  validator (``warehouse.reference.parse_scenarios``: every problem named by scenario and field, 422) and computed
  by ``questions.adhoc_stress`` exactly as ``sigmasight stress --format json`` computes them; nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of, visible_day
from sigmasight_pipeline.api.common import AsOf, Strict, read_rows, shape_frame
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError, FieldError
from sigmasight_pipeline.warehouse import schema

router = APIRouter(tags=["stress"], responses=ERROR_RESPONSES)


class ScenarioShock(BaseModel):
    factor_name: str
    shock: str | None  # a fractional return (ratio, 6 decimals); Interest Rate: the yield change (0.0025 = 25 bp)


class Scenario(BaseModel):
    scenario_id: str
    name: str
    category: str
    severity: str
    period_start: dt.date | None
    period_end: dt.date | None
    shocks: list[ScenarioShock]


class FactorBreakdown(BaseModel):
    factor_name: str
    shock: str | None
    implied_move: str | None
    direct_pnl: str | None
    correlated_pnl: str | None


class StressResult(BaseModel):
    scenario_id: str
    name: str
    category: str
    severity: str
    direct_pnl: str | None
    correlated_pnl: str | None
    correlation_effect: str | None
    pct_of_gross_exposure: str | None
    pct_of_equity: str | None
    gross_exposure: str | None
    equity: str | None
    exceeds_equity: bool
    loss_cap_applied: bool
    flag: str
    factor_breakdown: list[FactorBreakdown]


class StressResults(BaseModel):
    portfolio_id: str
    as_of: dt.date
    results: list[StressResult]


class AdhocScenario(Strict):
    """One scenario, in the fields of the scenario file (``data/stress_scenarios.yaml``)."""

    id: str = Field(max_length=64)
    name: str = Field(max_length=120)
    category: str | None = Field(None, max_length=32)
    severity: str | None = Field(None, max_length=32)
    period: list[dt.date] | None = Field(None, min_length=2, max_length=2)
    shocks: dict[str, float] = Field(default_factory=dict, max_length=50)
    rate_shock_bp: float | None = None


class AdhocStressRequest(Strict):
    as_of: dt.date | None = Field(None, description="default: the latest date with stored stress inputs")
    scenarios: list[AdhocScenario] = Field(min_length=1, max_length=100)


class AdhocBreakdown(BaseModel):
    factor_name: str
    shock: float | None
    implied_move: float | None
    direct_pnl: float | None
    correlated_pnl: float | None


class AdhocResult(BaseModel):
    scenario_id: str
    name: str
    category: str
    severity: str
    direct_pnl: float | None
    correlated_pnl: float | None
    correlation_effect: float | None
    pct_of_gross_exposure: float | None
    pct_of_equity: float | None
    exceeds_equity: bool
    loss_cap_applied: bool
    flag: str
    factor_breakdown: list[AdhocBreakdown]


class AdhocStressAnswer(BaseModel):
    """The JSON of ``sigmasight stress --format json`` (money to the cent, ratios at full precision)."""

    portfolio_id: str
    portfolio_name: str
    as_of: dt.date
    scenario_file: str
    gross_exposure: float | None
    equity: float | None
    stored: bool
    scenarios: list[AdhocResult]


@router.get("/scenarios", response_model=list[Scenario], summary="The stored stress scenarios and their shocks")
def scenarios(request: Request, who: Caller = Depends(caller)):
    engine = request.app.state.engine
    s, k = schema.stress_scenarios, schema.stress_scenario_shocks
    rows = read_rows(engine, sa.select(s).order_by(s.c.display_order, s.c.scenario_id))
    shocks = read_rows(engine, sa.select(k).order_by(k.c.scenario_id, k.c.factor_name))
    by_scenario = {sid: shape_frame(ScenarioShock, group) for sid, group in shocks.groupby("scenario_id", sort=False)}
    return [{**item, "shocks": by_scenario.get(item["scenario_id"], [])}
            for item in shape_frame(Scenario, rows, shocks=[])]


@router.get("/portfolios/{portfolio_id}/stress", response_model=StressResults,
            summary="The stored stress results of a date, with each scenario's factor breakdown")
def stored_stress(
    request: Request, portfolio_id: str, as_of: AsOf = None,
    category: Annotated[str | None, Query(max_length=32, description="only the scenarios of this category")] = None,
    sort: Annotated[Literal["correlated_pnl", "-correlated_pnl", "scenario"], Query(
        description="correlated_pnl (worst first, the default), -correlated_pnl (best first) or scenario (file order)")
    ] = "correlated_pnl",
    who: Caller = Depends(caller),
):
    r, s, b = schema.stress_results, schema.stress_scenarios, schema.stress_factor_breakdown
    engine, day = visible_day(request, portfolio_id, who, r, as_of, what="stress results")
    query = (sa.select(r, s.c.name, s.c.category, s.c.severity, s.c.display_order)
             .select_from(r.join(s, s.c.scenario_id == r.c.scenario_id))
             .where((r.c.portfolio_id == portfolio_id) & (r.c.date == day)))
    if category is not None:
        known = read_rows(engine, sa.select(s.c.category).distinct())["category"].tolist()
        if category not in known:
            raise ApiError(422, "category", f"no scenario category {category!r}; one of: {', '.join(sorted(known))}")
        query = query.where(s.c.category == category)
    rows = read_rows(engine, query)
    if sort == "scenario":
        rows = rows.sort_values(["display_order", "scenario_id"], kind="mergesort")
    else:
        rows = rows.sort_values(["correlated_pnl", "scenario_id"], ascending=[sort == "correlated_pnl", True],
                                kind="mergesort")
    parts = read_rows(engine, sa.select(b).where((b.c.portfolio_id == portfolio_id) & (b.c.date == day))
                      .order_by(b.c.scenario_id, b.c.factor_name))
    by_scenario = {sid: shape_frame(FactorBreakdown, group) for sid, group in parts.groupby("scenario_id", sort=False)}
    results = [{**item, "factor_breakdown": by_scenario.get(item["scenario_id"], [])}
               for item in shape_frame(StressResult, rows, factor_breakdown=[])]
    return {"portfolio_id": portfolio_id, "as_of": day, "results": results}


def _scenario_file(body: AdhocStressRequest) -> str:
    """The body's scenarios as the text of a scenario file: the one validator reads them as it reads a file."""
    scenarios: list[dict[str, Any]] = [s.model_dump(exclude_none=True) for s in body.scenarios]
    return yaml.safe_dump({"scenarios": scenarios}, sort_keys=False)  # a period's dates stay YAML dates


@router.post("/portfolios/{portfolio_id}/stress", response_model=AdhocStressAnswer,
             summary="Ad-hoc scenarios on the book of a date, computed in memory; nothing is stored")
def adhoc(request: Request, portfolio_id: str, body: AdhocStressRequest, who: Caller = Depends(caller)):
    import warnings

    import dagster as dg
    import pandas as pd

    from sigmasight_pipeline.warehouse.reference import ScenarioFileError, parse_scenarios

    portfolio_of(request, portfolio_id, who)
    try:
        scenarios, shocks = parse_scenarios(_scenario_file(body), "request body")
    except ScenarioFileError as exc:
        errors = [FieldError(field="scenarios", message=p) for p in exc.problems]
        raise ApiError(422, "scenarios", "; ".join(exc.problems), errors=errors) from None
    with warnings.catch_warnings():  # the engines' compute functions live beside their asset definitions
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        from sigmasight_pipeline.questions.adhoc_stress import AdhocStressError, adhoc_stress, adhoc_stress_json
    try:
        result = adhoc_stress(request.app.state.engine, portfolio_id, scenarios, shocks,
                              as_of=pd.Timestamp(body.as_of) if body.as_of else None, source="request body")
    except AdhocStressError as exc:
        raise ApiError(422, "as_of", str(exc)) from None
    return adhoc_stress_json(result)
