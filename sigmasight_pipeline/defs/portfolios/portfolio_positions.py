"""``portfolio_positions``: the book of each portfolio, from its stored upload (the opening holdings) and its
imported trades, with the splits of its stocks; partitioned by portfolio."""

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.metadata import RUN, attach_partition_metadata
from sigmasight_pipeline.defs.partitions import partition_portfolios, portfolios, single_run
from sigmasight_pipeline.defs.resources import MarketDataResource, WarehouseResource
from sigmasight_pipeline.engines.book import Ledger, positions_on
from sigmasight_pipeline.marketdata.base import is_option_symbol
from sigmasight_pipeline.warehouse.book import book_events, read_ledger
from sigmasight_pipeline.warehouse.portfolios import get_portfolio, replace_positions
from sigmasight_pipeline.warehouse.splits import store_splits

#: The ``positions`` columns written from the book.
POSITION_COLUMNS = [
    "portfolio_id", "position_id", "symbol", "position_type", "quantity", "entry_price", "entry_date",
    "underlying_symbol", "option_type", "strike", "expiration", "multiplier", "cost_basis", "source_row",
    "exit_date", "realized_pnl", "implied_vol",
]


def positions_frames(portfolio_id: str, ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows for ``positions`` (every position the book has held, as of its latest trade; closed ones with
    their exit date) and ``position_tags``."""
    book = positions_on(ledger, ledger.sessions[-1], include_closed=True)
    positions = book.assign(
        portfolio_id=portfolio_id,
        realized_pnl=book["realized_to_date"],
        multiplier=book["multiplier"].round().astype(int),
        strike=book["strike"].where(book["is_option"].astype(bool)),
        implied_vol=pd.to_numeric(book["implied_vol"], errors="coerce"),
    )[POSITION_COLUMNS]
    tags = [(portfolio_id, pid, tag) for pid, ts in zip(book["position_id"], book["tags"]) for tag in ts]
    return positions, pd.DataFrame(tags, columns=["portfolio_id", "position_id", "tag"])


def store_book(engine: Engine, portfolio_id: str, source=None) -> tuple[pd.DataFrame, Ledger]:
    """Derive a portfolio's positions from its ledger and store them (with the splits of its stocks from
    ``source``, when given, so a pre-split entry is on today's scale); returns the positions and ledger."""
    if source is not None:
        underlyings = sorted({s for s in book_events(engine, portfolio_id)["underlying_symbol"]
                              if not s.startswith("^") and not is_option_symbol(s)})
        store_splits(engine, source.fetch_splits(underlyings), source.name)
    ledger = read_ledger(engine, portfolio_id)
    positions, tags = positions_frames(portfolio_id, ledger)
    replace_positions(engine, portfolio_id, positions, tags)
    return positions, ledger


@dg.asset(
    partitions_def=portfolios,
    backfill_policy=single_run,
    group_name="portfolios",
    kinds={"python", "sql"},
    description=(
        "Positions of each portfolio: its stored upload (the opening holdings, parsed by the same parser as "
        "`sigmasight onboard`) and its imported trades, matched FIFO per instrument, on the split-adjusted scale. "
        "One row per instrument ever held: open quantity, average entry price, cost basis, realised P&L and, "
        "once closed, the exit date. The engines compute each date's book from the same ledger."
    ),
)
def portfolio_positions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource
) -> dg.MaterializeResult:
    engine = warehouse.engine
    source = market_data.get_source()
    summaries = []
    keys = {str(k): k for k in context.partition_keys}
    for portfolio_id in partition_portfolios(context):
        book = get_portfolio(engine, portfolio_id)
        positions, ledger = store_book(engine, portfolio_id, source)
        open_ = positions[positions.quantity.abs() > 0]
        cost = open_.cost_basis.astype(float)
        trades = ledger.events[ledger.events.source == "trade"]
        summary = {
            "portfolio": portfolio_id,
            "name": book["name"],
            "positions": len(open_),
            "closed": int(positions.exit_date.notna().sum()),
            "long": int((open_.quantity > 0).sum()),
            "short": int((open_.quantity < 0).sum()),
            "options": int(open_.option_type.notna().sum()),
            "trades": len(trades),
            "long_cost_basis": round(float(cost[cost > 0].sum()), 2),
            "short_cost_basis": round(float(cost[cost < 0].sum()), 2),
            "realized_pnl": round(float(positions.realized_pnl.sum()), 2),
        }
        summaries.append(summary)
        # This portfolio's own figures, on its own partition.
        attach_partition_metadata(context, keys.get(portfolio_id, portfolio_id), {
            "dagster/row_count": len(positions),
            "book": dg.MetadataValue.md(pd.DataFrame([summary]).to_markdown(index=False)),
            "symbols": ", ".join(sorted(open_.symbol)),
            "last_trade_date": f"{trades.date.max():%Y-%m-%d}" if len(trades) else "no trades",
        })
    table = pd.DataFrame(summaries)
    return dg.MaterializeResult(
        metadata={
            f"{RUN}portfolios": dg.MetadataValue.md(table.to_markdown(index=False)),
        }
    )
