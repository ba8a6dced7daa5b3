{#
description: >-
  Interest-rate beta of each position per date (return per +1 bp of the 10y yield) and dollars per bp.
unique_key: [as_of_date, portfolio_id, position_id]
not_null: [as_of_date, portfolio_id, position_id, n_obs, flag]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_id,
    rate_beta,
    t_stat,
    r_squared,
    n_obs,
    flag,
    cast(dollar_per_bp as double precision) as dollar_per_bp
from {{ source('warehouse', 'position_rate_sensitivity') }}
