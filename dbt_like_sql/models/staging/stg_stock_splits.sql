{#
description: >-
  Stock splits per symbol and ex-date: ratio N / M (a 10-for-1 split is 10, a 1-for-10 reverse split 0.1),
  with the market-data source that reported it.
unique_key: [symbol, ex_date]
not_null: [symbol, ex_date, ratio, split_source]
#}
select
    symbol,
    ex_date,
    cast(ratio as double precision) as ratio,
    source as split_source
from {{ source('warehouse', 'stock_splits') }}
