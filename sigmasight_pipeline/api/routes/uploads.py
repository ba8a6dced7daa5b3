"""Uploads (api.md, "Portfolios": upload): a new portfolio through the one onboarding path, as ``sigmasight onboard``.

``POST /uploads`` (multipart: ``file``, ``name``, optional ``portfolio_id``; ``owner`` for operator keys only). The
command's ``runner.import_portfolio`` validates, stores, adds the partition and runs the positions in one call;
here it is split where it splits itself: ``defs.operations.onboarding.onboard`` (validate with every row error,
store in one transaction, or nothing: 422 listing them) runs in the request; the partition, the positions run and
the history (the command's ``_backfill_new_portfolio``: ``runner.run_window`` over ``history_window``) are a work
request (202 with the portfolio id and the request).

The portfolio belongs to the key's owner. An id or a name already in use is a 409 that says only "already used",
whoever owns it: an upload never replaces a stored portfolio and never reveals another owner's.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from sigmasight_pipeline.api.access import Caller, caller
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError
from sigmasight_pipeline.api.routes.trades import Accepted, follow_up, read_upload, refuse_oversize, row_errors
from sigmasight_pipeline.warehouse import schema

router = APIRouter(tags=["uploads"], responses={
    **ERROR_RESPONSES,
    403: {"model": ERROR_RESPONSES[422]["model"], "description": "owner given with a key that is not an operator's"},
    409: {"model": ERROR_RESPONSES[422]["model"], "description": "the portfolio id or name is already used"},
    413: {"model": ERROR_RESPONSES[422]["model"], "description": "the file is larger than SIGMASIGHT_API_MAX_UPLOAD_BYTES"},
})


class UploadAccepted(Accepted):
    name: str
    owner: str
    positions: int
    earliest_entry: dt.date
    entry_warnings: list[str]  # entry sanity: prices that cannot be right, imported as given


def _already_used(field: str, value: str) -> ApiError:
    """The 409 for an id (``field`` "portfolio_id") or a name in use; it says no more than "already used"."""
    what = "id" if field == "portfolio_id" else "name"
    return ApiError(409, field, f"portfolio {what} {value!r} is already used; choose another {field}")


def _refuse_used(engine, portfolio_id: str, name: str) -> None:
    """409 when the id or the name is any portfolio's."""
    t = schema.portfolios
    with engine.connect() as conn:
        used = conn.execute(sa.select(t.c.portfolio_id, t.c.name)
                            .where((t.c.portfolio_id == portfolio_id) | (t.c.name == name))).all()
    if any(row.portfolio_id == portfolio_id for row in used):
        raise _already_used("portfolio_id", portfolio_id)
    if used:
        raise _already_used("name", name)


@router.post("/uploads", response_model=UploadAccepted, status_code=202, dependencies=[Depends(refuse_oversize)],
             summary="A new portfolio from a CSV upload (all or nothing), owned by the key's owner; then its history")
async def upload(
    request: Request,
    file: Annotated[UploadFile, File(description="portfolio CSV (sigmasight template)")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    portfolio_id: Annotated[str | None, Form(max_length=64, description="default: from the name")] = None,
    owner: Annotated[str | None, Form(min_length=1, max_length=200,
                                      description="operator keys only (default: the key's owner)")] = None,
    who: Caller = Depends(caller),
):
    from starlette.concurrency import run_in_threadpool

    from sigmasight_pipeline.defs.operations.onboarding import onboard
    from sigmasight_pipeline.onboarding import PortfolioValidationError
    from sigmasight_pipeline.onboarding.portfolio_csv import slugify
    from sigmasight_pipeline.warehouse.portfolios import PortfolioExistsError

    if owner is not None and not who.is_operator:
        raise ApiError(403, "owner", "only an operator key may upload for another owner")
    name = name.strip()
    if not name:
        raise ApiError(422, "name", "name is empty")
    data = await read_upload(request, file)
    try:
        pid = slugify(portfolio_id or name)
    except ValueError as exc:
        raise ApiError(422, "portfolio_id" if portfolio_id else "name", str(exc)) from None
    engine = request.app.state.engine
    _refuse_used(engine, pid, name)
    owner = owner or who.key.owner
    try:
        # insert only: the check above answers early, the database's keys decide (a concurrent upload of the same
        # id or name between the two is refused here, never replaced)
        done = await run_in_threadpool(onboard, engine, data, name=name, owner=owner, portfolio_id=pid,
                                       filename=file.filename, replace=False)
    except PortfolioValidationError as exc:
        raise row_errors(exc) from None
    except PortfolioExistsError as exc:  # taken meanwhile
        raise _already_used(exc.field, exc.value) from None
    work = follow_up(request, who, f"upload {done.portfolio_id}", done.portfolio_id, done.run_request,
                     done.earliest_entry, {})
    return {"portfolio_id": done.portfolio_id, "name": done.name, "owner": owner, "positions": done.positions,
            "earliest_entry": done.earliest_entry.date(), "entry_warnings": list(done.entry_warnings),
            "request": work,
            "message": f"imported {done.positions} position(s) as {done.portfolio_id}; its positions and its "
                       "history follow"}
