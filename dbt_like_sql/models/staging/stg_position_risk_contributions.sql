{#
description: >-
  Euler risk contributions of each position per date: to the historical expected shortfall at each level
  (method historical, measure es) and to the parametric 1-day P&L standard deviation (method parametric, measure
  volatility, with the marginal contribution d sigma / d exposure); a date's contributions add up to the measure.
unique_key: [as_of_date, portfolio_id, position_id, method, measure, level]
not_null: [as_of_date, portfolio_id, position_id, method, measure, level, contribution]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_id,
    method,
    measure,
    "level",
    contribution,
    marginal,
    share
from {{ source('warehouse', 'position_risk_contributions') }}
