"""Trades (api.md, "Trades"): the ledger and its FIFO lots; a trades file imported as ``sigmasight trades import``.

* ``GET /portfolios/{id}/trades``: ``warehouse.book.ledger_tables`` (what ``sigmasight trades list`` prints): the
  ledger (opening holdings, then trades) paginated, and the FIFO lots.
* ``POST /portfolios/{id}/trades``: a multipart ``file``. The command's ``runner.import_trades`` validates, stores
  and runs the positions in one call; here it is split where it splits itself: ``onboard_trades`` (validate against
  the file's rules and the stored book, store every trade in one transaction, or nothing: 422 listing every row
  error) runs in the request, and the positions run plus the sessions from the first trade date (the command's
  ``_compute_window``) are a work request (202, ``launch.py``).

The pieces every book-changing route shares (:func:`follow_up`, :func:`read_upload`, :func:`refuse_oversize`,
:func:`row_errors`, :class:`Accepted`) live here; ``tags.py`` and ``uploads.py`` import them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, File, Request, UploadFile
from pydantic import BaseModel

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of
from sigmasight_pipeline.api.common import Cursor, Limit, Page, page_frame, shape_frame
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError, FieldError
from sigmasight_pipeline.api.routes.operations import WorkRequestOut, describe, webserver_failure

router = APIRouter(tags=["trades"], responses={**ERROR_RESPONSES, 413: {
    "model": ERROR_RESPONSES[422]["model"], "description": "the file is larger than SIGMASIGHT_API_MAX_UPLOAD_BYTES"}})


# --- what the book-changing routes share ----------------------------------------------------------------------

class Accepted(BaseModel):
    """A stored change and the work request that computes what it affects (202)."""

    portfolio_id: str
    message: str
    request: WorkRequestOut


def follow_up(request: Request, who: Caller, label: str, portfolio_id: str, run_request, after: pd.Timestamp | None,
              extra_tags: dict[str, str]) -> dict:
    """Submit the work that follows a stored change, as the CLI runs it after storing: the positions run of
    ``run_request`` (``runner.run``), then the portfolio's sessions after ``after`` (``history_window``, as the
    CLI's ``_compute_window``; None: none) with ``runner.run_window``. Through a webserver only the positions run is
    launched: the daemon's automation conditions request the affected dates."""
    launcher = request.app.state.launcher

    def plan(ctx) -> dict:
        from sigmasight_pipeline import runner as orch
        from sigmasight_pipeline.defs.operations.onboarding import history_window
        from sigmasight_pipeline.defs.partitions import portfolios

        if not ctx.instance.has_dynamic_partition(portfolios.name, portfolio_id):
            ctx.instance.add_dynamic_partitions(portfolios.name, [portfolio_id])
        result = orch.run(ctx.instance, run_request.asset_selection, defs=ctx.defs,
                          partition_key=run_request.partition_key, tags={**run_request.tags, **extra_tags, **ctx.tags})
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


def refuse_oversize(request: Request) -> None:
    """A dependency: refuse an announced body beyond the upload limit before it is read (413 naming ``file``)."""
    size = request.headers.get("content-length")
    limit = request.app.state.settings.max_upload_bytes
    if size is not None and size.isdigit() and int(size) > limit + 64 * 1024:  # room for the multipart envelope
        raise ApiError(413, "file", f"the file is larger than {limit:,} bytes (SIGMASIGHT_API_MAX_UPLOAD_BYTES)")


async def read_upload(request: Request, file: UploadFile) -> bytes:
    """The file's bytes; 413 naming ``file`` beyond the configured size (never parsed), 422 when it is empty."""
    limit = request.app.state.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "file", f"{file.filename or 'the file'} is larger than {limit:,} bytes "
                                    "(SIGMASIGHT_API_MAX_UPLOAD_BYTES)")
    if not data.strip():
        raise ApiError(422, "file", f"{file.filename or 'the file'} is empty")
    return data


def row_errors(exc) -> ApiError:
    """A validation error of a file (``PortfolioValidationError`` / ``TradesValidationError``): 422 with every row
    error, each named ``file.row<N>.<column>`` (``file`` for the whole file)."""
    errors = [FieldError(field="file" if e.row == 0 else f"file.row{e.row}" + (f".{e.column}" if e.column else ""),
                         message=str(e)) for e in exc.errors]
    return ApiError(422, errors[0].field if errors else "file", str(exc), errors=errors)


# --- trades ------------------------------------------------------------------------------------------------------

class LedgerEntry(BaseModel):
    date: dt.date
    source: str  # "upload row N" or "<file> trade N"
    position: int
    symbol: str
    quantity: float  # split-adjusted, as the command prints them
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


class TradesAccepted(Accepted):
    trades: int
    first_trade_date: dt.date
    last_trade_date: dt.date
    entry_warnings: list[str]  # entry sanity: prices that cannot be right, imported as given


@router.get("/portfolios/{portfolio_id}/trades", response_model=Ledger,
            summary="The ledger (opening holdings, then trades) and the FIFO lots, as sigmasight trades list")
def ledger(request: Request, portfolio_id: str, limit: Limit = 100, cursor: Cursor = None,
           who: Caller = Depends(caller)):
    from sigmasight_pipeline.warehouse.book import ledger_tables

    portfolio_of(request, portfolio_id, who)
    entries, lots = ledger_tables(request.app.state.engine, portfolio_id)
    rows, nxt, total = page_frame(entries, limit=limit, cursor=cursor)
    return {"portfolio_id": portfolio_id, "items": shape_frame(LedgerEntry, rows), "next_cursor": nxt,
            "total": total, "lots": shape_frame(Lot, lots)}


@router.post("/portfolios/{portfolio_id}/trades", response_model=TradesAccepted, status_code=202,
             dependencies=[Depends(refuse_oversize)],
             summary="Import a trades CSV (all or nothing), then the positions and the dates from the first trade")
async def import_trades(request: Request, portfolio_id: str,
                        file: Annotated[UploadFile, File(description="trades CSV (trade_date, ticker, quantity, price"
                                                                     "[, fees, trade_id, tags, close_and_reverse])")],
                        who: Caller = Depends(caller)):
    from starlette.concurrency import run_in_threadpool

    from sigmasight_pipeline.defs.automation import TRADES_WINDOW_TAG
    from sigmasight_pipeline.defs.operations.onboarding import onboard_trades
    from sigmasight_pipeline.onboarding.trades_csv import TradesValidationError
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError

    portfolio_of(request, portfolio_id, who)
    data = await read_upload(request, file)
    try:
        done = await run_in_threadpool(onboard_trades, request.app.state.engine, portfolio_id, data,
                                       filename=file.filename)
    except TradesValidationError as exc:
        raise row_errors(exc) from None
    except UnknownPortfolioError:
        raise ApiError(404, "portfolio_id", f"no portfolio {portfolio_id!r}") from None
    first = done.first_trade_date
    work = follow_up(request, who, f"trades {portfolio_id} from {first:%Y-%m-%d}", portfolio_id, done.run_request,
                     first - pd.Timedelta(days=1), {TRADES_WINDOW_TAG: f"{first:%Y-%m-%d}"})
    return {"portfolio_id": portfolio_id, "request": work, "trades": done.trades, "first_trade_date": first.date(),
            "last_trade_date": done.last_trade_date.date(), "entry_warnings": list(done.entry_warnings),
            "message": f"imported {done.trades} trade(s) ({first:%Y-%m-%d} .. {done.last_trade_date:%Y-%m-%d}); "
                       "the positions and the dates from the first trade on follow"}
