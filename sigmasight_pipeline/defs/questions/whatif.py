"""``whatif_job``: a what-if launched from the UI's launchpad (``questions.whatif``, the same computation as
``sigmasight whatif``). The run's one step reports the answer as Markdown (and the JSON document) in its
output's metadata: the run page's event log shows it. No asset is materialized and nothing is stored."""

import dagster as dg
from pydantic import Field

from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.questions.whatif import WhatIfError, validate_whatif_json, what_if, whatif_json, whatif_markdown

#: The launchpad's starting config: sell half of the hedge fund's NVDA, buy SPY puts.
EXAMPLE_TRADES = """trade_date,ticker,quantity,price
2025-06-30,NVDA,-4000,157.99
2025-06-30,SPY250919P00580000,20,9.50
"""


class WhatIfConfig(dg.Config):
    portfolio: str = Field(description="portfolio id or exact name")
    trades_csv: str = Field(description="the hypothetical trades, as the text of a trades CSV (header row first)")
    as_of: str | None = Field(default=None, description="YYYY-MM-DD, an XNYS session; default the latest computed date")


@dg.op(description="Apply hypothetical trades in memory to a stored book and report before / after / change.")
def what_if_op(context: dg.OpExecutionContext, config: WhatIfConfig, warehouse: WarehouseResource) -> dg.Output[None]:
    try:
        result = what_if(warehouse.engine, config.portfolio, config.trades_csv, as_of=config.as_of)
    except (WhatIfError, LookupError, ValueError) as exc:
        raise dg.Failure(description=str(exc), metadata={"portfolio": config.portfolio}) from exc
    document = whatif_json(result)
    validate_whatif_json(document)
    context.log.info(f"what-if on {result.portfolio_id} as of {result.as_of:%Y-%m-%d}: {result.elapsed_s:.2f} s")
    return dg.Output(None, metadata={
        "what-if": dg.MetadataValue.md(whatif_markdown(result)),
        "what-if (JSON)": dg.MetadataValue.json(document),
        "portfolio": result.portfolio_id,
        "as_of": f"{result.as_of:%Y-%m-%d}",
    })


@dg.job(
    description="What-if: hypothetical trades on a stored book (launchpad: portfolio, as_of, trades_csv). The answer "
                "is Markdown metadata on the run's step output; nothing is stored.",
    config=dg.RunConfig(ops={"what_if_op": WhatIfConfig(portfolio="demo-hedge-fund", trades_csv=EXAMPLE_TRADES, as_of="2025-06-30")}),
    tags={"sigmasight/question": "whatif"},
)
def whatif_job():
    what_if_op()
