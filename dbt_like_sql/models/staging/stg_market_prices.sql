{#
description: >-
  Adjusted closes per session and symbol (yields of ^TNX and ^IRX in percent), with their source.
unique_key: [as_of_date, symbol]
not_null: [as_of_date, symbol, close_price, price_source]
#}
select
    "date" as as_of_date,
    symbol,
    cast(close as double precision) as close_price,
    source as price_source
from {{ source('warehouse', 'market_prices') }}
