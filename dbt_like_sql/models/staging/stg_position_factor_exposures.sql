{#
description: >-
  Factor betas of each position per date from the 150-session regression, with dollar exposure (market value x beta)
  and the daily residual standard deviation of the symbol's regression.
unique_key: [as_of_date, portfolio_id, position_id, factor_name]
not_null: [as_of_date, portfolio_id, position_id, factor_name, n_obs, flag]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_id,
    factor_name,
    beta,
    t_stat,
    r_squared,
    n_obs,
    window_start,
    window_end,
    flag,
    exact_fit,
    cast(dollar_exposure as double precision) as dollar_exposure,
    residual_std
from {{ source('warehouse', 'position_factor_exposures') }}
