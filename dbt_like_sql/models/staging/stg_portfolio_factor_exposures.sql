{#
description: >-
  Dollar factor exposure of each portfolio per date (sum of position market value x beta) and its betas to net and gross exposure.
unique_key: [as_of_date, portfolio_id, factor_name]
not_null: [as_of_date, portfolio_id, factor_name, positions_with_beta, positions_without_beta]
#}
select
    "date" as as_of_date,
    portfolio_id,
    factor_name,
    cast(dollar_exposure as double precision) as dollar_exposure,
    beta_net,
    beta_gross,
    positions_with_beta,
    positions_without_beta
from {{ source('warehouse', 'portfolio_factor_exposures') }}
