{#
description: >-
  Overall correlation, concentration and effective number of positions of each portfolio per date.
unique_key: [as_of_date, portfolio_id]
not_null: [as_of_date, portfolio_id, positions_included, clusters]
#}
select
    "date" as as_of_date,
    portfolio_id,
    positions_included,
    overall_correlation,
    concentration_score,
    effective_positions,
    clusters
from {{ source('warehouse', 'correlation_summaries') }}
