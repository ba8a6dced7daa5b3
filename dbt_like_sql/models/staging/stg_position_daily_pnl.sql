{#
description: >-
  Daily P&L of each position per date (trades included: net cash paid and fees deducted), its basis, the quantity held at the day's end, and the P&L realised that day (FIFO).
unique_key: [as_of_date, portfolio_id, position_id]
not_null: [as_of_date, portfolio_id, position_id, pnl_basis]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_id,
    cast(daily_pnl as double precision) as daily_pnl,
    pnl_basis,
    cast(quantity as double precision) as quantity,
    cast(trade_cash as double precision) as trade_cash,
    cast(realized_pnl as double precision) as realized_pnl
from {{ source('warehouse', 'position_daily_pnl') }}
