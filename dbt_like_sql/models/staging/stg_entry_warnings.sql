{#
description: >-
  Entry sanity warnings of each portfolio: an option booked below its intrinsic value, or a stock booked more than
  50% away from that day's close, one row per (portfolio, source file, row, kind); imported as given.
unique_key: [portfolio_id, source, source_row, kind]
not_null: [portfolio_id, source, source_row, symbol, entry_date, kind, message]
#}
select
    portfolio_id,
    source,
    source_row,
    symbol,
    entry_date,
    kind,
    message,
    cast(reference_price as double precision) as reference_price
from {{ source('warehouse', 'entry_warnings') }}
