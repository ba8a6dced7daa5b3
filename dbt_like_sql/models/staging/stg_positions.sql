{#
description: >-
  Positions of each portfolio (one per instrument ever held) after its latest trade, on the split-adjusted scale: type, open quantity, average entry price of the open lots, option terms, multiplier, cost basis, realised P&L and, once closed, the exit date.
unique_key: [portfolio_id, position_id]
not_null: [portfolio_id, position_id, symbol, position_type, quantity, entry_price, entry_date, underlying_symbol, multiplier, cost_basis, source_row, realized_pnl]
#}
select
    portfolio_id,
    position_id,
    symbol,
    position_type,
    cast(quantity as double precision) as quantity,
    cast(entry_price as double precision) as entry_price,
    entry_date,
    underlying_symbol,
    option_type,
    cast(strike as double precision) as strike,
    expiration,
    multiplier,
    cast(cost_basis as double precision) as cost_basis,
    source_row,
    exit_date,
    cast(realized_pnl as double precision) as realized_pnl,
    implied_vol
from {{ source('warehouse', 'positions') }}
