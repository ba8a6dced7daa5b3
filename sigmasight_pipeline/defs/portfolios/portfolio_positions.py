"""``portfolio_positions``: the book of each portfolio, derived from its stored upload, partitioned by portfolio."""


import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.metadata import RUN, attach_partition_metadata
from sigmasight_pipeline.defs.partitions import partition_portfolios, portfolios, single_run
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.marketdata.base import price_symbol_for
from sigmasight_pipeline.onboarding import ParsedPosition, parse_portfolio_csv
from sigmasight_pipeline.warehouse.portfolios import get_portfolio, replace_positions


def positions_frames(portfolio_id: str, parsed: list[ParsedPosition]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows for ``positions`` and ``position_tags`` from parsed upload rows (ids in upload order)."""
    rows, tags = [], []
    for pid, p in enumerate(parsed, start=1):
        rows.append(
            {
                "portfolio_id": portfolio_id, "position_id": pid, "symbol": p.symbol, "position_type": p.position_type,
                "quantity": p.quantity, "entry_price": p.entry_price, "entry_date": p.entry_date,
                "underlying_symbol": price_symbol_for(p.underlying_symbol), "option_type": p.option_type,
                "strike": p.strike, "expiration": p.expiration, "multiplier": p.multiplier,
                "cost_basis": p.cost_basis, "source_row": p.row,
            }
        )
        tags += [{"portfolio_id": portfolio_id, "position_id": pid, "tag": t} for t in p.tags]
    positions = pd.DataFrame(rows)
    tag_frame = pd.DataFrame(tags, columns=["portfolio_id", "position_id", "tag"])
    return positions, tag_frame


@dg.asset(
    partitions_def=portfolios,
    backfill_policy=single_run,
    group_name="portfolios",
    kinds={"python", "sql"},
    description=(
        "Positions of each portfolio, parsed and validated from its stored upload through the same parser "
        "as `sigmasight onboard` (all-or-nothing), with position types, OCC option fields and tags."
    ),
)
def portfolio_positions(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    engine = warehouse.engine
    summaries = []
    keys = {str(k): k for k in context.partition_keys}
    for portfolio_id in partition_portfolios(context):
        book = get_portfolio(engine, portfolio_id)
        parsed = parse_portfolio_csv(book["source_csv"])
        positions, tags = positions_frames(portfolio_id, parsed)
        replace_positions(engine, portfolio_id, positions, tags)
        cost = positions.cost_basis.astype(float)
        summary = {
            "portfolio": portfolio_id,
            "name": book["name"],
            "positions": len(positions),
            "long": int((positions.quantity > 0).sum()),
            "short": int((positions.quantity < 0).sum()),
            "options": int(positions.option_type.notna().sum()),
            "long_cost_basis": round(float(cost[cost > 0].sum()), 2),
            "short_cost_basis": round(float(cost[cost < 0].sum()), 2),
        }
        summaries.append(summary)
        # This portfolio's own figures, on its own partition.
        attach_partition_metadata(context, keys.get(portfolio_id, portfolio_id), {
            "dagster/row_count": len(positions),
            "book": dg.MetadataValue.md(pd.DataFrame([summary]).to_markdown(index=False)),
            "symbols": ", ".join(sorted(positions.symbol)),
        })
    table = pd.DataFrame(summaries)
    return dg.MaterializeResult(
        metadata={
            f"{RUN}portfolios": dg.MetadataValue.md(table.to_markdown(index=False)),
        }
    )
