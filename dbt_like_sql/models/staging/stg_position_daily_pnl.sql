{#
description: >-
  Daily P&L of each position per date and its basis.
unique_key: [as_of_date, portfolio_id, position_id]
not_null: [as_of_date, portfolio_id, position_id, daily_pnl, pnl_basis]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_id,
    cast(daily_pnl as double precision) as daily_pnl,
    pnl_basis
from {{ source('warehouse', 'position_daily_pnl') }}
