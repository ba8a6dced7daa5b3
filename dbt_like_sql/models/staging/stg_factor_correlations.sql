{#
description: >-
  Pairwise correlations and covariances of the factor returns over each portfolio's regression window.
unique_key: [as_of_date, portfolio_id, factor_a, factor_b]
not_null: [as_of_date, portfolio_id, factor_a, factor_b, high_correlation]
#}
select
    "date" as as_of_date,
    portfolio_id,
    factor_a,
    factor_b,
    correlation,
    covariance,
    high_correlation
from {{ source('warehouse', 'factor_correlations') }}
