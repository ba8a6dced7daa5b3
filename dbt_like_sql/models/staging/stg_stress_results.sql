{#
description: >-
  P&L of each portfolio under each stress scenario per date: direct, with factor correlations, and the difference;
  the correlated P&L as a share of gross exposure and of equity (the book's net liquidation value, NULL when not
  positive), and whether the loss exceeds equity.
unique_key: [as_of_date, portfolio_id, scenario_id]
not_null: [as_of_date, portfolio_id, scenario_id, direct_pnl, correlated_pnl, correlation_effect, loss_cap_applied, flag, exceeds_equity]
#}
select
    "date" as as_of_date,
    portfolio_id,
    scenario_id,
    cast(direct_pnl as double precision) as direct_pnl,
    cast(correlated_pnl as double precision) as correlated_pnl,
    cast(correlation_effect as double precision) as correlation_effect,
    pct_of_gross_exposure,
    cast(gross_exposure as double precision) as gross_exposure,
    pct_of_equity,
    cast(equity as double precision) as equity,
    exceeds_equity,
    loss_cap_applied,
    flag
from {{ source('warehouse', 'stress_results') }}
