{#
description: >-
  Reference: the factors, their ETF proxy symbols and display order.
unique_key: [factor_name]
not_null: [factor_name, proxy_symbol, display_order]
#}
select
    factor_name,
    proxy_symbol,
    description,
    display_order
from {{ source('warehouse', 'factor_definitions') }}
