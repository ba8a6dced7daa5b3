"""Tags (api.md [3.0.7]): list, add, remove, with the same effect as ``sigmasight tags``.

* ``GET /portfolios/{id}/tags``: ``warehouse.book.tag_tables`` (what ``sigmasight tags list`` prints): every
  position's tags now and the change history.
* ``POST /portfolios/{id}/tags``: ``warehouse.book.change_tag`` stores the change in the request (a refused change
  is a 422 naming the field; nothing stored); then, as ``sigmasight tags add|remove``, the positions run (tagged
  like a trades import so automation does not redo the whole history) and the sessions from the effective date on,
  as a work request (202 with the change and the request).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import pandas as pd
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of
from sigmasight_pipeline.api.common import Strict, shape_frame
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError
from sigmasight_pipeline.api.routes.trades import Accepted, follow_up

router = APIRouter(tags=["tags"], responses=ERROR_RESPONSES)


class PositionTags(BaseModel):
    position: int
    symbol: str
    underlying: str
    status: str  # "open" or "closed YYYY-MM-DD"
    tags: list[str]


class TagChangeItem(BaseModel):
    change: int
    effective: dt.date
    from_session: dt.date
    position: int
    symbol: str
    action: str
    tag: str
    changed: str
    made_at: str


class Tags(BaseModel):
    portfolio_id: str
    positions: list[PositionTags]
    changes: list[TagChangeItem]


class TagChangeRequest(Strict):
    action: Literal["add", "remove"]
    tag: str = Field(min_length=1, max_length=40, description="one tag, no comma")
    position_id: int | None = Field(None, gt=0, description="the position (GET .../tags shows them); or ticker")
    ticker: str | None = Field(None, min_length=1, max_length=32,
                               description="the position of exactly this symbol (a stock ticker or an OCC symbol)")
    effective_date: dt.date | None = Field(
        None, description="default today; not before the book's first entry, not in the future; a weekend or holiday "
                          "applies from the next session")


class ChangedPosition(BaseModel):
    position_id: int
    symbol: str
    tags_after: list[str]


class TagChangeOut(BaseModel):
    action: str
    tag: str
    effective_date: dt.date
    session: dt.date  # the first session on or after the effective date: the change applies from it
    positions: list[ChangedPosition]


class TagChangeAccepted(Accepted):
    change: TagChangeOut


def _tag_list(text: str) -> list[str]:
    return [] if text in ("", "-") else [t.strip() for t in text.split(",")]


@router.get("/portfolios/{portfolio_id}/tags", response_model=Tags,
            summary="Every position's tags now and the tag change history, as sigmasight tags list")
def tags(request: Request, portfolio_id: str, who: Caller = Depends(caller)):
    from sigmasight_pipeline.warehouse.book import tag_tables

    portfolio_of(request, portfolio_id, who)
    current, history = tag_tables(request.app.state.engine, portfolio_id)
    positions = [{**item, "tags": _tag_list(text)} for item, text in
                 zip(shape_frame(PositionTags, current.drop(columns=["tags"]), tags=[]), current["tags"])]
    return {"portfolio_id": portfolio_id, "positions": positions, "changes": shape_frame(TagChangeItem, history)}


def _field_of(message: str) -> str:
    """The request field a ``TagChangeError`` is about (its messages are ``warehouse.book``'s)."""
    if message.startswith("effective date") or " is not held on or after " in message:
        return "effective_date"
    if message.startswith("unknown position"):
        return "position_id"
    if message.startswith("unknown ticker"):
        return "ticker"
    if message.startswith("give exactly one"):
        return "position_id"
    return "tag"  # empty, too long, a comma, reserved, already there, not there to remove


@router.post("/portfolios/{portfolio_id}/tags", response_model=TagChangeAccepted, status_code=202,
             summary="Add or remove a tag from a date on (as sigmasight tags add|remove), then recompute from it")
def change_tags(request: Request, portfolio_id: str, body: TagChangeRequest, who: Caller = Depends(caller)):
    import dagster as dg

    from sigmasight_pipeline.defs.automation import TRADES_WINDOW_TAG
    from sigmasight_pipeline.defs.operations.onboarding import ONBOARDING_TAG, POSITIONS_KEY
    from sigmasight_pipeline.warehouse.book import TagChangeError, change_tag

    portfolio_of(request, portfolio_id, who)
    if (body.position_id is None) == (body.ticker is None):
        raise ApiError(422, "position_id", "give exactly one of position_id and ticker")
    try:
        done = change_tag(request.app.state.engine, portfolio_id, tag=body.tag, action=body.action,
                          position_id=body.position_id, ticker=body.ticker, effective_date=body.effective_date)
    except TagChangeError as exc:
        raise ApiError(422, _field_of(str(exc)), f"{exc}; nothing changed") from None
    # the command's _store_positions, then its _compute_window from the effective date
    positions = dg.RunRequest(asset_selection=[POSITIONS_KEY], partition_key=portfolio_id,
                              tags={ONBOARDING_TAG: portfolio_id})
    work = follow_up(request, who, f"tag {body.action} {done.tag!r} {portfolio_id} from {done.effective_date:%Y-%m-%d}",
                     portfolio_id, positions, pd.Timestamp(done.effective_date) - pd.Timedelta(days=1),
                     {TRADES_WINDOW_TAG: f"{done.effective_date:%Y-%m-%d}"})
    verb = "added" if done.action == "add" else "removed"
    changed = ", ".join(f"position {p} ({s})" for p, s in done.positions)
    change = {"action": done.action, "tag": done.tag, "effective_date": done.effective_date, "session": done.session,
              "positions": [{"position_id": p, "symbol": s, "tags_after": list(after)}
                            for (p, s), after in zip(done.positions, done.tags_after)]}
    return {"portfolio_id": portfolio_id, "request": work, "change": change,
            "message": f"{verb} tag {done.tag!r} on {changed} from {done.effective_date:%Y-%m-%d} "
                       f"(session {done.session:%Y-%m-%d}); the positions and the dates from then on follow"}
