{#
description: >-
  Tags of each position, one row per (portfolio, position, tag).
unique_key: [portfolio_id, position_id, tag]
not_null: [portfolio_id, position_id, tag]
#}
select
    portfolio_id,
    position_id,
    tag
from {{ source('warehouse', 'position_tags') }}
