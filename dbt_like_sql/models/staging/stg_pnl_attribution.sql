{#
description: >-
  Daily P&L of each portfolio by line: one per factor (previous session's dollar exposure x the factor's return), specific and residual; the lines of a date add up to the snapshot's daily P&L.
unique_key: [as_of_date, portfolio_id, line]
not_null: [as_of_date, portfolio_id, line, line_type, line_order, previous_date]
#}
select
    "date" as as_of_date,
    portfolio_id,
    line,
    line_type,
    line_order,
    previous_date,
    cast(exposure as double precision) as exposure,
    factor_return,
    cast(pnl as double precision) as pnl,
    flag
from {{ source('warehouse', 'pnl_attribution') }}
