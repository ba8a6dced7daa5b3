{#
description: >-
  Clusters of correlated positions of each portfolio per date, one row per member position.
unique_key: [as_of_date, portfolio_id, cluster_id, position_id]
not_null: [as_of_date, portfolio_id, cluster_id, cluster_name, position_id]
#}
select
    "date" as as_of_date,
    portfolio_id,
    cluster_id,
    cluster_name,
    position_id
from {{ source('warehouse', 'correlation_clusters') }}
