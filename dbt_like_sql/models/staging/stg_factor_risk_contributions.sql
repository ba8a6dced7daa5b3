{#
description: >-
  The parametric 1-day P&L standard deviation of each portfolio per date split over the factors and specific
  risk (Euler): the factor's dollar exposure, its contribution x_f (F x)_f / sigma, marginal and share; the
  "Specific" row carries sum (exposure x residual sd)^2 / sigma. A date's rows add up to sigma.
unique_key: [as_of_date, portfolio_id, factor_name]
not_null: [as_of_date, portfolio_id, factor_name, contribution]
#}
select
    "date" as as_of_date,
    portfolio_id,
    factor_name,
    dollar_exposure,
    contribution,
    marginal,
    share
from {{ source('warehouse', 'factor_risk_contributions') }}
