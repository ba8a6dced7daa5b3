"""``/health``: the warehouse and the Dagster instance answer, and the latest computed date (no key needed)."""

from __future__ import annotations

import datetime as dt
import os

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from sigmasight_pipeline.api.common import latest_date
from sigmasight_pipeline.warehouse import schema

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str  # "ok" or "degraded"
    warehouse: str  # "ok" or the error
    dagster_instance: str  # "ok" or the error
    latest_computed_date: dt.date | None  # of the portfolio snapshots


def _dagster_instance() -> str:
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        return "DAGSTER_HOME is not set"
    try:
        with dg.DagsterInstance.get() as instance:
            instance.get_runs_count()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised: health says what is wrong
        return f"{type(exc).__name__}: {exc}"[:300]


@router.get("/health", response_model=Health, summary="Warehouse and Dagster instance reachable; latest computed date")
def health(request: Request, response: Response) -> Health:
    engine = request.app.state.engine
    latest = None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        latest = latest_date(engine, schema.portfolio_snapshots, None)
        warehouse = "ok"
    except Exception as exc:  # noqa: BLE001
        warehouse = f"{type(exc).__name__}: {exc}"[:300]
    instance = _dagster_instance()
    ok = warehouse == "ok" and instance == "ok"
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "degraded", warehouse=warehouse, dagster_instance=instance,
                  latest_computed_date=latest)
