{#
description: >-
  Stress P&L per scenario broken down by factor, with the shock and the implied move.
unique_key: [as_of_date, portfolio_id, scenario_id, factor_name]
not_null: [as_of_date, portfolio_id, scenario_id, factor_name, direct_pnl, correlated_pnl]
#}
select
    "date" as as_of_date,
    portfolio_id,
    scenario_id,
    factor_name,
    shock,
    implied_move,
    cast(direct_pnl as double precision) as direct_pnl,
    cast(correlated_pnl as double precision) as correlated_pnl
from {{ source('warehouse', 'stress_factor_breakdown') }}
