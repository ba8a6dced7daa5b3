{#
description: >-
  Pairwise return correlations between the positions of each portfolio per date (upper triangle).
unique_key: [as_of_date, portfolio_id, position_a, position_b]
not_null: [as_of_date, portfolio_id, position_a, position_b, correlation, n_obs]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_a,
    position_b,
    correlation,
    n_obs
from {{ source('warehouse', 'position_correlations') }}
