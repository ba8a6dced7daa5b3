{#
description: >-
  Quantity held, market value, cost basis, unrealized and realised P&L (to date) and delta-adjusted exposure of each position per date.
unique_key: [as_of_date, portfolio_id, position_id]
not_null: [as_of_date, portfolio_id, position_id, price_source, cost_basis, is_long]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_id,
    cast(price as double precision) as price,
    price_source,
    cast(underlying_price as double precision) as underlying_price,
    cast(market_value as double precision) as market_value,
    cast(cost_basis as double precision) as cost_basis,
    cast(unrealized_pnl as double precision) as unrealized_pnl,
    cast(notional as double precision) as notional,
    cast(delta_adjusted_exposure as double precision) as delta_adjusted_exposure,
    is_long,
    cast(quantity as double precision) as quantity,
    cast(realized_pnl as double precision) as realized_pnl
from {{ source('warehouse', 'position_valuations') }}
