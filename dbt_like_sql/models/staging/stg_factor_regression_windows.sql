{#
description: >-
  The regression window of each portfolio's factor betas per date, with its diagnostics (condition number, max VIF).
unique_key: [as_of_date, portfolio_id]
not_null: [as_of_date, portfolio_id, n_obs]
#}
select
    "date" as as_of_date,
    portfolio_id,
    window_start,
    window_end,
    n_obs,
    condition_number,
    max_vif
from {{ source('warehouse', 'factor_regression_windows') }}
