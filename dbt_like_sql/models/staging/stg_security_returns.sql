{#
description: >-
  Simple and log daily returns per session and symbol.
unique_key: [as_of_date, symbol]
not_null: [as_of_date, symbol, simple_return, log_return]
#}
select
    "date" as as_of_date,
    symbol,
    simple_return,
    log_return
from {{ source('warehouse', 'security_returns') }}
