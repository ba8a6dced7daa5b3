"""Books that change (api.md: Portfolios upload, Trades, Tags [3.0.7]): the same paths as the CLI's commands.

Each write is split where the CLI's command splits it: the file or the change is validated and stored in the
request, all or nothing (a bad file is a 422 listing every row error, and nothing is stored), and the Dagster
runs that follow are a work request (``launch.py``, 202):

* ``POST /uploads``: ``defs.operations.onboarding.onboard`` (as ``sigmasight onboard``); then the portfolio's
  partition, its positions run and its history (``runner.run_window`` over ``history_window``).
* ``POST /portfolios/{id}/trades``: ``onboard_trades`` (as ``sigmasight trades import``); then the positions run
  (tagged so automation does not redo the whole history) and the sessions from the first trade date.
* ``POST /portfolios/{id}/tags``: ``warehouse.book.change_tag`` (as ``sigmasight tags add|remove``); then the
  positions run and the sessions from the effective date.

Through a webserver (``SIGMASIGHT_DAGSTER_URL``) only the positions run is launched; the daemon's automation
conditions request the affected dates (``defs/automation.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of
from sigmasight_pipeline.api.common import Cursor, Limit, Page, Strict, page_frame, shape_frame
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError, FieldError
from sigmasight_pipeline.api.routes.operations import WorkRequestOut, describe, webserver_failure

router = APIRouter(tags=["books"], responses=ERROR_RESPONSES)


# --- models ----------------------------------------------------------------------------------------------------

class LedgerEntry(BaseModel):
    date: dt.date
    source: str  # "upload row N" or "trade <id>"
    position: int
    symbol: str
    quantity: float
    price: float
    fees: float
    cash: float
    realized_pnl: float


class Lot(BaseModel):
    lot: int
    position: int
    symbol: str
    opened: dt.date
    price: float
    quantity_opened: float
    quantity_open: float
    closed: str  # a date, or "open"


class Ledger(Page[LedgerEntry]):
    portfolio_id: str
    lots: list[Lot]


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
    tag: str = Field(min_length=1, max_length=40)
    position_id: int | None = Field(None, gt=0)
    ticker: str | None = Field(None, min_length=1, max_length=32)
    effective_date: dt.date | None = Field(None, description="default today; a weekend or holiday applies from the next session")


class Accepted(BaseModel):
    """A stored change and the work request that computes what it affects."""

    portfolio_id: str
    message: str
    request: WorkRequestOut


# --- the work that follows a stored change ----------------------------------------------------------------------

def _follow(request: Request, who: Caller, label: str, portfolio_id: str, run_request, after: pd.Timestamp | None,
            extra_tags: dict[str, str]):
    """Submit: the positions run of ``run_request``, then the portfolio's sessions after ``after`` (None: none)."""
    launcher = request.app.state.launcher

    def plan(ctx) -> dict:
        from sigmasight_pipeline import runner as orch
        from sigmasight_pipeline.defs.operations.onboarding import history_window
        from sigmasight_pipeline.defs.partitions import portfolios

        if not ctx.instance.has_dynamic_partition(portfolios.name, portfolio_id):
            ctx.instance.add_dynamic_partitions(portfolios.name, [portfolio_id])
        result = orch.run(ctx.instance, run_request.asset_selection, defs=ctx.defs, partition_key=run_request.partition_key,
                          tags={**run_request.tags, **extra_tags, **ctx.tags})
        out = {"positions_run_id": result.run_id}
        window = history_window(after) if after is not None else None
        if window is not None:
            summary = orch.run_window(ctx.instance, [portfolio_id], window[0], window[1], defs=ctx.defs,
                                      tags=ctx.tags, workers=1, progress=lambda _m: None)
            failed = sorted(k for k, ok in summary["checks"].items() if not ok)
            out.update(window=f"{window[0]:%Y-%m-%d}..{window[1]:%Y-%m-%d}", runs=len(summary["runs"]))
            if failed:
                raise RuntimeError(f"checks failed: {', '.join(failed)}")
        return out

    def launch(url: str, tags: dict[str, str]) -> str:
        from sigmasight_pipeline import webserver_client as web
        from sigmasight_pipeline.defs.partitions import portfolios

        instance = launcher.instance()
        if not instance.has_dynamic_partition(portfolios.name, portfolio_id):
            instance.add_dynamic_partitions(portfolios.name, [portfolio_id])
        try:
            return web.launch_run(url, run_request.asset_selection, partition_key=run_request.partition_key,
                                  tags={**run_request.tags, **extra_tags, **tags})
        except (web.WebserverError, OSError, ValueError) as exc:
            raise webserver_failure(exc) from None

    return describe(request, launcher.submit(label, key_id=who.key.key_id, in_process=plan, via_webserver=launch))


async def _read_upload(request: Request, file: UploadFile) -> bytes:
    """The file's bytes, refused (413 naming ``file``) beyond the configured size before it is parsed."""
    limit = request.app.state.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "file", f"{file.filename or 'the file'} is larger than {limit:,} bytes "
                                    "(SIGMASIGHT_API_MAX_UPLOAD_BYTES)")
    if not data.strip():
        raise ApiError(422, "file", f"{file.filename or 'the file'} is empty")
    return data


def _row_errors(exc) -> ApiError:
    errors = [FieldError(field=f"file.row{e.row}" + (f".{e.column}" if e.column else ""), message=str(e))
              for e in exc.errors]
    return ApiError(422, errors[0].field if errors else "file", str(exc), errors=errors)


def _too_big(request: Request) -> None:
    """Refuse an announced body beyond the upload limit before reading it (a 20 MB upload is never parsed)."""
    size = request.headers.get("content-length")
    limit = request.app.state.settings.max_upload_bytes
    if size is not None and size.isdigit() and int(size) > limit + 64 * 1024:
        raise ApiError(413, "file", f"the request is larger than {limit:,} bytes (SIGMASIGHT_API_MAX_UPLOAD_BYTES)")


# --- trades ------------------------------------------------------------------------------------------------------

@router.get("/portfolios/{portfolio_id}/trades", response_model=Ledger,
            summary="The ledger (opening holdings, then trades) and the FIFO lots, as sigmasight trades list")
def ledger(request: Request, portfolio_id: str, limit: Limit = 100, cursor: Cursor = None, who: Caller = Depends(caller)):
    from sigmasight_pipeline.warehouse.book import ledger_tables

    portfolio_of(request, portfolio_id, who)
    entries, lots = ledger_tables(request.app.state.engine, portfolio_id)
    rows, nxt, total = page_frame(entries, limit=limit, cursor=cursor)
    return {"portfolio_id": portfolio_id, "items": shape_frame(LedgerEntry, rows), "next_cursor": nxt, "total": total,
            "lots": shape_frame(Lot, lots)}


@router.post("/portfolios/{portfolio_id}/trades", response_model=Accepted, status_code=202,
             dependencies=[Depends(_too_big)],
             summary="Import a trades CSV (all or nothing), then recompute from the first trade date")
async def import_trades(request: Request, portfolio_id: str, file: Annotated[UploadFile, File(description="trades CSV")],
                        who: Caller = Depends(caller)):
    from starlette.concurrency import run_in_threadpool

    from sigmasight_pipeline.defs.automation import TRADES_WINDOW_TAG
    from sigmasight_pipeline.defs.operations.onboarding import onboard_trades
    from sigmasight_pipeline.onboarding.trades_csv import TradesValidationError

    portfolio_of(request, portfolio_id, who)
    data = await _read_upload(request, file)
    try:
        done = await run_in_threadpool(onboard_trades, request.app.state.engine, portfolio_id, data,
                                       filename=file.filename)
    except TradesValidationError as exc:
        raise _row_errors(exc) from None
    work = _follow(request, who, f"trades {portfolio_id} from {done.first_trade_date:%Y-%m-%d}", portfolio_id,
                   done.run_request, done.first_trade_date - pd.Timedelta(days=1),
                   {TRADES_WINDOW_TAG: f"{done.first_trade_date:%Y-%m-%d}"})
    return {"portfolio_id": portfolio_id, "request": work,
            "message": f"imported {done.trades} trade(s) ({done.first_trade_date:%Y-%m-%d} .. "
                       f"{done.last_trade_date:%Y-%m-%d}); positions and the dates from the first trade follow"}


# --- tags --------------------------------------------------------------------------------------------------------

def _tag_list(text: str) -> list[str]:
    return [] if text in ("", "-") else [t.strip() for t in text.split(",")]


@router.get("/portfolios/{portfolio_id}/tags", response_model=Tags,
            summary="Every position's tags now and the tag change history, as sigmasight tags list")
def tags(request: Request, portfolio_id: str, who: Caller = Depends(caller)):
    from sigmasight_pipeline.warehouse.book import tag_tables

    portfolio_of(request, portfolio_id, who)
    current, history = tag_tables(request.app.state.engine, portfolio_id)
    positions = [{**item, "tags": _tag_list(tags_text)} for item, tags_text in
                 zip(shape_frame(PositionTags, current.drop(columns=["tags"]), tags=[]), current["tags"])]
    return {"portfolio_id": portfolio_id, "positions": positions, "changes": shape_frame(TagChangeItem, history)}


@router.post("/portfolios/{portfolio_id}/tags", response_model=Accepted, status_code=202,
             summary="Add or remove a tag from a date on (as sigmasight tags add|remove), then recompute from it")
def change_tags(request: Request, portfolio_id: str, body: TagChangeRequest, who: Caller = Depends(caller)):
    from sigmasight_pipeline.defs.automation import TRADES_WINDOW_TAG
    from sigmasight_pipeline.defs.operations.onboarding import ONBOARDING_TAG, POSITIONS_KEY
    from sigmasight_pipeline.warehouse.book import TagChangeError, change_tag

    import dagster as dg

    portfolio_of(request, portfolio_id, who)
    if (body.position_id is None) == (body.ticker is None):
        raise ApiError(422, "position_id", "give exactly one of position_id and ticker")
    try:
        done = change_tag(request.app.state.engine, portfolio_id, tag=body.tag, action=body.action,
                          position_id=body.position_id, ticker=body.ticker, effective_date=body.effective_date)
    except TagChangeError as exc:
        text = str(exc)
        field = ("effective_date" if text.startswith("effective date") else "position_id" if text.startswith("unknown position")
                 else "ticker" if text.startswith("unknown ticker") else "tag")
        raise ApiError(422, field, f"{text}; nothing changed") from None
    positions = dg.RunRequest(asset_selection=[POSITIONS_KEY], partition_key=portfolio_id,
                              tags={ONBOARDING_TAG: portfolio_id})
    work = _follow(request, who, f"tag {body.action} {body.tag!r} {portfolio_id} from {done.effective_date:%Y-%m-%d}",
                   portfolio_id, positions, pd.Timestamp(done.effective_date) - pd.Timedelta(days=1),
                   {TRADES_WINDOW_TAG: f"{done.effective_date:%Y-%m-%d}"})
    verb = "added" if done.action == "add" else "removed"
    changed = ", ".join(f"position {p} ({s})" for p, s in done.positions)
    return {"portfolio_id": portfolio_id, "request": work,
            "message": f"{verb} tag {done.tag!r} on {changed} from {done.effective_date:%Y-%m-%d} "
                       f"(session {done.session:%Y-%m-%d}); positions and the dates from then follow"}


# --- uploads -------------------------------------------------------------------------------------------------------

@router.post("/uploads", response_model=Accepted, status_code=202, dependencies=[Depends(_too_big)],
             summary="A new portfolio from a CSV upload (all or nothing), owned by the key's owner; then its history")
async def upload(
    request: Request, file: Annotated[UploadFile, File(description="portfolio CSV (sigmasight template)")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    portfolio_id: Annotated[str | None, Form(max_length=64, description="default: from the name")] = None,
    owner: Annotated[str | None, Form(max_length=200, description="operator keys only (default: the key's owner)")] = None,
    who: Caller = Depends(caller),
):
    from starlette.concurrency import run_in_threadpool

    from sigmasight_pipeline.defs.operations.onboarding import onboard
    from sigmasight_pipeline.onboarding import PortfolioValidationError
    from sigmasight_pipeline.onboarding.portfolio_csv import slugify
    from sigmasight_pipeline.warehouse import schema

    if owner is not None and not who.is_operator:
        raise ApiError(403, "owner", "only an operator key may upload for another owner")
    data = await _read_upload(request, file)
    try:
        pid = slugify(portfolio_id or name)
    except ValueError as exc:
        raise ApiError(422, "portfolio_id" if portfolio_id else "name", str(exc)) from None
    engine = request.app.state.engine
    with engine.connect() as conn:  # an existing id: never overwritten through an upload, and never described
        taken = conn.execute(schema.portfolios.select().where(schema.portfolios.c.portfolio_id == pid)).first()
    if taken is not None:
        raise ApiError(409, "portfolio_id", f"portfolio id {pid!r} is already used; choose another portfolio_id")
    try:
        done = await run_in_threadpool(onboard, engine, data, name=name, owner=owner or who.key.owner,
                                       portfolio_id=pid, filename=file.filename)
    except PortfolioValidationError as exc:
        raise _row_errors(exc) from None
    except ValueError:  # the name is another portfolio's
        raise ApiError(409, "name", "a portfolio of that name already exists; choose another name") from None
    work = _follow(request, who, f"upload {done.portfolio_id}", done.portfolio_id, done.run_request,
                   done.earliest_entry, {})
    return {"portfolio_id": done.portfolio_id, "request": work,
            "message": f"imported {done.positions} position(s) as {done.portfolio_id}; its positions and history follow"}
