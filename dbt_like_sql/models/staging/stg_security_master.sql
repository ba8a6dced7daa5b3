{#
description: >-
  Reference: security names, asset types, sectors and industries, a fund's Morningstar category, and the
  annual dividend yield as a decimal (0.0045 = 0.45 %; null: unknown).
unique_key: [symbol]
not_null: [symbol, asset_type]
#}
select
    symbol,
    name as security_name,
    asset_type,
    sector,
    industry,
    category,
    cast(dividend_yield as double precision) as dividend_yield
from {{ source('warehouse', 'security_master') }}
