{#
description: >-
  Reference: security names, asset types, sectors and industries.
unique_key: [symbol]
not_null: [symbol, asset_type]
#}
select
    symbol,
    name as security_name,
    asset_type,
    sector,
    industry
from {{ source('warehouse', 'security_master') }}
