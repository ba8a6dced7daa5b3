{#
description: >-
  The trade ledger of each portfolio as imported (dated, unadjusted prices; quantity signed, options in contracts); the upload is the opening holdings.
unique_key: [portfolio_id, trade_seq]
not_null: [portfolio_id, trade_seq, trade_date, symbol, quantity, price, fees, close_and_reverse, source_row, imported_at]
#}
select
    portfolio_id,
    trade_seq,
    trade_id,
    trade_date,
    symbol,
    cast(quantity as double precision) as quantity,
    cast(price as double precision) as price,
    cast(fees as double precision) as fees,
    close_and_reverse,
    tags,
    source_file,
    source_row,
    imported_at
from {{ source('warehouse', 'trades') }}
