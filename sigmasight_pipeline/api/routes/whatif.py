"""What-if (api.md [3.1]): hypothetical trades on a stored book, before / after / change, computed in memory.

The body carries the trades in the trades CSV format (``trades_csv``, what ``sigmasight whatif --trades`` reads)
and an optional ``as_of``; the answer is the JSON of ``sigmasight whatif --format json`` (``questions.whatif``:
the same function, the same validation against ``data/whatif.schema.json``). Nothing is stored. A bad row, an
unknown symbol or a date without data is a 422 naming the row, column or symbol.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of
from sigmasight_pipeline.api.common import Strict
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError, FieldError

router = APIRouter(tags=["what-if"], responses=ERROR_RESPONSES)


class WhatIfRequest(Strict):
    trades_csv: str = Field(min_length=1, max_length=1_000_000, description=(
        "the trades CSV: trade_date, ticker, quantity, price[, fees, trade_id, tags, close_and_reverse]; every "
        "trade dated on or before as_of"))
    as_of: dt.date | None = Field(None, description="an XNYS session (default: the portfolio's latest computed date)")


class Comparison(BaseModel):
    figure: str
    before: float | None
    after: float | None
    change: float | None


class WhatIfSections(BaseModel):
    value_and_exposures: list[Comparison]
    greeks: list[Comparison]
    risk: list[Comparison]
    factor_exposures: list[Comparison]
    factor_betas: list[Comparison]
    worst_scenarios: list[Comparison]
    top_contributors: list[Comparison]


class WhatIfTrade(BaseModel):
    trade_date: dt.date
    symbol: str
    quantity: float
    price: float
    fees: float


class WhatIfAnswer(BaseModel):
    """``sigmasight whatif --format json``: each section's figures before, after and the change."""

    portfolio_id: str
    portfolio_name: str
    as_of: dt.date
    trades: list[WhatIfTrade]
    sections: WhatIfSections
    risk_flags: list[str]
    elapsed_seconds: float


@router.post("/portfolios/{portfolio_id}/whatif", response_model=WhatIfAnswer,
             summary="What hypothetical trades would do to the book: before / after / change; nothing is stored")
def whatif(request: Request, portfolio_id: str, body: WhatIfRequest, who: Caller = Depends(caller)):
    import warnings

    import dagster as dg

    portfolio_of(request, portfolio_id, who)
    with warnings.catch_warnings():  # the engines' compute functions live beside their asset definitions
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        from sigmasight_pipeline.questions.whatif import WhatIfError, validate_whatif_json, what_if, whatif_json
    try:
        result = what_if(request.app.state.engine, portfolio_id, body.trades_csv.encode("utf-8"), as_of=body.as_of)
    except WhatIfError as exc:
        errors = [FieldError(field=f"trades_csv.row{e.row}" + (f".{e.column}" if e.column else ""), message=str(e))
                  for e in exc.errors]
        field = errors[0].field if errors else ("as_of" if "date" in str(exc) or "session" in str(exc) else "trades_csv")
        raise ApiError(422, field, str(exc), errors=errors) from None
    document = whatif_json(result)
    validate_whatif_json(document)
    return document
