{#
description: >-
  VaR, expected shortfall and the other risk measures of each portfolio per date, long: method (historical |
  parametric), measure (var, es, scenarios, filled_returns, volatility, volatility_of_equity, tracking_error,
  tracking_error_of_equity, factor_share, specific_share), confidence level (0 when none), horizon in days (10 =
  the 1-day figure x sqrt(10); 252 = annualised), value (VaR and ES positive losses in dollars) and flag.
unique_key: [as_of_date, portfolio_id, method, measure, level, horizon_days]
not_null: [as_of_date, portfolio_id, method, measure, level, horizon_days, flag]
#}
select
    "date" as as_of_date,
    portfolio_id,
    method,
    measure,
    "level",
    horizon_days,
    "value",
    flag
from {{ source('warehouse', 'portfolio_risk_measures') }}
