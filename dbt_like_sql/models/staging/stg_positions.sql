{#
description: >-
  Positions of each portfolio as parsed from its upload: type, signed quantity, entry, option terms, multiplier and cost basis.
unique_key: [portfolio_id, position_id]
not_null: [portfolio_id, position_id, symbol, position_type, quantity, entry_price, entry_date, underlying_symbol, multiplier, cost_basis, source_row]
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
    source_row
from {{ source('warehouse', 'positions') }}
